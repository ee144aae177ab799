/**
 * The Felix dataplane against the real kernel, inside network namespaces this
 * test creates: a "host" namespace where the Dataplane runs (in a child
 * process started with `ip netns exec`), and "container" namespaces joined to
 * it by veth pairs. Real packets between the containers through the host.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import type { Acls } from '../../src/common/wire/acl-api.js';
import type { Rule } from '../../src/common/wire/rules.js';
import type { EndpointSpec, EndpointStatus } from '../../src/felix/dataplane/index.js';
import { DataplaneDriver } from '../../bench/felix/driver-client.js';
import { Container, Netns, createNetns, deleteAllNetns, plugContainer } from '../support/netns.js';
import { waitFor } from '../support/process.js';

const A = { id: 'aaaaaaaaaaaa0001', ifname: 'tapaaaaaaaaaaa', ip: '192.168.10.1', mac: 'ee:ee:00:00:00:01' };
const B = { id: 'bbbbbbbbbbbb0002', ifname: 'tapbbbbbbbbbbb', ip: '192.168.10.2', mac: 'ee:ee:00:00:00:02' };
const C = { id: 'cccccccccccc0003', ifname: 'tapccccccccccc', ip: '192.168.10.3', mac: 'ee:ee:00:00:00:03' };

const rule = (fields: Partial<Rule>): Rule => ({ group: null, cidr: null, protocol: null, port: null, ...fields });
const rules = (inbound: Rule[], outbound: Rule[] = [rule({ cidr: '0.0.0.0/0' })]): Acls['v4'] => ({ inbound, outbound, inbound_default: 'deny', outbound_default: 'deny' });
const v4 = (inbound: Rule[], outbound?: Rule[]): Acls => ({ v4: rules(inbound, outbound), v6: rules([], []) });
/** Allows everything from the other containers. */
const OPEN = v4([rule({ cidr: '192.168.10.0/24' })]);

const spec = (e: typeof A, over: Partial<EndpointSpec> = {}): EndpointSpec => ({ id: e.id, ifname: e.ifname, mac: e.mac, addrs: [e.ip], enabled: true, ...over });

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

async function lab(opts: Record<string, unknown> = {}): Promise<Lab> {
  const host = await createNetns('host');
  const a = await plugContainer(host, 'a', A.ip, A.ifname, { mac: A.mac });
  const b = await plugContainer(host, 'b', B.ip, B.ifname, { mac: B.mac });
  const driver = await startDriver(host, opts);
  return { host, a, b, driver };
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

/** A TCP listener inside the container (killed with its namespace). */
function listen(c: Container, port: number): void {
  const child = spawn('ip', ['netns', 'exec', c.ns.name, 'nc', '-lk', String(port)], { stdio: 'ignore' });
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
  return (await host.run(tool)).split('\n').filter((l) => /^-A (felix-|FORWARD|INPUT|PREROUTING)/.test(l)).sort();
}

async function setMembers(host: Netns, name: string): Promise<string[]> {
  const out = await host.run('ipset', ['list', name]);
  return (out.split('Members:')[1] ?? '').split('\n').map((l) => l.trim()).filter(Boolean).sort();
}

async function felixSets(host: Netns): Promise<string[]> {
  return (await host.run('ipset', ['list', '-n'])).split('\n').filter((l) => l.startsWith('felix-')).sort();
}

/** Everything Felix programs, for before/after comparisons. */
async function snapshot(host: Netns): Promise<string> {
  const sets = (await host.run('ipset', ['save'])).split('\n').filter((l) => l.startsWith('add ') || l.startsWith('create ')).map((l) => l.replace(/ initval \S+/, '')).sort();
  return [...(await felixRules(host)), ...(await felixRules(host, 'ip6tables-save')), ...sets, await host.run('ip', ['route']), await host.run('ip', ['neigh', 'show', 'nud', 'permanent'])].join('\n');
}

const restores = (stats: Record<string, number>): number =>
  Object.entries(stats).filter(([k]) => k.includes('restore')).reduce((a, [, v]) => a + v, 0);

describe('Felix dataplane in network namespaces', function () {
  this.timeout(60000);

  afterEach(async () => {
    for (const d of drivers) await d.stop().catch(() => d.kill());
    drivers = [];
    await deleteAllNetns();
  });

  it('programs sysctls, host chains, endpoint chains, sets, routes and neighbours (golden)', async () => {
    const { host, driver } = await lab({ metadata: { addr: '127.0.0.1', port: 9697 } });
    await program(driver, [
      [spec(A), v4([rule({ cidr: '192.168.10.2/32', protocol: 'tcp', port: 80 }), rule({ cidr: '10.0.0.0/8', protocol: 'icmp' })])],
      [spec(B), null],
    ]);
    expect(await status(driver, A.id)).to.deep.equal({ programmed: true, routesProgrammed: true, filterProgrammed: true, interfaceUp: true });

    expect(await felixRules(host)).to.deep.equal(
      [
        '-A FORWARD -j felix-FORWARD',
        '-A INPUT -j felix-INPUT',
        '-A PREROUTING -j felix-PREROUTING',
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
        '-A felix-PREROUTING -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 127.0.0.1:9697',
        ...['aaaaaaaaaaa', 'bbbbbbbbbbb'].flatMap((s, i) => [
          `-A felix-to-${s} -m conntrack --ctstate INVALID -j DROP`,
          `-A felix-to-${s} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN`,
          `-A felix-to-${s} -m set --match-set felix-to-port-${s} src,dst -j RETURN`,
          `-A felix-to-${s} -m set --match-set felix-to-addr-${s} src -j RETURN`,
          `-A felix-to-${s} -p icmp -m set --match-set felix-to-icmp-${s} src -j RETURN`,
          `-A felix-to-${s} -j DROP`,
          `-A felix-from-${s} -m conntrack --ctstate INVALID -j DROP`,
          `-A felix-from-${s} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN`,
          `-A felix-from-${s} -p udp -m udp --sport 68 --dport 67 -j RETURN`,
          `-A felix-from-${s} -s 192.168.10.${i + 1}/32 -m mac --mac-source ee:ee:00:00:00:0${i + 1} -j MARK --set-xmark 0x1/0xffffffff`,
          `-A felix-from-${s} -m mark ! --mark 0x1 -j DROP`,
          `-A felix-from-${s} -m set --match-set felix-from-port-${s} dst,dst -j RETURN`,
          `-A felix-from-${s} -m set --match-set felix-from-addr-${s} dst -j RETURN`,
          `-A felix-from-${s} -p icmp -m set --match-set felix-from-icmp-${s} dst -j RETURN`,
          `-A felix-from-${s} -j DROP`,
        ]),
      ].sort(),
    );
    expect(await felixRules(host, 'ip6tables-save')).to.include('-A felix-FROM-ENDPOINT -j DROP').and.not.include.members(['-A felix-to-aaaaaaaaaaa -j DROP']);
    expect(await felixSets(host)).to.deep.equal(
      ['aaaaaaaaaaa', 'bbbbbbbbbbb'].flatMap((s) => ['to', 'from'].flatMap((d) => ['addr', 'port', 'icmp'].map((k) => `felix-${d}-${k}-${s}`))).sort(),
    );
    expect(await setMembers(host, 'felix-to-port-aaaaaaaaaaa')).to.deep.equal(['192.168.10.2,tcp:80']);
    expect(await setMembers(host, 'felix-to-icmp-aaaaaaaaaaa')).to.deep.equal(['10.0.0.0/8']);
    expect(await setMembers(host, 'felix-from-addr-aaaaaaaaaaa')).to.deep.equal(['0.0.0.0/1', '128.0.0.0/1']);
    expect(await setMembers(host, 'felix-from-addr-bbbbbbbbbbb')).to.deep.equal([], 'no ACLs yet: deny all');

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
    await program(driver, [[spec(A), OPEN], [spec(B), bAcls(8080)]]);
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
    const { a, b, driver } = await lab();
    await program(driver, [[spec(A), OPEN], [spec(B), v4([rule({ cidr: '0.0.0.0/0' })])]]);
    await a.ns.run('ip', ['addr', 'add', '192.168.10.99/32', 'dev', 'eth0']);
    expect(await canPing(a, B.ip)).to.equal(true);
    expect(await canPing(a, B.ip, '192.168.10.99'), 'spoofed source').to.equal(false);
    void b;
  });

  it('a new endpoint is denied until its ACLs arrive; disabled has no routes and empty sets; enable restores', async () => {
    const { host, a, driver } = await lab();
    await program(driver, [[spec(A), OPEN], [spec(B), null]]);
    expect(await canPing(a, B.ip), 'B has no ACLs yet').to.equal(false);
    await driver.send({ op: 'acls', id: B.id, acls: OPEN, wait: true });
    expect(await canPing(a, B.ip)).to.equal(true);

    await program(driver, [[spec(B, { enabled: false }), null]]);
    expect(await host.run('ip', ['route'])).not.to.contain('192.168.10.2');
    expect(await host.run('ip', ['neigh', 'show', 'nud', 'permanent'])).not.to.contain('192.168.10.2');
    expect(await setMembers(host, 'felix-to-addr-bbbbbbbbbbb')).to.deep.equal([]);
    expect(await canPing(a, B.ip), 'disabled').to.equal(false);

    await program(driver, [[spec(B), null]]);
    expect(await canPing(a, B.ip), 'enabled again').to.equal(true);
  });

  it('remove deletes chains, sets, routes and neighbours, and the traffic stops', async () => {
    const { host, a, driver } = await lab();
    await program(driver, [[spec(A), OPEN], [spec(B), OPEN]]);
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
    await program(driver, [[spec(A), OPEN], [spec(C), OPEN]]);
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

  it('repairs drift on the periodic refresh: a deleted jump, a flushed chain, a deleted route', async () => {
    const { host, a, driver } = await lab({ refreshMs: 300 });
    await program(driver, [[spec(A), OPEN], [spec(B), OPEN]]);
    const before = await snapshot(host);
    await host.sh('iptables -D FORWARD -j felix-FORWARD; iptables -F felix-to-bbbbbbbbbbb; ip route del 192.168.10.2 dev tapbbbbbbbbbbb');
    expect(await snapshot(host)).not.to.equal(before);
    await waitFor('drift repaired', async () => (await snapshot(host)) === before, 10000);
    expect(await canPing(a, B.ip)).to.equal(true);
  });

  it('an update that cannot be programmed (bad MAC) leaves the endpoint denied without crashing; a good one restores it', async () => {
    const { a, driver } = await lab();
    await program(driver, [[spec(A), OPEN], [spec(B), OPEN]]);
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
        ['upsert', { ep: spec(A) }], ['acls', { id: A.id, acls: OPEN }],
        ['upsert', { ep: spec(B) }], ['remove', { id: B.id }], ['upsert', { ep: spec(B) }], ['acls', { id: B.id, acls: OPEN }],
        ['acls', { id: 'nobody0000000000', acls: OPEN }], ['remove', { id: 'nobody0000000000' }],
        ['upsert', { ep: spec(C) }], ['remove', { id: C.id }],
      ]),
    });
    expect(await status(driver, B.id)).to.deep.equal({ programmed: true, routesProgrammed: true, filterProgrammed: true, interfaceUp: true });
    expect(await status(driver, C.id)).to.equal(null);
    expect(await canPing(a, B.ip)).to.equal(true);
    expect((await felixSets(host)).filter((n) => n.includes('ccccccccccc'))).to.deep.equal([]);
    // Reversed: remove first, then the ACLs of the removed endpoint arrive late.
    await driver.send({ op: 'batch', wait: true, items: items([['remove', { id: B.id }], ['remove', { id: B.id }], ['acls', { id: B.id, acls: OPEN }]]) });
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
    await program(driver, [[spec(A), OPEN], [spec(B), OPEN], [spec(C), OPEN]]);
    const before = await snapshot(host);
    const restoresBefore = restores((await driver.send({ op: 'stats' })).result as Record<string, number>);
    await program(driver, [[spec(A), OPEN], [spec(B), OPEN], [spec(C), OPEN]]);
    expect(restores((await driver.send({ op: 'stats' })).result as Record<string, number>), 'no restore for an unchanged apply').to.equal(restoresBefore);
    expect(await snapshot(host)).to.equal(before);

    // Restart: a new process that knows nothing yet.
    await driver.stop();
    const again = await startDriver(host);
    expect(await snapshot(host), 'start changes nothing').to.equal(before);
    expect(await canPing(a, B.ip), 'traffic flows before the resync').to.equal(true);
    expect(await canPing(a, C.ip), 'to C as well, until cleanup').to.equal(true);
    // The resync brings A and B back before their ACLs: what the last run programmed stays until they arrive.
    await program(again, [[spec(A), null], [spec(B), null]]);
    expect(await canPing(a, B.ip), 'new flows pass while the ACLs are on their way').to.equal(true);
    // C is gone.
    await program(again, [[spec(A), OPEN], [spec(B), OPEN]]);
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
    const acls: Acls = { v4: OPEN.v4, v6: rules([rule({ cidr: 'fd00:198:18::/48', protocol: 'icmpv6', icmp_type: 'echo-request' })], [rule({ cidr: '::/0' })]) };
    await program(driver, [[spec(A, { addrs: [A.ip, 'fd00:198:18::1'] }), acls]]);
    const v6rules = await felixRules(host, 'ip6tables-save');
    expect(v6rules).to.include('-A felix-FROM-ENDPOINT -i tapaaaaaaaaaaa -g felix-from-aaaaaaaaaaa');
    expect(v6rules).to.include('-A felix-from-aaaaaaaaaaa -s fd00:198:18::1/128 -m mac --mac-source ee:ee:00:00:00:01 -j MARK --set-xmark 0x1/0xffffffff');
    expect(await setMembers(host, 'felix-6-to-port-aaaaaaaaaaa')).to.deep.equal(['fd00:198:18::/48,ipv6-icmp:echo-request']);
    expect(await setMembers(host, 'felix-6-from-addr-aaaaaaaaaaa')).to.deep.equal(['8000::/1', '::/1']);
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
    expect(await setMembers(host, 'felix-to-port-aaaaaaaaaaa')).to.deep.equal(['10.1.0.0/16,udp:53']);
    expect(await setMembers(host, 'felix-to-addr-aaaaaaaaaaa')).to.deep.equal([]);
    expect(driver.log()).to.contain('invalid ACL rule skipped').and.contain('port without protocol');
  });

  it('a programming failure leaves the endpoint denied and is retried until it succeeds', async () => {
    const { host, a, driver } = await lab();
    // A foreign set of the wrong type squats one of B's set names: creating B's sets fails.
    await host.run('ipset', ['create', 'felix-to-addr-bbbbbbbbbbb', 'hash:ip']);
    await program(driver, [[spec(A), OPEN], [spec(B), OPEN]]);
    const failed = await status(driver, B.id);
    expect(failed!.programmed).to.equal(false);
    expect(failed!.error).to.match(/chains and sets/);
    expect(await canPing(a, B.ip), 'B denied').to.equal(false);
    expect((await felixRules(host)).filter((l) => l.includes('-g felix-to-bbbbbbbbbbb'))).to.deep.equal([]);
    expect(await status(driver, A.id)).to.deep.equal({ programmed: true, routesProgrammed: true, filterProgrammed: true, interfaceUp: true });
    expect(driver.log()).to.contain('endpoint left denied');

    await host.run('ipset', ['destroy', 'felix-to-addr-bbbbbbbbbbb']);
    await waitFor('B programmed after retry', async () => (await status(driver, B.id))?.programmed, 15000);
    expect(await canPing(a, B.ip)).to.equal(true);
  });
});
