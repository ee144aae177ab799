/**
 * Refused CURVE handshakes (issue #11): every one counted, few logged. A
 * state sequence on a fake clock: a burst, a steady flood, a quiet spell.
 */
import { expect } from 'chai';
import { pino } from 'pino';
import { CurveRefusals } from '../../../src/common/zmq/refusals.js';
import { FakeClock } from '../../support/fake-clock.js';

describe('CurveRefusals: counted always, logged once per reason per interval', () => {
  function setup() {
    const clock = new FakeClock();
    const lines: Array<{ reason: string; suppressed?: number; msg: string }> = [];
    const log = pino({ level: 'info' }, { write: (s: string) => lines.push(JSON.parse(s) as (typeof lines)[number]) });
    const refusals = new CurveRefusals(10000, clock);
    return { clock, lines, log, refusals };
  }

  it('a burst of 200 gives one line at once and one summary at the end of the interval', () => {
    const { clock, lines, log, refusals } = setup();
    for (let i = 0; i < 200; i++) refusals.refused('unauthorised_key', log, { key: `k${i}` });
    expect(lines.map((l) => l.msg)).to.deep.equal([
      'CURVE handshake refused: client key not admitted (further refusals for this reason are summarised every 10 s)',
    ]);
    clock.advance(10000);
    expect(lines.slice(1).map((l) => [l.msg, l.suppressed])).to.deep.equal([['CURVE handshake refused 199 more times in 10 s: client key not admitted', 199]]);
    expect(refusals.byReason().get('unauthorised_key')).to.equal(200);
    // Nothing more to say: no further line, no timer left.
    clock.advance(60000);
    expect(lines).to.have.length(2);
    expect(clock.pending).to.equal(0);
  });

  it('a steady flood gives one line per interval; after a quiet interval the next refusal is logged at once', () => {
    const { clock, lines, log, refusals } = setup();
    for (let t = 0; t < 35000; t += 100) {
      refusals.refused('mechanism_mismatch', log);
      clock.advance(100);
    }
    // t=0 at once, then summaries at 10, 20, 30 s (each covering 100 refusals); the last 50 wait for 40 s.
    expect(lines.map((l) => l.suppressed ?? 0)).to.deep.equal([0, 99, 100, 100]);
    clock.advance(5000);
    expect(lines.map((l) => l.suppressed ?? 0)).to.deep.equal([0, 99, 100, 100, 50]);
    clock.advance(10000);
    refusals.refused('mechanism_mismatch', log);
    expect(lines).to.have.length(6);
    expect(lines[5]!.suppressed).to.equal(undefined);
    expect(refusals.byReason().get('mechanism_mismatch')).to.equal(351);
  });

  it('reasons are limited separately', () => {
    const { lines, log, refusals } = setup();
    for (let i = 0; i < 10; i++) for (const r of ['unauthorised_key', 'bad_keys', 'other'] as const) refusals.refused(r, log);
    expect(lines.map((l) => l.reason)).to.deep.equal(['unauthorised_key', 'bad_keys', 'other']);
    expect([...refusals.byReason()]).to.deep.equal([
      ['unauthorised_key', 10],
      ['bad_keys', 10],
      ['other', 10],
    ]);
  });
});
