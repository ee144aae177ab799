/**
 * End to end, IPv6 and dual stack (issue #14, SPEC §9 "Dual stack"): a
 * two-host lab with every real component, its containers networked with the
 * built `calico-lab add-container` as a user would — IPv6-only, IPv4-only
 * and dual-stack. BIRD carries the IPv6 host routes over its IPv6 sessions;
 * the group rule holds for IPv6 pings and TCP on one host and across hosts;
 * the matrix pairs only containers that share a family; a container that
 * sends from an address that is not its own gets nothing out.
 */
import { expect } from 'chai';
import { execa } from 'execa';
import { Lab, LabContainer, inNs } from '../../src/lab/lab.js';
import { formatMatrix, measureMatrix, probeOk } from '../../src/lab/matrix.js';
import { waitFor } from '../../src/common/poll.js';
import { runCommand } from '../support/process.js';
import { useLab } from '../support/lab.js';
import { errorMessage } from '../../src/common/errors.js';

const LAB = 'src/lab/main.js';

/** Address (or IPv4,IPv6 pair), group, host. */
const CONTAINERS: Array<[string, string, string]> = [
  ['fd00:192:168::1:1', 'group1', 'instance-1'],
  ['fd00:192:168::1:2', 'group2', 'instance-1'],
  ['192.168.1.6,fd00:192:168::1:6', 'group1', 'instance-1'],
  ['fd00:192:168::1:4', 'group1', 'instance-2'],
  ['192.168.1.5,fd00:192:168::1:5', 'group1', 'instance-2'],
  ['192.168.1.4', 'group1', 'instance-2'],
];

describe('lab end to end, IPv6 and dual stack (two hosts, BIRD, all components)', function () {
  this.timeout(120000);
  const fixture = useLab('cl6');
  let dir: string;
  let lab: Lab | undefined;
  /** Single-stack IPv6: a1 and b2 (group2) on instance-1, c4 on instance-2. */
  let a1: LabContainer, b2: LabContainer, c4: LabContainer;
  /** Dual stack: d6 on instance-1, d5 on instance-2. */
  let d6: LabContainer, d5: LabContainer;

  const calicoLab = (...args: string[]) => runCommand(LAB, [...args, '--dir', dir], { timeoutMs: 60000 });

  before(async () => {
    dir = fixture.dir;
    // The containers are added by the built command, as a user would: lab.json, not the fixture's Lab, knows them.
    for (const [ip, group, host] of CONTAINERS) {
      const r = await calicoLab('add-container', ip, group, '--host', host);
      expect(r.code, r.output).to.equal(0);
      expect(r.output).to.include(`container ${ip} (${group}) on ${host}`);
    }
    lab = Lab.load(dir);
    const nth = (i: number) => lab!.container(CONTAINERS[i]![0]);
    [a1, b2, d6, c4, d5] = [nth(0), nth(1), nth(2), nth(3), nth(4)];
  });

  /** The IPv6 address of a container that has one. */
  const v6 = (c: LabContainer) => c.ip.split(',').find((a) => a.includes(':'))!;

  it('runs a BGP session per peer and family, and BIRD carries the IPv6 (and dual-stack) host routes to the other host', async () => {
    const [h1, h2] = lab!.hosts;
    for (const h of [h1!, h2!])
      expect(await lab!.birdc(h, 'show', 'protocols'))
        .to.match(/^peer_instance_\d\s+BGP .* Established/m)
        .and.match(/^peer_instance_\d_v6\s+BGP .* Established/m);
    await waitFor(
      'IPv6 routes on both hosts',
      async () => {
        const [r1, r2, r1v4, r2v4] = await Promise.all([lab!.routes(h1!, 6), lab!.routes(h2!, 6), lab!.routes(h1!), lab!.routes(h2!)]);
        return (
          /^fd00:192:168::1:1 dev tap\S+ /m.test(r1) &&
          /^fd00:192:168::1:6 dev tap\S+ /m.test(r1) &&
          /^fd00:192:168::1:1 via fd00:198:18::1 dev fab0 proto bird/m.test(r2) &&
          /^fd00:192:168::1:6 via fd00:198:18::1 dev fab0 proto bird/m.test(r2) &&
          /^fd00:192:168::1:5 via fd00:198:18::2 dev fab0 proto bird/m.test(r1) &&
          /^fd00:192:168::1:4 via fd00:198:18::2 dev fab0 proto bird/m.test(r1) &&
          // The dual-stack containers' IPv4 halves travel over the IPv4 sessions.
          /^192\.168\.1\.6 via 198\.18\.0\.1 dev fab0 proto bird/m.test(r2v4) &&
          /^192\.168\.1\.5 via 198\.18\.0\.2 dev fab0 proto bird/m.test(r1v4)
        );
      },
      20000,
      100,
    ).catch(async (err: unknown) => {
      throw new Error(`${errorMessage(err)}\ninstance-1:\n${await lab!.routes(h1!, 6)}\ninstance-2:\n${await lab!.routes(h2!, 6)}`);
    });
  });

  it('holds the group rule for every pair sharing a family (ping and TCP), and pairs no others', async () => {
    await waitFor('the group rule for IPv4 and IPv6', async () => (await measureMatrix(lab!)).every(probeOk), 40000, 200).catch(async (err: unknown) => {
      throw new Error(`${errorMessage(err)}\n${formatMatrix(await measureMatrix(lab!))}`);
    });
    const probes = await measureMatrix(lab!);
    // 5 containers with IPv6 (20 ordered pairs), 3 with IPv4 (6): the IPv4-only 192.168.1.4 is never paired with an IPv6-only one.
    expect(probes.map((p) => `IPv${p.family} ${p.fromIp} -> ${p.toIp}`).filter((row) => row.includes('192.168.1.4'))).to.have.members([
      'IPv4 192.168.1.4 -> 192.168.1.6',
      'IPv4 192.168.1.4 -> 192.168.1.5',
      'IPv4 192.168.1.6 -> 192.168.1.4',
      'IPv4 192.168.1.5 -> 192.168.1.4',
    ]);
    expect(probes.filter((p) => p.family === 6)).to.have.length(20);
    expect(probes.filter((p) => p.family === 4)).to.have.length(6);
    expect(probes.filter((p) => p.from === d6 && p.to === d5).map((p) => p.family)).to.have.members([4, 6]);
  });

  it('lets IPv6 containers of one group talk (ping and TCP) on one host and across hosts, single-stack and dual-stack', async () => {
    const allowed: Array<[LabContainer, LabContainer, string]> = [
      [a1, d6, 'single-stack to dual-stack, one host'],
      [d5, c4, 'dual-stack to single-stack, one host'],
      [a1, c4, 'single-stack across hosts'],
      [c4, a1, 'single-stack across hosts, back'],
      [d6, d5, 'dual-stack across hosts'],
      [d5, a1, 'dual-stack to single-stack across hosts'],
    ];
    for (const [from, to, what] of allowed) {
      expect(await lab!.ping(from, v6(to)), `ping ${what}: ${v6(from)} -> ${v6(to)}`).to.equal(true);
      expect(await lab!.tcp(from, v6(to)), `tcp ${what}: ${v6(from)} -> ${v6(to)}`).to.equal(true);
    }
  });

  it('refuses a container of another group over IPv6, on one host and across hosts, both ways', async () => {
    expect(await lab!.ping(a1, v6(d6)), 'the positive control').to.equal(true);
    for (const [from, to] of [
      [b2, a1],
      [a1, b2],
      [b2, d6],
      [b2, c4],
      [c4, b2],
      [b2, d5],
    ] as const) {
      expect(await lab!.ping(from, v6(to)), `ping ${v6(from)} -> ${v6(to)}`).to.equal(false);
      expect(await lab!.tcp(from, v6(to)), `tcp ${v6(from)} -> ${v6(to)}`).to.equal(false);
    }
  });

  it('lets nothing out that a container sends from an IPv6 address not its own (here a group1 member’s, which the target would accept)', async () => {
    /** Echo requests the container's kernel has received (its namespace's own counter). */
    const echoesReceived = async (c: LabContainer) => Number(/^Icmp6InEchos\s+(\d+)$/m.exec(await inNs(c.ns, 'cat', '/proc/net/snmp6'))![1]);
    // b2 (group2) claims a1's address, as a container can do inside its own namespace.
    await inNs(b2.ns, 'ip', '-6', 'addr', 'add', `${v6(a1)}/128`, 'dev', 'eth0', 'nodad');
    try {
      for (const target of [d6, c4]) {
        const before = await echoesReceived(target);
        await execa('ip', ['netns', 'exec', b2.ns, 'ping', '-c', '3', '-i', '0.2', '-W', '1', '-I', v6(a1), v6(target)], { reject: false, timeout: 10000 });
        // The positive event: a1's own ping arrives, after the spoofed ones were sent.
        expect(await lab!.ping(a1, v6(target)), `a1 -> ${v6(target)}`).to.equal(true);
        expect((await echoesReceived(target)) - before, `echo requests ${v6(target)} received: only a1's own`).to.equal(1);
      }
    } finally {
      // Left in place, b2 would answer for a1's address itself and reach it locally.
      await inNs(b2.ns, 'ip', '-6', 'addr', 'del', `${v6(a1)}/128`, 'dev', 'eth0');
    }
  });

  it('prints one status row per shared family, naming the family, and no pair without one', async () => {
    const r = await calicoLab('status');
    expect(r.code, r.output).to.equal(0);
    const rows = r.output.split('\n').filter((l) => /^ {2}IPv[46] {2}/.test(l));
    expect(rows).to.have.length(26);
    expect(
      rows.filter((l) => !l.endsWith(' ok')),
      'rows not as expected',
    ).to.deep.equal([]);
    expect(r.output).to.match(
      /^ {2}IPv6 {2}fd00:192:168::1:6 \(group1, instance-1\)\s+-> fd00:192:168::1:5 \(group1, instance-2\)\s+expected yes {2}ping yes {2}tcp yes {2}ok$/m,
    );
    expect(r.output).to.match(
      /^ {2}IPv4 {2}192\.168\.1\.6 \(group1, instance-1\)\s+-> 192\.168\.1\.5 \(group1, instance-2\)\s+expected yes {2}ping yes {2}tcp yes {2}ok$/m,
    );
    expect(r.output).to.match(
      /^ {2}IPv6 {2}fd00:192:168::1:2 \(group2, instance-1\)\s+-> fd00:192:168::1:4 \(group1, instance-2\)\s+expected no {3}ping no {3}tcp no {3}ok$/m,
    );
    expect(r.output).to.match(/instance-2 \(\S+, fd00:198:18::2\) IPv6 routes:\n(.*\n)*\s+fd00:192:168::1:1 via fd00:198:18::1 dev fab0 proto bird/);
  });

  it('removes a dual-stack container by either address: both routes leave the other host', async () => {
    const r = await calicoLab('remove-container', 'fd00:192:168::1:6');
    expect(r.code, r.output).to.equal(0);
    lab = Lab.load(dir);
    const h2 = lab.host('instance-2');
    await waitFor(
      'both routes of 192.168.1.6,fd00:192:168::1:6 to leave instance-2',
      async () => !/^192\.168\.1\.6 /m.test(await lab!.routes(h2)) && !/^fd00:192:168::1:6 /m.test(await lab!.routes(h2, 6)),
      20000,
      100,
    );
    expect(lab.containers.map((c) => c.ip)).to.not.include('192.168.1.6,fd00:192:168::1:6');
  });
});
