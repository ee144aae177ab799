import { expect } from 'chai';
import { PluginData, PluginEndpoint } from '../../../src/plugin/data.js';
import { changedGroups, endpointChanges, groupsOf } from '../../../src/plugin/changes.js';

const ep = (id: string, over: Partial<PluginEndpoint> = {}): PluginEndpoint => ({
  id,
  addrs: ['192.168.1.1'],
  mac: 'ee:ee:ee:ee:ee:01',
  host: 'h1',
  groups: ['g1'],
  source: 'x',
  ...over,
});
const data = (...eps: PluginEndpoint[]): PluginData => ({ felixes: new Map(), endpoints: new Map(eps.map((e) => [e.id, e])) });

describe('endpointChanges', () => {
  const rows: Array<[string, PluginData, PluginData, string[]]> = [
    ['nothing', data(ep('a')), data(ep('a')), []],
    ['created', data(), data(ep('a')), ['created a@h1']],
    ['destroyed', data(ep('a')), data(), ['destroyed a@h1']],
    ['mac changed', data(ep('a')), data(ep('a', { mac: 'ee:ee:ee:ee:ee:02' })), ['updated a@h1']],
    ['address changed', data(ep('a')), data(ep('a', { addrs: ['192.168.1.9'] })), ['updated a@h1']],
    ['only the group changed', data(ep('a')), data(ep('a', { groups: ['g2'] })), []],
    ['moved host', data(ep('a')), data(ep('a', { host: 'h2' })), ['destroyed a@h1', 'created a@h2']],
  ];
  for (const [name, prev, next, expected] of rows) {
    it(name, () => {
      expect(endpointChanges(prev, next).map((c) => `${c.kind} ${c.endpoint.id}@${c.host}`)).to.deep.equal(expected);
    });
  }
});

describe('groupsOf / changedGroups', () => {
  it('lists members per group, an endpoint in several groups in each', () => {
    const g = groupsOf(data(ep('b', { groups: ['g1', 'g2'], addrs: ['192.168.1.2'] }), ep('a')));
    expect(Object.fromEntries(g)).to.deep.equal({ g1: { a: ['192.168.1.1'], b: ['192.168.1.2'] }, g2: { b: ['192.168.1.2'] } });
  });

  it('keeps ids such as __proto__ and constructor as members, on the wire too', () => {
    const g = groupsOf(data(ep('__proto__'), ep('constructor', { addrs: ['192.168.1.2'] })));
    expect(JSON.parse(JSON.stringify(g.get('g1')))).to.deep.equal(JSON.parse('{"__proto__":["192.168.1.1"],"constructor":["192.168.1.2"]}'));
  });

  it('names groups whose members changed, including emptied ones', () => {
    const before = groupsOf(data(ep('a'), ep('b', { groups: ['g2'] })));
    const after = groupsOf(data(ep('a'), ep('c', { groups: ['g3'] })));
    expect(changedGroups(before, after)).to.deep.equal(['g2', 'g3']);
    expect(changedGroups(after, after)).to.deep.equal([]);
  });
});
