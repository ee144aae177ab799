/** Backoff: the one exponential wait (Felix's GETACLSTATE asks, dataplane retries, XPUB sends). */
import { expect } from 'chai';
import { Backoff } from '../../../src/common/backoff.js';

describe('Backoff', () => {
  const rows: Array<[string, number, number, number[]]> = [
    ['GETACLSTATE (SPEC §5): 100 ms, doubling up to the 2 s connection timeout', 100, 2000, [100, 200, 400, 800, 1600, 2000, 2000]],
    ['an endpoint retry: retryMs, doubling up to 30 s', 500, 30000, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]],
    ['an XPUB send at the high-water mark: 1 ms up to 50 ms', 1, 50, [1, 2, 4, 8, 16, 32, 50, 50]],
    ['a ceiling that is not a doubling of the first', 300, 1000, [300, 600, 1000, 1000]],
    ['a first wait above the ceiling is cut to it', 200, 150, [150, 150]],
    ['first equals ceiling', 40, 40, [40, 40, 40]],
  ];
  for (const [name, first, max, waits] of rows)
    it(name, () => {
      const b = new Backoff(first, max);
      expect(b.current).to.equal(0);
      const got = waits.map(() => b.next());
      expect(got).to.deep.equal(waits);
      expect(b.current).to.equal(waits.at(-1));
    });

  it('starts again from the first wait after reset, and only then', () => {
    const b = new Backoff(100, 10000);
    expect([b.next(), b.next(), b.next()]).to.deep.equal([100, 200, 400]);
    b.reset();
    expect(b.current).to.equal(0);
    expect([b.next(), b.next()]).to.deep.equal([100, 200]);
    // A second reset in a row changes nothing more.
    b.reset();
    b.reset();
    expect(b.next()).to.equal(100);
  });

  it('each instance keeps its own waits', () => {
    const a = new Backoff(10, 1000);
    const b = new Backoff(10, 1000);
    a.next();
    a.next();
    expect(b.next()).to.equal(10);
    expect(a.next()).to.equal(40);
  });

  it('refuses waits that are not positive (a zero first wait would never grow)', () => {
    for (const [first, max] of [
      [0, 100],
      [100, 0],
      [-1, 100],
      [Number.NaN, 100],
    ] as const)
      expect(() => new Backoff(first, max), `${first}, ${max}`).to.throw(RangeError, /must be positive/);
  });
});
