/** decodingSubscriber: what every SUB socket does with a publication before its owner sees it. */
import { expect } from 'chai';
import { pino } from 'pino';
import { decodeAclPublication } from '../../../src/common/wire/acl-api.js';
import type { Decoded } from '../../../src/common/wire/codec.js';
import { decodeNetworkPublication } from '../../../src/common/wire/network-api.js';
import { SocketStats } from '../../../src/common/zmq/stats.js';
import { decodingSubscriber } from '../../../src/common/zmq/subscriber.js';

type Line = { level: number; msg: string; topic?: string; rc?: string; reason?: string; type?: string };

function setup<T extends { type: string }>(decode: (body: Buffer) => Decoded<T>) {
  const lines: Line[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Line) });
  const stats = new SocketStats();
  const handled: Array<[string, T]> = [];
  const handler = decodingSubscriber({ decode, log, stats, badMessage: 'bad publication ignored' }, (topic, msg) => handled.push([topic, msg]));
  const counts = () => Object.fromEntries([...stats.received.values()].map((e) => [`${e.type}/${e.rc}`, e.count]));
  return { lines, handled, handler, counts };
}

const noRules = { inbound: [], outbound: [], inbound_default: 'deny', outbound_default: 'deny' };

describe('decodingSubscriber', () => {
  it('hands each good publication, HEARTBEAT included, to the handler with its topic, and counts it by type', () => {
    const { handled, handler, counts, lines } = setup(decodeAclPublication);
    handler('ep1', Buffer.from(JSON.stringify({ type: 'ACLUPDATE', acls: { v4: noRules, v6: noRules }, issued: 1700000000000 })));
    handler('aclheartbeat', Buffer.from('{"type":"HEARTBEAT"}'));
    expect(handled.map(([topic, msg]) => [topic, msg.type])).to.deep.equal([
      ['ep1', 'ACLUPDATE'],
      ['aclheartbeat', 'HEARTBEAT'],
    ]);
    // Decoded, not raw: `issued` normalised, rules in their typed form.
    expect(handled[0]![1]).to.deep.include({ issued: 1700000000000 });
    expect(counts()).to.deep.equal({ 'ACLUPDATE/': 1, 'HEARTBEAT/': 1 });
    expect(lines).to.deep.equal([]);
  });

  const bad: Array<[string, string, string]> = [
    ['not JSON', '{nope', 'ERROR/INVALID'],
    ['an unknown type', '{"type":"GROUPCHANGED","group":"g1"}', 'ERROR/FAILURE'],
    ['a GROUPUPDATE without members', '{"type":"GROUPUPDATE","group":"g1","rules":{}}', 'ERROR/INVALID'],
  ];
  for (const [name, body, counted] of bad)
    it(`drops ${name}: counted as ${counted}, logged once with the topic and why, never handed on`, () => {
      const { handled, handler, counts, lines } = setup(decodeNetworkPublication);
      handler('groups', Buffer.from(body));
      expect(handled).to.deep.equal([]);
      expect(counts()).to.deep.equal({ [counted]: 1 });
      expect(lines).to.have.length(1);
      expect(lines[0]).to.include({ level: 40, msg: 'bad publication ignored', topic: 'groups', rc: counted.split('/')[1] });
      expect(lines[0]!.reason).to.be.a('string').and.not.equal('');
    });

  it('keeps going after a bad publication', () => {
    const { handled, handler, counts } = setup(decodeNetworkPublication);
    handler('groups', Buffer.from('[]'));
    handler('networkheartbeat', Buffer.from('{"type":"HEARTBEAT"}'));
    expect(handled.map(([t, m]) => `${t}:${m.type}`)).to.deep.equal(['networkheartbeat:HEARTBEAT']);
    expect(counts()).to.deep.equal({ 'ERROR/INVALID': 1, 'HEARTBEAT/': 1 });
  });
});
