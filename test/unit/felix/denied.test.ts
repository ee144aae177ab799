/** Denied-packet totals (issue #16) from rule counters: whose chain, which rules count, and totals that only grow. */
import { expect } from 'chai';
import { ChainCounters, DeniedTotals, deniedByEndpoint, deniedOwner, droppedBy } from '../../../src/felix/dataplane/denied.js';
import type { Family } from '../../../src/felix/dataplane/render/names.js';

const ENDPOINTS = new Map([
  ['aaaaaaaaaaa', 'aaaaaaaaaaaa0001'],
  ['bbbbbbbbbbb', 'bbbbbbbbbbbb0002'],
]);

describe('denied packets: whose chain', () => {
  const rows: Array<[string, ReturnType<typeof deniedOwner>]> = [
    ['felix-to-aaaaaaaaaaa', { endpoint: 'aaaaaaaaaaaa0001', direction: 'inbound' }],
    ['felix-from-aaaaaaaaaaa', { endpoint: 'aaaaaaaaaaaa0001', direction: 'outbound' }],
    ['felix-FROM-ENDPOINT', { endpoint: '', direction: 'outbound' }],
    ['felix-TO-ENDPOINT', { endpoint: '', direction: 'inbound' }],
    ['felix-FROM-IF-tapa', { endpoint: '', direction: 'outbound' }],
    ['felix-TO-IF-tapab', { endpoint: '', direction: 'inbound' }],
    ['felix-to-ccccccccccc', null],
    ['felix-FORWARD', null],
    ['felix-INPUT', null],
    ['felix-DHCP', null],
    ['FORWARD', null],
  ];
  for (const [chain, owner] of rows)
    it(`${chain} → ${owner ? `${owner.endpoint || '""'} ${owner.direction}` : 'nobody'}`, () => expect(deniedOwner(chain, ENDPOINTS)).to.deep.equal(owner));

  it('counts the packets of DROP rules only (the anti-spoofing DROP among them)', () => {
    expect(
      droppedBy([
        { rule: '-s 192.168.0.1/32 -m mac --mac-source ee:ee:00:00:00:01 -j MARK --set-xmark 0x1/0xffffffff', packets: 100, bytes: 0 },
        { rule: '-m mark ! --mark 0x1 -j DROP', packets: 3, bytes: 0 },
        { rule: '-m set --match-set felix-4a-0011223344556677 dst -j RETURN', packets: 90, bytes: 0 },
        { rule: '-j DROP', packets: 4, bytes: 0 },
      ]),
    ).to.equal(7);
  });
});

describe('denied packets: totals that only grow', () => {
  const chains = (c: Record<string, number>): ChainCounters =>
    new Map(
      Object.entries(c).map(([chain, n]) => [
        chain,
        [
          { rule: '-m set --match-set s src -j RETURN', packets: 50, bytes: 0 },
          { rule: '-j DROP', packets: n, bytes: 0 },
        ],
      ]),
    );
  const reading = (v4: Record<string, number>, v6: Record<string, number> = {}): Record<Family, ChainCounters> => ({ 4: chains(v4), 6: chains(v6) });
  const totals = (t: DeniedTotals, r: Record<Family, ChainCounters>, endpoints = ENDPOINTS) =>
    Object.fromEntries(t.update(r, endpoints).map((c) => [`${c.endpoint || '-'} ${c.direction} ${c.family}`, c.packets]));
  const DISPATCH0 = { '- inbound 4': 0, '- outbound 4': 0, '- inbound 6': 0, '- outbound 6': 0 };

  it('sums per endpoint, direction and family; the dispatch chains (root and children) under ""; always a dispatch count', () => {
    const t = new DeniedTotals();
    expect(totals(t, reading({}))).to.deep.equal(DISPATCH0);
    expect(
      totals(
        t,
        reading(
          { 'felix-to-aaaaaaaaaaa': 5, 'felix-from-aaaaaaaaaaa': 1, 'felix-TO-ENDPOINT': 2, 'felix-TO-IF-tapa': 3, 'felix-FORWARD': 99 },
          { 'felix-to-aaaaaaaaaaa': 7 },
        ),
      ),
    ).to.deep.equal({ ...DISPATCH0, '- inbound 4': 5, 'aaaaaaaaaaaa0001 inbound 4': 5, 'aaaaaaaaaaaa0001 outbound 4': 1, 'aaaaaaaaaaaa0001 inbound 6': 7 });
    const rows = deniedByEndpoint(t.update(reading({ 'felix-to-aaaaaaaaaaa': 5, 'felix-from-aaaaaaaaaaa': 1 }, { 'felix-to-aaaaaaaaaaa': 7 }), ENDPOINTS));
    expect(rows.get('aaaaaaaaaaaa0001')).to.deep.equal({ inbound: 12, outbound: 1 });
  });

  it('a chain that goes or is reset keeps what it had counted; a dispatch child that goes too; a removed endpoint is forgotten', () => {
    const t = new DeniedTotals();
    const a = (n: number) => ({ 'felix-to-aaaaaaaaaaa': n });
    expect(totals(t, reading({ ...a(10), 'felix-TO-IF-tapa': 4, 'felix-TO-ENDPOINT': 1 }))).to.include({ 'aaaaaaaaaaaa0001 inbound 4': 10, '- inbound 4': 5 });
    // Reset (written whole by something): 10 carried, 2 new.
    expect(totals(t, reading({ ...a(2), 'felix-TO-ENDPOINT': 1 }))).to.include({ 'aaaaaaaaaaaa0001 inbound 4': 12, '- inbound 4': 5 });
    // Gone (out of dispatch after a failure): still 12; back, counting from 0.
    expect(totals(t, reading({ 'felix-TO-ENDPOINT': 3 }))).to.include({ 'aaaaaaaaaaaa0001 inbound 4': 12, '- inbound 4': 7 });
    expect(totals(t, reading({ ...a(1), 'felix-TO-ENDPOINT': 3 }))).to.include({ 'aaaaaaaaaaaa0001 inbound 4': 13 });
    // Grows as the kernel counts.
    expect(totals(t, reading({ ...a(6), 'felix-TO-ENDPOINT': 3 }))).to.include({ 'aaaaaaaaaaaa0001 inbound 4': 18 });
    // The endpoint goes: forgotten, and an endpoint of the same id later starts from 0.
    t.forget('aaaaaaaaaaaa0001');
    const none = new Map<string, string>();
    expect(totals(t, reading({ 'felix-TO-ENDPOINT': 3 }), none)).to.deep.equal({ ...DISPATCH0, '- inbound 4': 7 });
    expect(totals(t, reading({ ...a(2), 'felix-TO-ENDPOINT': 3 }))).to.include({ 'aaaaaaaaaaaa0001 inbound 4': 2 });
  });

  it('an endpoint that is no longer known (without forget) loses its carried count', () => {
    const t = new DeniedTotals();
    totals(t, reading({ 'felix-to-bbbbbbbbbbb': 9 }));
    totals(t, reading({}));
    expect(totals(t, reading({}))).to.include({ 'bbbbbbbbbbbb0002 inbound 4': 9 });
    expect(totals(t, reading({}), new Map([['aaaaaaaaaaa', 'aaaaaaaaaaaa0001']]))).not.to.have.property('bbbbbbbbbbbb0002 inbound 4');
  });

  it('never goes down, whatever the readings (random sequence)', () => {
    const t = new DeniedTotals();
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n);
    const names = ['felix-to-aaaaaaaaaaa', 'felix-from-aaaaaaaaaaa', 'felix-to-bbbbbbbbbbb', 'felix-TO-ENDPOINT', 'felix-TO-IF-tapa', 'felix-TO-IF-tapb'];
    const now = new Map<string, number>();
    let before: Record<string, number> = {};
    for (let step = 0; step < 300; step++) {
      for (const n of names) {
        const r = rand(10);
        if (r === 0)
          now.delete(n); // chain gone
        else if (r === 1)
          now.set(n, 0); // written whole
        else if (now.has(n) || r > 5) now.set(n, (now.get(n) ?? 0) + rand(5));
      }
      const after = totals(t, reading(Object.fromEntries(now), Object.fromEntries(now)));
      for (const [k, v] of Object.entries(before)) expect(after[k], `${k} at step ${step}`).to.be.at.least(v);
      before = after;
    }
  });
});
