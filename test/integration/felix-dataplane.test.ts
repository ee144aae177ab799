/**
 * The Felix dataplane against the real kernel, inside network namespaces this
 * test creates: a "host" namespace where the Dataplane runs (in a child
 * process started with `ip netns exec`), and "container" namespaces joined to
 * it by veth pairs. Real packets between the containers through the host.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { execa } from 'execa';
import type { Acls } from '../../src/common/wire/acl-api.js';
import type { Rule } from '../../src/common/wire/rules.js';
import type { EndpointSpec, EndpointStatus } from '../../src/felix/dataplane/index.js';
import { DataplaneDriver } from '../../bench/felix/driver-client.js';
import { Container, Netns, createNetns, deleteAllNetns, plugContainer } from '../support/netns.js';
import { waitFor } from '../support/process.js';
import { contentSetName } from '../../src/felix/dataplane/render/names.js';
import { chainSets, felixSets, orphanSets, setMembers } from '../support/dataplane.js';
import { tap } from '../support/felix-peers.js';

const A = { id: 'aaaaaaaaaaaa0001', ifname: 'tapaaaaaaaaaaa', ip: '192.168.10.1', mac: 'ee:ee:00:00:00:01' };
const B = { id: 'bbbbbbbbbbbb0002', ifname: 'tapbbbbbbbbbbb', ip: '192.168.10.2', mac: 'ee:ee:00:00:00:02' };
const C = { id: 'cccccccccccc0003', ifname: 'tapccccccccccc', ip: '192.168.10.3', mac: 'ee:ee:00:00:00:03' };

const rule = (fields: Partial<Rule>): Rule => ({ group: null, cidr: null, protocol: null, port: null, ...fields });
const rules = (inbound: Rule[], outbound: Rule[] = [rule({ cidr: '0.0.0.0/0' })]): Acls['v4'] => ({
  inbound,
  outbound,
  inbound_default: 'deny',
  outbound_default: 'deny',
});
const v4 = (inbound: Rule[], outbound?: Rule[]): Acls => ({ v4: rules(inbound, outbound), v6: rules([], []) });
/** Allows everything from the other containers. */
const OPEN = v4([rule({ cidr: '192.168.10.0/24' })]);

const spec = (e: typeof A, over: Partial<EndpointSpec> = {}): EndpointSpec => ({
  id: e.id,
  ifname: e.ifname,
  mac: e.mac,
  addrs: [e.ip],
  enabled: true,
  ...over,
});

interface Lab {
  host: Netns;
  a: Container;
  b: Container;
  driver: DataplaneDriver;
}

let drivers: DataplaneDriver[] = [];

function startDriver(host: Netns, opts: Record<string, unknown> = {}): Promise<DataplaneDriver> {
  const d = new DataplaneDriver(host.name, { LOG_LEVEL: 'INFO' });
  drivers.push(d);
  return d.send({ op: 'start', retryMs: 100, ...opts }).then(() => d);
}

/** A host with containers A and B, and no Felix yet. */
async function plugAB(): Promise<Omit<Lab, 'driver'>> {
  const host = await createNetns('host');
  const a = await plugContainer(host, 'a', A.ip, A.ifname, { mac: A.mac });
  const b = await plugContainer(host, 'b', B.ip, B.ifname, { mac: B.mac });
  return { host, a, b };
}

async function lab(opts: Record<string, unknown> = {}): Promise<Lab> {
  const ab = await plugAB();
  return { ...ab, driver: await startDriver(ab.host, opts) };
}

/** Upserts endpoints with ACLs and waits until the dataplane is idle. */
async function program(d: DataplaneDriver, eps: [EndpointSpec, Acls | null][]): Promise<void> {
  const items = eps.flatMap(([ep, acls]) => [{ op: 'upsert', ep }, ...(acls ? [{ op: 'acls', id: ep.id, acls }] : [])]);
  await d.send({ op: 'batch', items, wait: true });
}

async function status(d: DataplaneDriver, id: string): Promise<EndpointStatus | null> {
  return (await d.send({ op: 'status', id })).result as EndpointStatus | null;
}

async function canPing(from: Container, ip: string, source?: string): Promise<boolean> {
  const r = await from.ns.exec('ping', ['-c', '1', '-W', '1', ...(source ? ['-I', source] : []), ip]);
  return r.code === 0;
}

/** A TCP listener inside the container (killed with its namespace); nc listens on one family. */
function listen(c: Container, port: number, family: 4 | 6 = 4): void {
  const child = spawn('ip', ['netns', 'exec', c.ns.name, 'nc', `-${family}`, '-lk', String(port)], { stdio: 'ignore' });
  child.unref();
}

async function canConnect(from: Container, ip: string, port: number): Promise<boolean> {
  // The listener may need a moment to bind: retry a refused (not a dropped) connection a few times.
  for (let i = 0; i < 20; i++) {
    const r = await from.ns.exec('nc', ['-z', '-w', '1', ip, String(port)]);
    if (r.code === 0) return true;
    if (!/refused/i.test(r.stderr)) return false;
    await new Promise((res) => setTimeout(res, 50));
  }
  return false;
}

async function felixRules(host: Netns, tool = 'iptables-save'): Promise<string[]> {
  return (await host.run(tool))
    .split('\n')
    .filter((l) => /^-A (felix-|FORWARD|INPUT|PREROUTING)/.test(l))
    .sort();
}

/** Everything Felix programs, for before/after comparisons. */
async function snapshot(host: Netns): Promise<string> {
  const sets = (await host.run('ipset', ['save']))
    .split('\n')
    .filter((l) => l.startsWith('add ') || l.startsWith('create '))
    .map((l) => l.replace(/ initval \S+/, ''))
    .sort();
  return [
    ...(await felixRules(host)),
    ...(await felixRules(host, 'ip6tables-save')),
    ...sets,
    await host.run('ip', ['route']),
    await host.run('ip', ['neigh', 'show', 'nud', 'permanent']),
  ].join('\n');
}

const restores = (stats: Record<string, number>): number =>
  Object.entries(stats)
    .filter(([k]) => k.includes('restore'))
    .reduce((a, [, v]) => a + v, 0);

describe('Felix dataplane in network namespaces', function () {
  this.timeout(60000);

  afterEach(async () => {
    for (const d of drivers) await d.stop().catch(() => d.kill());
    drivers = [];
    await deleteAllNetns();
  });

  it('programs sysctls, host chains, endpoint chains, shared sets, routes and neighbours (golden)', async () => {
    const { host, driver } = await lab({ metadata: { addr: '127.0.0.1', port: 9697 } });
    await program(driver, [
      [spec(A), v4([rule({ cidr: '192.168.10.2/32', protocol: 'tcp', port: 80 }), rule({ cidr: '10.0.0.0/8', protocol: 'icmp' })])],
      [spec(B), null],
    ]);
    expect(await status(driver, A.id)).to.deep.equal({ programmed: true, routesProgrammed: true, filterProgrammed: true, interfaceUp: true });
    const port = contentSetName(4, 'port', ['192.168.10.2,tcp:80']);
    const icmp = contentSetName(4, 'icmp', ['10.0.0.0/8']);
    const out = contentSetName(4, 'addr', ['0.0.0.0/1', '128.0.0.0/1']);
    const antiSpoof = (s: string, i: number): string[] => [
      `-A felix-from-${s} -s 0.0.0.0/32 -d 255.255.255.255/32 -p udp -m mac --mac-source ee:ee:00:00:00:0${i} -g felix-DHCP`,
      `-A felix-from-${s} -s 192.168.10.${i}/32 -m mac --mac-source ee:ee:00:00:00:0${i} -j MARK --set-xmark 0x1/0xffffffff`,
      `-A felix-from-${s} -m mark ! --mark 0x1 -j DROP`,
    ];
    expect(await felixRules(host)).to.deep.equal(
      [
        '-A FORWARD -j felix-FORWARD',
        '-A INPUT -j felix-INPUT',
        '-A PREROUTING -j felix-PREROUTING',
        '-A PREROUTING -j felix-RPF',
        '-A felix-RPF -i tap+ -m rpfilter --invert -j DROP',
        '-A felix-FORWARD -i tap+ -m conntrack --ctstate INVALID -j DROP',
        '-A felix-FORWARD -o tap+ -m conntrack --ctstate INVALID -j DROP',
        '-A felix-FORWARD -i tap+ -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
        '-A felix-FORWARD -o tap+ -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
        '-A felix-FORWARD -i tap+ -j felix-FROM-ENDPOINT',
        '-A felix-FORWARD -o tap+ -j felix-TO-ENDPOINT',
        '-A felix-FORWARD -i tap+ -j ACCEPT',
        '-A felix-FORWARD -o tap+ -j ACCEPT',
        '-A felix-INPUT -i tap+ -m conntrack --ctstate INVALID -j DROP',
        '-A felix-INPUT -i tap+ -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
        '-A felix-INPUT -i tap+ -j felix-FROM-ENDPOINT',
        '-A felix-INPUT -i tap+ -p udp -m udp --sport 68 --dport 67 -j ACCEPT',
        '-A felix-INPUT -i tap+ -p tcp -m tcp --dport 9697 -j ACCEPT',
        '-A felix-INPUT -i tap+ -j DROP',
        '-A felix-DHCP -p udp -m udp --sport 68 --dport 67 -j RETURN',
        '-A felix-DHCP -j DROP',
        '-A felix-FROM-ENDPOINT -i tapaaaaaaaaaaa -g felix-from-aaaaaaaaaaa',
        '-A felix-FROM-ENDPOINT -i tapbbbbbbbbbbb -g felix-from-bbbbbbbbbbb',
        '-A felix-FROM-ENDPOINT -j DROP',
        '-A felix-TO-ENDPOINT -o tapaaaaaaaaaaa -g felix-to-aaaaaaaaaaa',
        '-A felix-TO-ENDPOINT -o tapbbbbbbbbbbb -g felix-to-bbbbbbbbbbb',
        '-A felix-TO-ENDPOINT -j DROP',
        '-A felix-PREROUTING -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 127.0.0.1:9697',
        `-A felix-to-aaaaaaaaaaa -m set --match-set ${port} src,dst -j RETURN`,
        `-A felix-to-aaaaaaaaaaa -p icmp -m set --match-set ${icmp} src -j RETURN`,
        '-A felix-to-aaaaaaaaaaa -j DROP',
        ...antiSpoof('aaaaaaaaaaa', 1),
        `-A felix-from-aaaaaaaaaaa -m set --match-set ${out} dst -j RETURN`,
        '-A felix-from-aaaaaaaaaaa -j DROP',
        '-A felix-to-bbbbbbbbbbb -j DROP',
        ...antiSpoof('bbbbbbbbbbb', 2),
        '-A felix-from-bbbbbbbbbbb -j DROP',
      ].sort(),
    );
    expect(await felixSets(host)).to.deep.equal([port, icmp, out].sort(), 'only non-empty sets, named by content');
    expect(await setMembers(host, port)).to.deep.equal(['192.168.10.2,tcp:80']);
    expect(await setMembers(host, icmp)).to.deep.equal(['10.0.0.0/8']);
    expect(await setMembers(host, out)).to.deep.equal(['0.0.0.0/1', '128.0.0.0/1']);

    const routes = await host.run('ip', ['route']);
    expect(routes).to.contain('192.168.10.1 dev tapaaaaaaaaaaa scope link').and.contain('192.168.10.2 dev tapbbbbbbbbbbb scope link');
    const neigh = await host.run('ip', ['neigh', 'show', 'nud', 'permanent']);
    expect(neigh).to.contain('192.168.10.1 dev tapaaaaaaaaaaa lladdr ee:ee:00:00:00:01 PERMANENT');
    const sysctl = (k: string): Promise<string> => host.run('cat', [`/proc/sys/${k}`]).then((s) => s.trim());
    expect(await sysctl('net/ipv4/ip_forward')).to.equal('1');
    expect(await sysctl('net/ipv6/conf/all/forwarding')).to.equal('1');
    expect(await sysctl('net/ipv4/conf/tapaaaaaaaaaaa/proxy_arp')).to.equal('1');
    expect(await sysctl('net/ipv4/conf/tapaaaaaaaaaaa/route_localnet')).to.equal('1');
  });

  it('real packets: allowed ping and TCP pass, a denied port does not, an ACL change takes effect', async () => {
    const { a, b, driver } = await lab();
    const bAcls = (port: number): Acls => v4([rule({ cidr: '192.168.10.1/32', protocol: 'tcp', port }), rule({ cidr: '192.168.10.0/24', protocol: 'icmp' })]);
    await program(driver, [
      [spec(A), OPEN],
      [spec(B), bAcls(8080)],
    ]);
    listen(b, 8080);
    listen(b, 9090);
    expect(await canPing(a, B.ip), 'ping a → b').to.equal(true);
    expect(await canPing(b, A.ip), 'ping b → a').to.equal(true);
    expect(await canConnect(a, B.ip, 8080), 'tcp 8080 allowed').to.equal(true);
    expect(await canConnect(a, B.ip, 9090), 'tcp 9090 denied').to.equal(false);

    await driver.send({ op: 'acls', id: B.id, acls: bAcls(9090), wait: true });
    expect(await canConnect(a, B.ip, 9090), 'tcp 9090 allowed after change').to.equal(true);
    expect(await canConnect(a, B.ip, 8080), 'tcp 8080 denied after change').to.equal(false);
  });

  it('drops a spoofed source address', async () => {
    const { a, driver } = await lab();
    await program(driver, [
      [spec(A), OPEN],
      [spec(B), v4([rule({ cidr: '0.0.0.0/0' })])],
    ]);
    await a.ns.run('ip', ['addr', 'add', '192.168.10.99/32', 'dev', 'eth0']);
    expect(await canPing(a, B.ip)).to.equal(true);
    expect(await canPing(a, B.ip, '192.168.10.99'), 'spoofed source').to.equal(false);
  });

  it('a new endpoint is denied until its ACLs arrive; disabled has no routes and empty sets; enable restores', async () => {
    const { host, a, driver } = await lab();
    await program(driver, [
      [spec(A), OPEN],
      [spec(B), null],
    ]);
    expect(await canPing(a, B.ip), 'B has no ACLs yet').to.equal(false);
    await driver.send({ op: 'acls', id: B.id, acls: OPEN, wait: true });
    expect(await canPing(a, B.ip)).to.equal(true);

    await program(driver, [[spec(B, { enabled: false }), null]]);
    expect(await host.run('ip', ['route'])).not.to.contain('192.168.10.2');
    expect(await host.run('ip', ['neigh', 'show', 'nud', 'permanent'])).not.to.contain('192.168.10.2');
    expect(await chainSets(host, 'felix-to-bbbbbbbbbbb')).to.deep.equal({}, 'disabled: no allow rule');
    expect(await canPing(a, B.ip), 'disabled').to.equal(false);

    await program(driver, [[spec(B), null]]);
    expect(await canPing(a, B.ip), 'enabled again').to.equal(true);
  });

  it('remove deletes chains, sets, routes and neighbours, and the traffic stops', async () => {
    const { host, a, driver } = await lab();
    await program(driver, [
      [spec(A), OPEN],
      [spec(B), OPEN],
    ]);
    expect(await canPing(a, B.ip)).to.equal(true);
    await driver.send({ op: 'remove', id: B.id, wait: true });
    expect(await status(driver, B.id)).to.equal(null);
    expect((await felixRules(host)).filter((l) => l.includes('bbbbbbbbbbb'))).to.deep.equal([]);
    expect((await felixSets(host)).filter((l) => l.includes('bbbbbbbbbbb'))).to.deep.equal([]);
    expect(await host.run('ip', ['route'])).not.to.contain('192.168.10.2');
    expect(await host.run('ip', ['neigh', 'show', 'nud', 'permanent'])).not.to.contain('192.168.10.2');
    expect(await canPing(a, B.ip)).to.equal(false);
  });

  it('programs an endpoint whose interface appears (and comes up) after the upsert', async () => {
    const { host, a, driver } = await lab();
    await program(driver, [
      [spec(A), OPEN],
      [spec(C), OPEN],
    ]);
    // Chains and sets do not wait for the interface; routes do.
    expect(await status(driver, C.id)).to.deep.equal({ programmed: false, routesProgrammed: false, filterProgrammed: true, interfaceUp: false });
    const c = await plugContainer(host, 'c', C.ip, C.ifname, { mac: C.mac, up: false });
    expect((await status(driver, C.id))!.programmed).to.equal(false);
    await host.run('ip', ['link', 'set', C.ifname, 'up']);
    await waitFor('C programmed', async () => (await status(driver, C.id))?.programmed, 10000);
    expect(await host.run('ip', ['route'])).to.contain('192.168.10.3 dev tapccccccccccc');
    expect(await canPing(a, C.ip)).to.equal(true);
    expect(await canPing(c, A.ip)).to.equal(true);
    // Down and up again: the kernel drops the route with the link, Felix puts it back.
    await host.run('ip', ['link', 'set', C.ifname, 'down']);
    await host.run('ip', ['link', 'set', C.ifname, 'up']);
    await waitFor('route back', async () => (await host.run('ip', ['route'])).includes('192.168.10.3 dev tapccccccccccc'), 10000);
    // The container restarts: its veth is deleted and created again (new ifindex, fresh sysctls).
    await host.run('ip', ['link', 'del', C.ifname]);
    await waitFor('C waiting', async () => (await status(driver, C.id))?.interfaceUp === false, 10000);
    await host.run('ip', ['link', 'add', C.ifname, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', c.ns.name]);
    await c.ns.sh(`ip link set eth0 address ${C.mac}; ip addr add ${C.ip}/32 dev eth0; ip link set eth0 up; ip route add default dev eth0`);
    await host.run('ip', ['link', 'set', C.ifname, 'up']);
    await waitFor('C programmed again', async () => (await status(driver, C.id))?.programmed, 10000);
    expect((await host.run('cat', [`/proc/sys/net/ipv4/conf/${C.ifname}/proxy_arp`])).trim()).to.equal('1');
    expect(await canPing(a, C.ip)).to.equal(true);
  });

  it('repairs drift on the periodic refresh: a deleted jump, a flushed chain, a deleted route, a set member added', async () => {
    const { host, a, driver } = await lab({ refreshMs: 300 });
    await program(driver, [
      [spec(A), OPEN],
      [spec(B), OPEN],
    ]);
    const before = await snapshot(host);
    expect(before).to.match(/^create felix-4a-/m);
    await host.sh('iptables -D FORWARD -j felix-FORWARD; iptables -F felix-to-bbbbbbbbbbb; ip route del 192.168.10.2 dev tapbbbbbbbbbbb');
    await host.sh('for s in $(ipset list -n | grep "^felix-4a-"); do ipset add "$s" 10.66.0.0/16; done');
    expect(await snapshot(host)).not.to.equal(before);
    await waitFor('drift repaired', async () => (await snapshot(host)) === before, 10000);
    expect(await canPing(a, B.ip)).to.equal(true);
  });

  it('an update that cannot be programmed (bad MAC) leaves the endpoint denied without crashing; a good one restores it', async () => {
    const { a, driver } = await lab();
    await program(driver, [
      [spec(A), OPEN],
      [spec(B), OPEN],
    ]);
    expect(await canPing(a, B.ip)).to.equal(true);
    await program(driver, [[spec(B, { mac: 'not-a-mac' }), null]]);
    expect((await status(driver, B.id))!.error).to.match(/bad mac/);
    expect(await canPing(a, B.ip), 'denied').to.equal(false);
    await program(driver, [[spec(B), null]]);
    expect(await status(driver, B.id)).to.deep.equal({ programmed: true, routesProgrammed: true, filterProgrammed: true, interfaceUp: true });
    expect(await canPing(a, B.ip)).to.equal(true);
  });

  it('state sequences: remove and re-add in one batch, repeats, ACLs for unknown endpoints, removal before ACLs', async () => {
    const { host, a, driver } = await lab();
    const items = (list: [string, Record<string, unknown>][]): Record<string, unknown>[] => list.map(([op, rest]) => ({ op, ...rest }));
    await driver.send({
      op: 'batch',
      wait: true,
      items: items([
        ['upsert', { ep: spec(A) }],
        ['acls', { id: A.id, acls: OPEN }],
        ['upsert', { ep: spec(B) }],
        ['remove', { id: B.id }],
        ['upsert', { ep: spec(B) }],
        ['acls', { id: B.id, acls: OPEN }],
        ['acls', { id: 'nobody0000000000', acls: OPEN }],
        ['remove', { id: 'nobody0000000000' }],
        ['upsert', { ep: spec(C) }],
        ['remove', { id: C.id }],
      ]),
    });
    expect(await status(driver, B.id)).to.deep.equal({ programmed: true, routesProgrammed: true, filterProgrammed: true, interfaceUp: true });
    expect(await status(driver, C.id)).to.equal(null);
    expect(await canPing(a, B.ip)).to.equal(true);
    expect((await felixSets(host)).filter((n) => n.includes('ccccccccccc'))).to.deep.equal([]);
    // Reversed: remove first, then the ACLs of the removed endpoint arrive late.
    await driver.send({
      op: 'batch',
      wait: true,
      items: items([
        ['remove', { id: B.id }],
        ['remove', { id: B.id }],
        ['acls', { id: B.id, acls: OPEN }],
      ]),
    });
    expect(await status(driver, B.id)).to.equal(null);
    expect((await felixRules(host)).filter((l) => l.includes('bbbbbbbbbbb'))).to.deep.equal([]);
    expect(await canPing(a, B.ip)).to.equal(false);
  });

  it('a disabled endpoint without an interface is not an error', async () => {
    const { driver } = await lab();
    await program(driver, [[spec(C, { enabled: false }), OPEN]]);
    expect(await status(driver, C.id)).to.deep.equal({ programmed: true, routesProgrammed: true, filterProgrammed: true, interfaceUp: false });
  });

  it('removes the metadata NAT chain when a restart turns MetadataAddr off, touching no other nat rule', async () => {
    const { host, driver } = await lab({ metadata: { addr: '127.0.0.1', port: 9697 } });
    await host.run('iptables', ['-t', 'nat', '-A', 'PREROUTING', '-p', 'udp', '--dport', '5353', '-j', 'ACCEPT']);
    await driver.stop();
    await startDriver(host, { metadata: null });
    const nat = (await host.run('iptables-save', ['-t', 'nat'])).split('\n').filter((l) => l.startsWith('-A') || l.startsWith(':felix'));
    expect(nat).to.deep.equal(['-A PREROUTING -p udp -m udp --dport 5353 -j ACCEPT']);
  });

  it('apply twice changes nothing; a restart duplicates nothing, cuts no traffic, and cleanup removes only the stale', async () => {
    const { host, a, b, driver } = await lab();
    const c = await plugContainer(host, 'c', C.ip, C.ifname, { mac: C.mac });
    await program(driver, [
      [spec(A), OPEN],
      [spec(B), OPEN],
      [spec(C), OPEN],
    ]);
    const before = await snapshot(host);
    const restoresBefore = restores((await driver.send({ op: 'stats' })).result as Record<string, number>);
    await program(driver, [
      [spec(A), OPEN],
      [spec(B), OPEN],
      [spec(C), OPEN],
    ]);
    expect(restores((await driver.send({ op: 'stats' })).result as Record<string, number>), 'no restore for an unchanged apply').to.equal(restoresBefore);
    expect(await snapshot(host)).to.equal(before);

    // Restart: a new process that knows nothing yet.
    await driver.stop();
    const again = await startDriver(host);
    expect(await snapshot(host), 'start changes nothing').to.equal(before);
    expect(await canPing(a, B.ip), 'traffic flows before the resync').to.equal(true);
    expect(await canPing(a, C.ip), 'to C as well, until cleanup').to.equal(true);
    // The resync brings A and B back before their ACLs: what the last run programmed stays until they arrive.
    await program(again, [
      [spec(A), null],
      [spec(B), null],
    ]);
    expect(await canPing(a, B.ip), 'new flows pass while the ACLs are on their way').to.equal(true);
    // C is gone.
    await program(again, [
      [spec(A), OPEN],
      [spec(B), OPEN],
    ]);
    expect(await canPing(a, B.ip)).to.equal(true);
    expect(await canPing(a, C.ip), 'C kept until cleanup').to.equal(true);
    expect((await felixRules(host)).filter((l) => l === '-A FORWARD -j felix-FORWARD')).to.have.length(1);

    await again.send({ op: 'cleanup', wait: true });
    expect((await felixRules(host)).filter((l) => l.includes('ccccccccccc'))).to.deep.equal([]);
    expect((await felixSets(host)).filter((l) => l.includes('ccccccccccc'))).to.deep.equal([]);
    expect(await host.run('ip', ['route'])).not.to.contain('192.168.10.3');
    expect(await canPing(a, C.ip), 'C is gone').to.equal(false);
    expect(await canPing(c, A.ip), 'from C too (dispatch DROP)').to.equal(false);
    expect(await canPing(b, A.ip)).to.equal(true);
  });

  it('v6 chains and sets exist only while the endpoint has an IPv6 address', async () => {
    const { host, driver } = await lab();
    const acls: Acls = {
      v4: OPEN.v4,
      v6: rules([rule({ cidr: 'fd00:198:18::/48', protocol: 'icmpv6', icmp_type: 'echo-request' })], [rule({ cidr: '::/0' })]),
    };
    await program(driver, [[spec(A, { addrs: [A.ip, 'fd00:198:18::1'] }), acls]]);
    const v6rules = await felixRules(host, 'ip6tables-save');
    expect(v6rules).to.include('-A felix-FROM-ENDPOINT -i tapaaaaaaaaaaa -g felix-from-aaaaaaaaaaa');
    expect(v6rules).to.include('-A felix-from-aaaaaaaaaaa -s fd00:198:18::1/128 -m mac --mac-source ee:ee:00:00:00:01 -j MARK --set-xmark 0x1/0xffffffff');
    expect(await chainSets(host, 'felix-to-aaaaaaaaaaa', 'ip6tables-save')).to.deep.equal({ port: ['fd00:198:18::/48,ipv6-icmp:echo-request'] });
    expect(await chainSets(host, 'felix-from-aaaaaaaaaaa', 'ip6tables-save')).to.deep.equal({ addr: ['8000::/1', '::/1'] });
    expect(await host.run('ip', ['-6', 'route'])).to.contain('fd00:198:18::1 dev tapaaaaaaaaaaa');

    await program(driver, [[spec(A), acls]]);
    expect((await felixRules(host, 'ip6tables-save')).filter((l) => l.includes('aaaaaaaaaaa'))).to.deep.equal([]);
    expect((await felixSets(host)).filter((l) => l.startsWith('felix-6-'))).to.deep.equal([]);
    expect(await host.run('ip', ['-6', 'route'])).not.to.contain('fd00:198:18::1');
    expect((await felixRules(host)).filter((l) => l.includes('aaaaaaaaaaa'))).to.not.be.empty;
  });

  it('skips an invalid ACL rule (logged) and applies the others', async () => {
    const { host, driver } = await lab();
    await program(driver, [[spec(A), v4([rule({ cidr: '10.0.0.0/8', port: 80 }), rule({ cidr: '10.1.0.0/16', protocol: 'udp', port: 53 })])]]);
    expect(await chainSets(host, 'felix-to-aaaaaaaaaaa')).to.deep.equal({ port: ['10.1.0.0/16,udp:53'] });
    expect(driver.log()).to.contain('invalid ACL rule skipped').and.contain('port without protocol');
  });

  it('a programming failure leaves the endpoint denied and is retried until it succeeds', async () => {
    const { host, a, driver } = await lab();
    // A set of the wrong type squats the name of B's inbound set: making it fails.
    const squatted = contentSetName(4, 'addr', ['192.168.10.1']);
    await host.run('ipset', ['create', squatted, 'hash:ip']);
    await program(driver, [
      [spec(A), OPEN],
      [spec(B), v4([rule({ cidr: '192.168.10.1/32' })])],
    ]);
    const failed = await status(driver, B.id);
    expect(failed!.programmed).to.equal(false);
    expect(failed!.error).to.match(/chains and sets/);
    expect(await canPing(a, B.ip), 'B denied').to.equal(false);
    expect((await felixRules(host)).filter((l) => l.includes('-g felix-to-bbbbbbbbbbb'))).to.deep.equal([]);
    expect(await status(driver, A.id)).to.deep.equal({ programmed: true, routesProgrammed: true, filterProgrammed: true, interfaceUp: true });
    expect(driver.log()).to.contain('endpoint left denied');

    await host.run('ipset', ['destroy', squatted]);
    await waitFor('B programmed after retry', async () => (await status(driver, B.id))?.programmed, 15000);
    expect(await canPing(a, B.ip)).to.equal(true);
  });

  it('a burst of 300 interfaces overflows the link-event socket (ENOBUFS): Felix reads the links again and programs every endpoint', async function () {
    this.timeout(120000);
    const host = await createNetns('host');
    // A tiny event buffer, no periodic link lookups to paper over lost events, and only warnings logged.
    const driver = new DataplaneDriver(host.name, { LOG_LEVEL: 'WARNING' });
    drivers.push(driver);
    await driver.send({ op: 'start', eventBufferBytes: 4096, retryMs: 600000 });
    const n = 300;
    const name = (i: number) => `tapburst${String(i).padStart(4, '0')}`;
    const eps = Array.from({ length: n }, (_, i) => ({
      id: `burst-${i}`,
      ifname: name(i),
      mac: `ee:ee:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
      addrs: [`192.168.${20 + Math.floor(i / 250)}.${(i % 250) + 1}`],
      enabled: true,
    }));
    await program(
      driver,
      eps.map((ep) => [ep, OPEN]),
    );
    const batch = eps.flatMap((ep, i) => [`link add ${ep.ifname} type veth peer name peer${i}`, `link set ${ep.ifname} up`, `link set peer${i} up`]).join('\n');
    await host.run('ip', ['-batch', '-'], { input: batch });
    await waitFor(
      'every endpoint programmed',
      async () => {
        const st = await Promise.all(eps.map((ep) => status(driver, ep.id)));
        return st.every((x) => x?.programmed);
      },
      60000,
      500,
    );
    expect(driver.log(), 'the burst did overflow the socket').to.contain('link events lost');
    const routes = (await host.run('ip', ['route'])).split('\n').filter((l) => / dev tapburst/.test(l));
    expect(routes).to.have.length(n);
  });

  it('the link monitor (ip monitor) ends with the dataplane, even when it is killed with SIGKILL', async () => {
    const host = await createNetns('host');
    const driver = await startDriver(host);
    const monitors = async () => {
      const pids = (await execa('ip', ['netns', 'pids', host.name])).stdout.split('\n').filter(Boolean);
      return pids.filter(
        (pid) => fs.existsSync(`/proc/${pid}/cmdline`) && fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').includes('monitor link'),
      );
    };
    await waitFor('the monitor running', async () => (await monitors()).length === 1, 5000);
    await driver.kill();
    await waitFor('no monitor left', async () => (await monitors()).length === 0, 5000);
  });

  describe('IPv6 (issue #14)', () => {
    const A6 = { ...A, ip: 'fd00:192:168::10:1' };
    const B6 = { ...B, ip: 'fd00:192:168::10:2' };
    const C6 = { ...C, ip: 'fd00:192:168::10:3' };
    const D = { id: 'dddddddddddd0004', ifname: 'tapddddddddddd', ip: '192.168.10.4,fd00:192:168::10:4', mac: 'ee:ee:00:00:00:04' };
    const rules6 = (inbound: Rule[]): Acls['v6'] => rules(inbound, [rule({ cidr: '::/0' })]);
    /** IPv4 open to the other containers; IPv6 inbound only from `from`. */
    const only6 = (...from: string[]): Acls => ({ v4: OPEN.v4, v6: rules6(from.map((ip) => rule({ cidr: `${ip}/128` }))) });
    const dual = (e: typeof D): EndpointSpec => ({ ...spec(e), addrs: e.ip.split(',') });

    /** A6 and B6 allow each other and D; C6 is allowed nowhere; D (dual stack) allows A6 over IPv6 and everyone over IPv4. */
    async function v6Lab() {
      const host = await createNetns('host');
      const [a, b, c, d] = await Promise.all([
        plugContainer(host, 'a', A6.ip, A6.ifname, { mac: A6.mac }),
        plugContainer(host, 'b', B6.ip, B6.ifname, { mac: B6.mac }),
        plugContainer(host, 'c', C6.ip, C6.ifname, { mac: C6.mac }),
        plugContainer(host, 'd', D.ip, D.ifname, { mac: D.mac }),
      ]);
      const driver = await startDriver(host);
      await program(driver, [
        [spec(A6), only6(B6.ip, 'fd00:192:168::10:4')],
        [spec(B6), only6(A6.ip, 'fd00:192:168::10:4')],
        [spec(C6), only6()],
        [dual(D), only6(A6.ip)],
      ]);
      return { host, a, b, c, d, driver };
    }

    it('containers reach each other over IPv6 through the fe80::1 gateway only as their ACLs allow; IPv4 and IPv6 of a dual-stack one each hold', async () => {
      const { host, a, b, c, d } = await v6Lab();
      // Positives first (each container's first packet waits for neighbour discovery of fe80::1), then the refusals.
      await waitFor('A6 → B6', () => canPing(a, B6.ip), 5000);
      await waitFor('B6 → A6', () => canPing(b, A6.ip), 5000);
      await waitFor('D → A6 over IPv6', () => canPing(d, A6.ip), 5000);
      await waitFor('A6 → D over IPv6', () => canPing(a, 'fd00:192:168::10:4'), 5000);
      expect(await canPing(c, A6.ip), 'C6 → A6: not allowed').to.equal(false);
      expect(await canPing(a, C6.ip), 'A6 → C6: C6 allows nobody').to.equal(false);
      expect(await canPing(b, 'fd00:192:168::10:4'), 'B6 → D: D allows only A6 over IPv6').to.equal(false);
      listen(b, 8080, 6);
      expect(await canConnect(a, B6.ip, 8080), 'TCP A6 → B6').to.equal(true);
      expect(await canConnect(c, B6.ip, 8080), 'TCP C6 → B6').to.equal(false);
      // What Felix put on the host side: the gateway, accept_ra=0, a permanent neighbour per address.
      expect(await host.run('ip', ['-6', 'addr', 'show', 'dev', A6.ifname])).to.match(/inet6 fe80::1\/64 scope link nodad/);
      expect((await host.run('sysctl', ['-n', `net.ipv6.conf.${A6.ifname}.accept_ra`])).trim()).to.equal('0');
      expect(await host.run('ip', ['-6', 'neigh', 'show', 'nud', 'permanent', 'dev', D.ifname])).to.include(`fd00:192:168::10:4 lladdr ${D.mac} PERMANENT`);
    });

    it('a spoofed IPv6 source does not get out, and the gateway comes back after the interface goes down and up', async () => {
      const { host, a } = await v6Lab();
      await waitFor('A6 → B6', () => canPing(a, B6.ip), 5000);
      // A claims an address of its own choosing (inside B's allowed range would not matter: it is not A's).
      await a.ns.run('ip', ['-6', 'addr', 'add', 'fd00:192:168::10:99/128', 'dev', 'eth0', 'nodad']);
      expect(await canPing(a, B6.ip, 'fd00:192:168::10:99'), 'spoofed source').to.equal(false);
      await a.ns.run('ip', ['-6', 'addr', 'add', `${C6.ip}/128`, 'dev', 'eth0', 'nodad']);
      expect(await canPing(a, B6.ip, C6.ip), "another endpoint's address").to.equal(false);
      expect(await canPing(a, B6.ip, A6.ip), 'its own address still gets out').to.equal(true);
      await host.run('ip', ['link', 'set', A6.ifname, 'down']);
      expect(await host.run('ip', ['-6', 'addr', 'show', 'dev', A6.ifname]), 'the kernel dropped the gateway').to.not.include('fe80::1/64');
      await host.run('ip', ['link', 'set', A6.ifname, 'up']);
      // Its own address as the source: the kernel would pick the spoofed one nearest to B's.
      await waitFor('A6 reaches B6 again', () => canPing(a, B6.ip, A6.ip), 15000);
      expect(await host.run('ip', ['-6', 'addr', 'show', 'dev', A6.ifname])).to.match(/inet6 fe80::1\/64 scope link nodad/);
    });
  });

  describe('version 2', () => {
    /** Flows the host's conntrack table holds for an address. */
    const flows = async (host: Netns, ip: string): Promise<number> =>
      (await host.exec('conntrack', ['-L', '-d', ip])).stdout.split('\n').filter((l) => l.includes(ip)).length +
      (await host.exec('conntrack', ['-L', '-s', ip])).stdout.split('\n').filter((l) => l.includes(ip)).length;

    it('conntrack: an endpoint removed or taken out of dispatch keeps no open flow', async () => {
      const { host, a, driver } = await lab();
      const c = await plugContainer(host, 'c', C.ip, C.ifname, { mac: C.mac });
      await program(driver, [
        [spec(A), OPEN],
        [spec(B), OPEN],
        [spec(C), OPEN],
      ]);
      expect(await canPing(a, B.ip)).to.equal(true);
      expect(await canPing(a, C.ip)).to.equal(true);
      expect(await flows(host, B.ip), 'the pings left flows').to.be.greaterThan(0);
      await driver.send({ op: 'remove', id: B.id, wait: true });
      expect(await flows(host, B.ip), 'removed: its flows are gone').to.equal(0);
      // C's programming fails (its new inbound set's name is squatted): out of dispatch, flows deleted.
      expect(await flows(host, C.ip)).to.be.greaterThan(0);
      const squatted = contentSetName(4, 'addr', ['192.168.10.9']);
      await host.run('ipset', ['create', squatted, 'hash:ip']);
      await driver.send({ op: 'acls', id: C.id, acls: v4([rule({ cidr: '192.168.10.9/32' })]), wait: true });
      expect((await status(driver, C.id))!.error).to.match(/chains and sets/);
      expect(await flows(host, C.ip), 'failed: its flows are gone').to.equal(0);
      expect(await canPing(c, A.ip), 'and C is denied').to.equal(false);
    });

    it('the reverse-path check drops a spoofed source before the fast path can accept it', async () => {
      const { host, a, driver } = await lab();
      await plugContainer(host, 'c', C.ip, C.ifname, { mac: C.mac });
      await program(driver, [
        [spec(A), OPEN],
        [spec(B), OPEN],
        [spec(C), OPEN],
      ]);
      expect(await canPing(a, C.ip)).to.equal(true);
      const drops = async (): Promise<number> =>
        Number(/^\s*(\d+)/.exec((await host.run('iptables', ['-t', 'raw', '-L', 'felix-RPF', '-v', '-x', '-n'])).split('\n')[2] ?? '')?.[1]);
      const before = await drops();
      // A claims B's address: the packet arrives on A's interface, while B's address is routed to B's.
      await a.ns.run('ip', ['addr', 'add', `${B.ip}/32`, 'dev', 'eth0']);
      expect(await canPing(a, C.ip, B.ip)).to.equal(false);
      expect(await drops(), 'dropped in raw felix-RPF').to.be.greaterThan(before);
    });

    it('a container reaches the host itself only for DHCP, discovery and metadata (EndpointToHostAction)', async () => {
      const { host, a, driver } = await lab();
      await program(driver, [[spec(A), OPEN]]);
      await host.sh('ip link add fab0 type veth peer name fab1; ip addr add 198.18.0.1/24 dev fab0; ip link set fab0 up; ip link set fab1 up');
      const server = spawn('ip', ['netns', 'exec', host.name, 'nc', '-lk', '198.18.0.1', '9902'], { stdio: 'ignore' });
      try {
        expect(await canPing(a, '198.18.0.1'), 'ping the host').to.equal(false);
        expect((await a.ns.exec('nc', ['-z', '-w', '1', '198.18.0.1', '9902'])).code, "Felix's port").to.not.equal(0);
        await driver.stop();
        const open = await startDriver(host, { endpointToHost: 'ACCEPT' });
        await program(open, [[spec(A), OPEN]]);
        expect(await canPing(a, '198.18.0.1'), 'EndpointToHostAction ACCEPT').to.equal(true);
      } finally {
        server.kill();
      }
    });

    it('shared sets: equal ACLs share a set; a change makes the new set, then destroys the unused one; none orphaned', async () => {
      const { host, a, b, driver } = await lab();
      await program(driver, [
        [spec(A), OPEN],
        [spec(B), OPEN],
      ]);
      const group = contentSetName(4, 'addr', ['192.168.10.0/24']);
      expect(await chainSets(host, 'felix-to-aaaaaaaaaaa')).to.deep.equal({ addr: ['192.168.10.0/24'] });
      expect(await felixSets(host)).to.deep.equal([group, contentSetName(4, 'addr', ['0.0.0.0/1', '128.0.0.0/1'])].sort(), 'one set per distinct content');
      await driver.send({ op: 'acls', id: B.id, acls: v4([rule({ cidr: '192.168.10.1/32' })]), wait: true });
      expect(await felixSets(host)).to.include(group, 'still used by A');
      expect(await orphanSets(host)).to.deep.equal([]);
      await driver.send({ op: 'acls', id: A.id, acls: v4([rule({ cidr: '192.168.10.2/32' })]), wait: true });
      expect(await felixSets(host)).not.to.include(group, 'nobody uses it any more');
      expect(await orphanSets(host)).to.deep.equal([]);
      expect(await canPing(a, B.ip)).to.equal(true);
      expect(await canPing(b, A.ip)).to.equal(true);
    });

    it('rules: tcp with port null allows every tcp port through a chain rule; protocol 1 is icmp; one bad rule denies nothing else', async () => {
      const { host, a, b, driver } = await lab();
      await program(driver, [
        [spec(A), OPEN],
        [
          spec(B),
          v4([
            rule({ cidr: '192.168.10.1/32', protocol: 'tcp' }),
            rule({ cidr: '192.168.10.0/24', protocol: '1' }),
            rule({ cidr: '192.168.10.1/32', protocol: '0' }),
          ]),
        ],
      ]);
      expect((await host.run('iptables-save', ['-t', 'filter'])).split('\n')).to.include('-A felix-to-bbbbbbbbbbb -s 192.168.10.1/32 -p tcp -j RETURN');
      listen(b, 8080);
      listen(b, 9090);
      expect(await canConnect(a, B.ip, 8080)).to.equal(true);
      expect(await canConnect(a, B.ip, 9090)).to.equal(true);
      expect(await canPing(a, B.ip), 'protocol 1').to.equal(true);
      expect(driver.log()).to.contain('invalid ACL rule skipped');
    });

    it('dispatch: with 40 endpoints every dispatch chain stays short and every endpoint is reached', async () => {
      const { host, a, b, driver } = await lab();
      const extra = Array.from({ length: 38 }, (_, i) => ({
        id: `${((i * 7919) % 4096).toString(16).padStart(3, '0')}e${i}`.padEnd(16, '0'),
        ip: `192.168.11.${i + 1}`,
      }));
      await host.run('ip', ['-batch', '-'], {
        input: extra.map((e, i) => `link add ${tap(e.id)} type veth peer name xp${i}\nlink set ${tap(e.id)} up\nlink set xp${i} up\n`).join(''),
      });
      await program(driver, [
        [spec(A), OPEN],
        [spec(B), OPEN],
        ...extra.map((e, i): [EndpointSpec, Acls] => [
          { id: e.id, ifname: tap(e.id), mac: `ee:ee:00:00:01:${i.toString(16).padStart(2, '0')}`, addrs: [e.ip], enabled: true },
          OPEN,
        ]),
      ]);
      const chains = new Map<string, number>();
      for (const line of (await host.run('iptables-save', ['-t', 'filter'])).split('\n')) {
        const m = /^-A (felix-(?:FROM|TO)-(?:ENDPOINT|IF-\S+)) /.exec(line);
        if (m) chains.set(m[1]!, (chains.get(m[1]!) ?? 0) + 1);
      }
      expect(
        [...chains.keys()].some((n) => n.startsWith('felix-FROM-IF-tap')),
        'the root is split',
      ).to.equal(true);
      expect(Math.max(...chains.values())).to.be.at.most(18);
      expect(await canPing(a, B.ip)).to.equal(true);
      expect(await canPing(b, A.ip)).to.equal(true);
    });

    it('upgrades a version-1 layout without a gap: its chains keep working until the ACLs arrive, then its sets go', async () => {
      const { host, a, b } = await plugAB();
      const v1 = (s: string, ip: string, mac: string): { sets: string; rules: string[] } => ({
        sets: ['to', 'from']
          .flatMap((d) => [
            `create felix-${d}-addr-${s} hash:net family inet`,
            `create felix-${d}-port-${s} hash:net,port family inet`,
            `create felix-${d}-icmp-${s} hash:net family inet`,
          ])
          .concat([`add felix-to-addr-${s} 192.168.10.0/24`, `add felix-from-addr-${s} 0.0.0.0/1`, `add felix-from-addr-${s} 128.0.0.0/1`])
          .join('\n'),
        rules: [
          `-A felix-to-${s} -m conntrack --ctstate INVALID -j DROP`,
          `-A felix-to-${s} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN`,
          `-A felix-to-${s} -m set --match-set felix-to-port-${s} src,dst -j RETURN`,
          `-A felix-to-${s} -m set --match-set felix-to-addr-${s} src -j RETURN`,
          `-A felix-to-${s} -p icmp -m set --match-set felix-to-icmp-${s} src -j RETURN`,
          `-A felix-to-${s} -j DROP`,
          `-A felix-from-${s} -m conntrack --ctstate INVALID -j DROP`,
          `-A felix-from-${s} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN`,
          `-A felix-from-${s} -p udp -m udp --sport 68 --dport 67 -j RETURN`,
          `-A felix-from-${s} -s ${ip}/32 -m mac --mac-source ${mac} -j MARK --set-xmark 0x1/0xffffffff`,
          `-A felix-from-${s} -m mark ! --mark 0x1 -j DROP`,
          `-A felix-from-${s} -m set --match-set felix-from-port-${s} dst,dst -j RETURN`,
          `-A felix-from-${s} -m set --match-set felix-from-addr-${s} dst -j RETURN`,
          `-A felix-from-${s} -p icmp -m set --match-set felix-from-icmp-${s} dst -j RETURN`,
          `-A felix-from-${s} -j DROP`,
        ],
      });
      const eps = [v1('aaaaaaaaaaa', A.ip, A.mac), v1('bbbbbbbbbbb', B.ip, B.mac)];
      await host.run('ipset', ['restore'], { input: eps.map((e) => e.sets).join('\n') + '\n' });
      const chains = [
        'felix-FORWARD',
        'felix-INPUT',
        'felix-FROM-ENDPOINT',
        'felix-TO-ENDPOINT',
        ...['aaaaaaaaaaa', 'bbbbbbbbbbb'].flatMap((s) => [`felix-to-${s}`, `felix-from-${s}`]),
      ];
      await host.run('iptables-restore', ['--noflush'], {
        input: [
          '*filter',
          ...chains.map((c) => `:${c} - [0:0]`),
          '-A FORWARD -j felix-FORWARD',
          '-A INPUT -j felix-INPUT',
          '-A felix-FORWARD -i tap+ -j felix-FROM-ENDPOINT',
          '-A felix-FORWARD -o tap+ -j felix-TO-ENDPOINT',
          '-A felix-FORWARD -i tap+ -j ACCEPT',
          '-A felix-FORWARD -o tap+ -j ACCEPT',
          '-A felix-INPUT -i tap+ -j felix-FROM-ENDPOINT',
          '-A felix-INPUT -i tap+ -j ACCEPT',
          '-A felix-FROM-ENDPOINT -i tapaaaaaaaaaaa -g felix-from-aaaaaaaaaaa',
          '-A felix-FROM-ENDPOINT -i tapbbbbbbbbbbb -g felix-from-bbbbbbbbbbb',
          '-A felix-FROM-ENDPOINT -j DROP',
          '-A felix-TO-ENDPOINT -o tapaaaaaaaaaaa -g felix-to-aaaaaaaaaaa',
          '-A felix-TO-ENDPOINT -o tapbbbbbbbbbbb -g felix-to-bbbbbbbbbbb',
          '-A felix-TO-ENDPOINT -j DROP',
          ...eps.flatMap((e) => e.rules),
          'COMMIT',
          '',
        ].join('\n'),
      });
      await host.sh(
        `sysctl -qw net.ipv4.ip_forward=1; for t in ${A.ifname} ${B.ifname}; do sysctl -qw net.ipv4.conf.$t.proxy_arp=1 net.ipv4.neigh.$t.proxy_delay=0; done; ip route add ${A.ip} dev ${A.ifname}; ip route add ${B.ip} dev ${B.ifname}`,
      );
      expect(await canPing(a, B.ip), 'the version-1 layout works').to.equal(true);

      const driver = await startDriver(host);
      expect(await canPing(a, B.ip), 'after start').to.equal(true);
      await program(driver, [
        [spec(A), null],
        [spec(B), null],
      ]);
      expect(await canPing(a, B.ip), 'known, ACLs on their way').to.equal(true);
      await program(driver, [
        [spec(A), OPEN],
        [spec(B), OPEN],
      ]);
      expect(await canPing(b, A.ip), 'version 2').to.equal(true);
      await driver.send({ op: 'cleanup', wait: true });
      expect(
        (await felixSets(host)).filter((n) => /^felix-(to|from)-/.test(n)),
        'version-1 sets gone',
      ).to.deep.equal([]);
      expect(
        (await felixRules(host)).filter((r) => r.includes('ctstate') && /felix-(to|from)-/.test(r)),
        'no per-endpoint conntrack rule',
      ).to.deep.equal([]);
      expect(await orphanSets(host)).to.deep.equal([]);
      expect(await canPing(a, B.ip)).to.equal(true);
    });
  });
});
