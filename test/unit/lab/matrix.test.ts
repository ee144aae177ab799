import { expect } from 'chai';
import type { LabContainer } from '../../../src/lab/state.js';
import { Probe, formatMatrix, isNeighbourTableFull, matrixPairs } from '../../../src/lab/matrix.js';

const container = (ip: string, group: string, host = 'instance-1'): LabContainer => ({ id: ip, ip, group, host, ns: `ns-${ip}` });

describe('matrixPairs (which containers the connectivity matrix probes)', () => {
  const v4 = container('192.168.1.1', 'g1');
  const v6 = container('fd00:192:168::1:1', 'g1');
  const v6other = container('fd00:192:168::1:2', 'g2', 'instance-2');
  const dual = container('192.168.1.5,fd00:192:168::1:5', 'g1', 'instance-2');
  const dual2 = container('192.168.1.6,fd00:192:168::1:6', 'g2');
  const rows: Array<[string, LabContainer[], string[]]> = [
    ['IPv4 and IPv6 single-stack: never paired', [v4, v6], []],
    ['two IPv6: both ways, over IPv6', [v6, v6other], ['IPv6 fd00:192:168::1:1 -> fd00:192:168::1:2 no', 'IPv6 fd00:192:168::1:2 -> fd00:192:168::1:1 no']],
    ['dual stack and IPv4: over IPv4 only', [dual, v4], ['IPv4 192.168.1.5 -> 192.168.1.1 yes', 'IPv4 192.168.1.1 -> 192.168.1.5 yes']],
    ['dual stack and IPv6: over IPv6 only', [v6, dual], ['IPv6 fd00:192:168::1:1 -> fd00:192:168::1:5 yes', 'IPv6 fd00:192:168::1:5 -> fd00:192:168::1:1 yes']],
    [
      'two dual stack: once per family',
      [dual, dual2],
      [
        'IPv4 192.168.1.5 -> 192.168.1.6 no',
        'IPv4 192.168.1.6 -> 192.168.1.5 no',
        'IPv6 fd00:192:168::1:5 -> fd00:192:168::1:6 no',
        'IPv6 fd00:192:168::1:6 -> fd00:192:168::1:5 no',
      ],
    ],
  ];
  for (const [name, containers, expected] of rows) {
    it(name, () => {
      expect(matrixPairs(containers).map((p) => `IPv${p.family} ${p.fromIp} -> ${p.toIp} ${p.expected ? 'yes' : 'no'}`)).to.deep.equal(expected);
    });
  }
});

describe('formatMatrix', () => {
  const probe = (from: LabContainer, to: LabContainer, family: 4 | 6, fromIp: string, toIp: string, ping: boolean, neighbourTableFull = false): Probe => ({
    from,
    to,
    family,
    fromIp,
    toIp,
    expected: from.group === to.group,
    ping,
    tcp: ping,
    neighbourTableFull,
  });

  it('names the family and the addresses of that family in each row, columns aligned', () => {
    const dual = container('192.168.1.5,fd00:192:168::1:5', 'g1', 'instance-2');
    const v6 = container('fd00:192:168::1:1', 'g1');
    const v4 = container('192.168.1.1', 'g2');
    expect(
      formatMatrix([probe(dual, v6, 6, 'fd00:192:168::1:5', 'fd00:192:168::1:1', true), probe(dual, v4, 4, '192.168.1.5', '192.168.1.1', true)]).split('\n'),
    ).to.deep.equal([
      '  IPv6  fd00:192:168::1:5 (g1, instance-2) -> fd00:192:168::1:1 (g1, instance-1) expected yes  ping yes  tcp yes  ok',
      '  IPv4  192.168.1.5 (g1, instance-2)       -> 192.168.1.1 (g2, instance-1)       expected no   ping yes  tcp yes  MISMATCH',
    ]);
  });

  it('a pair that failed because the neighbour table is full says so, not MISMATCH (issue #15)', () => {
    const a = container('192.168.1.1', 'g1');
    const b = container('192.168.1.2', 'g1');
    expect(formatMatrix([probe(a, b, 4, a.ip, b.ip, false, true)])).to.match(
      /expected yes  ping no   tcp no   NEIGHBOUR TABLE FULL \(the kernel's gc_thresh3; not the policy\)$/,
    );
    expect(formatMatrix([probe(a, b, 4, a.ip, b.ip, false)])).to.match(/MISMATCH$/);
  });
});

describe('isNeighbourTableFull', () => {
  it("is ping's complaint when the kernel cannot make a neighbour entry, and nothing else", () => {
    expect(isNeighbourTableFull('ping: sendmsg: No buffer space available')).to.equal(true);
    expect(isNeighbourTableFull('')).to.equal(false);
    expect(isNeighbourTableFull('ping: connect: Network is unreachable')).to.equal(false);
  });
});
