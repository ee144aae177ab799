/**
 * The built `calico-felix` in a network namespace of its own, against
 * independent plugin and ACL-manager peers speaking SPEC §3 and §5 over
 * ZeroMQ ipc:// sockets (files are shared across namespaces, so the peers
 * can stay in the test process). Checks what an operator would see: routes,
 * chains, sets, and packets between container namespaces.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Container, Netns, createNetns, deleteAllNetns, plugContainer } from '../support/netns.js';
import { FakeAclManager, FakePlugin, createMsg, ipc, suffix, tap, writeFelixConfig } from '../support/felix-peers.js';
import { Running, runCommand, startCommand, stop, stopAll, waitFor } from '../support/process.js';
import { chainSets, felixSets, orphanSets } from '../support/dataplane.js';
import { errorMessage } from '../../src/common/errors.js';

type Json = Record<string, unknown>;
const FELIX = 'src/felix/main.js';
const STATUS = 'src/status/main.js';
/** Felix's metrics port, inside its namespace. */
const METRICS_PORT = 9091;

const EP1 = { id: 'f1f1f1f1f1f1aa01', ip: '192.168.30.1' };
const EP2 = { id: 'f2f2f2f2f2f2aa02', ip: '192.168.30.2' };

const rule = (cidr: string, extra: Json = {}) => ({ group: null, cidr, protocol: null, port: null, ...extra });
const rules = (inbound: Json[]) => ({ inbound, outbound: [rule('0.0.0.0/0')], inbound_default: 'deny', outbound_default: 'deny' });
const acls = (inbound: Json[]) => ({ v4: rules(inbound), v6: { inbound: [], outbound: [], inbound_default: 'deny', outbound_default: 'deny' } });

describe('calico-felix (built command, in a namespace, against wire peers)', function () {
  this.timeout(60000);
  let dir: string;
  let host: Netns;
  let c1: Container;
  let c2: Container;
  let plugin: FakePlugin;
  let aclmgr: FakeAclManager;
  let felix: Running;
  let cfg: string;

  const sock = (name: string) => ipc(dir, name);

  function startFelix(): Running {
    felix = startCommand(FELIX, ['--config-file', cfg], { netns: host.name });
    return felix;
  }

  async function routes(): Promise<string> {
    return host.run('ip', ['route', 'show']);
  }

  async function ping(from: Container, to: Container): Promise<boolean> {
    return (await from.ns.exec('ping', ['-c', '1', '-W', '0.3', to.ip])).code === 0;
  }

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'felix-test-'));
    host = await createNetns('fhost', 'cflx');
    c1 = await plugContainer(host, 'c1', EP1.ip, tap(EP1.id));
    c2 = await plugContainer(host, 'c2', EP2.ip, tap(EP2.id));
    // A TCP listener in c2 for connection checks.
    void c2.ns.exec('timeout', ['55', 'nc', '-lk', '7000'], { timeoutMs: 56000 });
    cfg = writeFelixConfig(dir, `[metrics]\nMetricsPort = ${METRICS_PORT}\n`);
    // A lost plugin is noticed within about a second (the plugin's own REQ still gives up on a dead Felix sooner).
    fs.writeFileSync(cfg, fs.readFileSync(cfg, 'utf8').replace(/^ConnectionTimeoutMillis = \d+$/m, 'ConnectionTimeoutMillis = 1200'));
    expect(fs.readFileSync(cfg, 'utf8')).to.match(/^ConnectionTimeoutMillis = 1200$/m);
    plugin = new FakePlugin(sock('plugin.sock'), sock('felix.sock'));
    plugin.endpoints.set(EP1.id, createMsg(EP1, c1.mac));
    plugin.endpoints.set(EP2.id, createMsg(EP2, c2.mac));
    await plugin.listen();
    aclmgr = new FakeAclManager();
    await aclmgr.bind(sock('acl.sock'), sock('aclpub.sock'));
    startFelix();
  });

  after(async () => {
    // Unset if the before hook failed.
    (plugin as FakePlugin | undefined)?.close();
    (aclmgr as FakeAclManager | undefined)?.close();
    await stopAll();
    await deleteAllNetns();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('resyncs at start and programs every endpoint it is sent: route, neighbour, sysctls', async () => {
    const resync = await plugin.rep!.inbox.take((m) => m['type'] === 'RESYNCSTATE', 'RESYNCSTATE', 10000);
    expect(resync['hostname']).to.equal('host1.example.com');
    expect(resync['resync_id']).to.be.a('string').and.not.equal('');
    await waitFor(
      'routes to both endpoints',
      async () => {
        const r = await routes();
        return r.includes(`${EP1.ip} dev ${tap(EP1.id)} scope link`) && r.includes(`${EP2.ip} dev ${tap(EP2.id)} scope link`);
      },
      10000,
    );
    const neigh = await host.run('ip', ['neigh', 'show', 'dev', tap(EP1.id)]);
    expect(neigh).to.match(new RegExp(`${EP1.ip.replace(/\./g, '\\.')} lladdr ${c1.mac} PERMANENT`));
    expect((await host.run('cat', [`/proc/sys/net/ipv4/conf/${tap(EP1.id)}/proxy_arp`])).trim()).to.equal('1');
  });

  it('keeps new endpoints denied until their ACLs arrive, then enforces them', async () => {
    await aclmgr.rep.inbox.take((m) => m['type'] === 'GETACLSTATE' && m['endpoint_id'] === EP2.id, 'GETACLSTATE for EP2');
    expect(await ping(c1, c2)).to.equal(false);
    await aclmgr.set(EP1.id, acls([rule(`${EP2.ip}/32`)]));
    await aclmgr.set(EP2.id, acls([rule(`${EP1.ip}/32`, { protocol: 'tcp', port: 7000 }), rule(`${EP1.ip}/32`, { protocol: 'icmp' })]));
    await waitFor('ping c1 -> c2', () => ping(c1, c2), 10000);
    expect((await c1.ns.exec('nc', ['-z', '-w', '1', EP2.ip, '7000'])).code, 'tcp 7000 allowed').to.equal(0);
    expect((await c1.ns.exec('nc', ['-z', '-w', '1', EP2.ip, '7001'])).code, 'tcp 7001 denied').to.not.equal(0);
    expect((await chainSets(host, `felix-to-${suffix(EP2.id)}`))['port']).to.include(`${EP1.ip},tcp:7000`);
  });

  it("refuses creates that name another endpoint's interface, an uplink, a fabric or host address; nothing is touched", async () => {
    await host.sh(
      'ip link add uplink0 type veth peer name uplink1; ip addr add 198.18.0.1/24 dev uplink0; ip link set uplink0 up; ip link set uplink1 up; ip route add 10.99.0.0/24 dev uplink0',
    );
    await aclmgr.set(EP1.id, acls([]));
    await waitFor('c1 closed to c2', async () => !(await ping(c2, c1)), 5000);
    const attack = (id: string, over: Json) => plugin.send({ ...createMsg({ id, ip: '192.168.30.99' }, 'ee:ee:ee:ee:ee:99'), ...over });
    const rows: [string, Json, RegExp][] = [
      ['attacker00000001', { interface_name: tap(EP1.id) }, /belongs to endpoint/],
      ['attacker00000002', { interface_name: 'uplink0', addrs: [{ addr: '10.99.0.5' }] }, /must start with tap/],
      ['attacker00000003', { addrs: [{ addr: '198.18.0.2' }] }, /on the link of uplink0/],
      ['attacker00000004', { addrs: [{ addr: '198.18.0.1' }] }, /address of this host/],
      ['attacker00000005', { addrs: [{ addr: EP2.ip }] }, /belongs to endpoint/],
    ];
    for (const [id, over, why] of rows) {
      const reply = await attack(id, over);
      expect(reply['rc'], id).to.equal('INVALID');
      expect(reply['message'], id).to.match(why);
      // What the attacker would publish for itself: everything allowed.
      await aclmgr.set(id, acls([rule('0.0.0.0/0')]));
    }
    const filter = await host.run('iptables-save', ['-t', 'filter']);
    expect(filter).to.include(`-o ${tap(EP1.id)} -g felix-to-${suffix(EP1.id)}`);
    expect(filter).not.to.include('attacker');
    expect(await routes())
      .to.include('10.99.0.0/24 dev uplink0')
      .and.not.include('198.18.0.2')
      .and.not.include('192.168.30.99');
    expect((await host.run('cat', ['/proc/sys/net/ipv4/conf/uplink0/proxy_arp'])).trim()).to.equal('0');
    expect(await ping(c2, c1), 'c2 still denied').to.equal(false);
    await aclmgr.set(EP1.id, acls([rule(`${EP2.ip}/32`)]));
    await waitFor('c1 open to c2 again', () => ping(c2, c1), 5000);
  });

  it('ignores ACLs published on a longer topic that starts with the endpoint id', async () => {
    await aclmgr.set(EP2.id, acls([]));
    await waitFor('c2 closed', async () => !(await ping(c1, c2)), 5000);
    await aclmgr.pub.publish(`${EP2.id}x`, { type: 'ACLUPDATE', acls: acls([rule('0.0.0.0/0')]), issued: Date.now() });
    // Published after it on the same socket, EP1's new ACLs reach the kernel only once Felix has read,
    // and (had it taken it) applied, the longer topic's.
    await aclmgr.set(EP1.id, acls([rule(`${EP2.ip}/32`), rule('10.77.0.1/32')]));
    await waitFor('EP1’s later ACLs programmed', async () => ((await chainSets(host, `felix-to-${suffix(EP1.id)}`))['addr'] ?? []).includes('10.77.0.1'), 5000);
    expect(await ping(c1, c2)).to.equal(false);
    await aclmgr.set(EP2.id, acls([rule(`${EP1.ip}/32`)]));
    await waitFor('c2 open again', () => ping(c1, c2), 5000);
  });

  it('reports its endpoints, connections and resyncs on /status (through calico-status) and /metrics', async () => {
    const url = `http://127.0.0.1:${METRICS_PORT}`;
    type Ep = Record<string, unknown>;
    const status = await waitFor(
      'calico-status: ready, both endpoints programmed',
      async () => {
        const r = await runCommand(STATUS, ['--url', url, '--json'], { netns: host.name });
        const s = (JSON.parse(r.output) as Json[])[0]!['status'] as Json;
        return r.code === 0 && (s['endpoints'] as Ep[]).filter((e) => e['programmed']).length === 2 ? s : null;
      },
      10000,
    );
    expect(status).to.include({ component: 'calico-felix', ready: true });
    const eps = status!['endpoints'] as Ep[];
    expect(
      eps.map((e) => [e['id'], e['ifname'], e['addrs'], e['mac'], e['enabled'], e['interfaceUp'], e['routesProgrammed'], e['chainsProgrammed'], e['error']]),
    ).to.deep.equal([
      [EP1.id, tap(EP1.id), [EP1.ip], c1.mac, true, true, true, true, null],
      [EP2.id, tap(EP2.id), [EP2.ip], c2.mac, true, true, true, true, null],
    ]);
    for (const e of eps) expect(e['aclAgeSeconds']).to.be.a('number').and.at.least(0);
    expect(status!['facts']).to.include({ endpoints: 2, endpointsProgrammed: 2, endpointsWithoutAcls: 0, endpointsFailed: 0, resyncsCompleted: 1 });
    const conns = Object.fromEntries((status!['connections'] as Json[]).map((c) => [c['name'] as string, c]));
    expect(Object.keys(conns)).to.deep.equal(['plugin', 'plugin-requests', 'aclmgr', 'aclmgr-updates']);
    expect(conns['plugin']!['address']).to.equal(sock('plugin.sock'));
    expect(conns['plugin-requests']!['received']).to.be.at.least(2);
    expect(conns['aclmgr-updates']!['received']).to.be.at.least(3);

    const table = await runCommand(STATUS, ['--url', url], { netns: host.name });
    expect(table.code, table.output).to.equal(0);
    for (const ep of [EP1, EP2])
      expect(table.output).to.match(
        new RegExp(`^  ${ep.id}\\s+${tap(ep.id)}\\s+${ep.ip.replace(/\./g, '\\.')}\\s+yes\\s+yes\\s+yes\\s+yes\\s+\\S+ ago\\s+\\d+/\\d+\\s+programmed$`, 'm'),
      );

    const script = `fetch('${url}/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))`;
    const metrics = await host.run(process.execPath, ['-e', script]);
    const value = (name: string) =>
      Number(
        metrics
          .split('\n')
          .find((l) => l.startsWith(`${name} `))
          ?.slice(name.length + 1),
      );
    expect(value('calico_felix_endpoints')).to.equal(2);
    expect(value('calico_felix_endpoints_programmed')).to.equal(2);
    expect(value('calico_felix_resyncs_completed_total')).to.equal(1);
    expect(value('calico_felix_dataplane_apply_seconds_count{part="filter"}')).to.be.at.least(1);
    expect(value('calico_felix_dataplane_apply_seconds_count{part="routes"}')).to.be.at.least(1);
    expect(value('calico_messages_received_total{connection="aclmgr-updates",api="acl",type="ACLUPDATE",rc=""}')).to.be.at.least(3);
    expect(value('calico_messages_received_total{connection="plugin",api="endpoint",type="RESYNCSTATE",rc="SUCCESS"}')).to.equal(1);
  });

  it('answers bad requests with an error rc, and unknown endpoints with NOTEXIST', async () => {
    const rows: Array<[Json, string]> = [
      [{ ...createMsg({ id: 'x1', ip: '192.168.30.9' }, 'ee:ee'), type: 'ENDPOINTCREATED' }, 'INVALID'],
      [{ ...createMsg({ id: 'x1', ip: '192.168.30.300' }, 'ee:ee:ee:ee:ee:01') }, 'INVALID'],
      [{ ...createMsg({ id: 'x1', ip: '192.168.30.9' }, 'ee:ee:ee:ee:ee:01'), state: 'sleepy' }, 'INVALID'],
      [{ type: 'ENDPOINTUPDATED', endpoint_id: 'nobody', mac: 'ee:ee:ee:ee:ee:01', addrs: [], state: 'enabled' }, 'NOTEXIST'],
      [{ type: 'ENDPOINTDESTROYED', endpoint_id: 'nobody' }, 'NOTEXIST'],
      [{ type: 'RESYNCSTATE' }, 'FAILURE'],
    ];
    for (const [msg, rc] of rows) {
      const reply = await plugin.send(msg);
      expect(reply['rc'], JSON.stringify(msg)).to.equal(rc);
      expect(reply['message']).to.not.equal('');
    }
    expect(await ping(c1, c2), 'state unchanged').to.equal(true);
  });

  it('disables and enables an endpoint: routes go and come back', async () => {
    const base = plugin.endpoints.get(EP2.id)!;
    const upd = { type: 'ENDPOINTUPDATED', endpoint_id: EP2.id, mac: base['mac'], addrs: base['addrs'] };
    expect((await plugin.send({ ...upd, state: 'disabled', issued: Date.now() }))['rc']).to.equal('SUCCESS');
    await waitFor('route to EP2 gone', async () => !(await routes()).includes(`${EP2.ip} dev`), 5000);
    expect(await ping(c1, c2)).to.equal(false);
    expect((await plugin.send({ ...upd, state: 'enabled', issued: Date.now() }))['rc']).to.equal('SUCCESS');
    await waitFor('ping after enable', () => ping(c1, c2), 5000);
  });

  it('survives kill -9: established traffic keeps flowing, the restart resyncs and duplicates nothing', async () => {
    const before = await host.run('iptables-save', ['-t', 'filter']);
    // 30 pings at 100 ms intervals span the kill and the restart.
    const pinging = c1.ns.exec('ping', ['-c', '30', '-i', '0.1', '-W', '1', EP2.ip], { timeoutMs: 20000 });
    await new Promise((r) => setTimeout(r, 500));
    felix.child.kill('SIGKILL');
    await felix.exited;
    startFelix();
    await plugin.rep!.inbox.take((m) => m['type'] === 'RESYNCSTATE', 'RESYNCSTATE after restart', 10000);
    const result = await pinging;
    expect(result.stdout).to.match(/30 packets transmitted, 30 received/);
    await waitFor(
      'felix log says resync complete',
      () =>
        fs
          .readFileSync(path.join(dir, 'felix.log'), 'utf8')
          .split('\n')
          .filter((l) => l.includes('"resync complete"')).length >= 1,
      10000,
    );
    const after = await host.run('iptables-save', ['-t', 'filter']);
    const rulesOf = (s: string) =>
      s
        .split('\n')
        .filter((l) => l.startsWith('-A'))
        .sort();
    expect(rulesOf(after)).to.deep.equal(rulesOf(before));
  });

  it('removes an endpoint that vanished while Felix was down, once the resync completes', async () => {
    felix.child.kill('SIGKILL');
    await felix.exited;
    plugin.endpoints.delete(EP2.id);
    startFelix();
    await waitFor(
      'EP2 cleaned up',
      async () => {
        const chains = await host.run('iptables-save', ['-t', 'filter']);
        return !(await routes()).includes(EP2.ip) && !chains.includes(suffix(EP2.id)) && (await orphanSets(host)).length === 0;
      },
      10000,
    ).catch(async (err: unknown) => {
      throw new Error(
        `${errorMessage(err)}\n${await routes()}\n${await host.run('iptables-save', ['-t', 'filter'])}\n${await host.run('ipset', ['list', '-n'])}\n${fs.readFileSync(path.join(dir, 'felix.log'), 'utf8').split('\n').slice(-15).join('\n')}`,
      );
    });
    expect(await routes()).to.include(`${EP1.ip} dev ${tap(EP1.id)}`);
  });

  it('destroys an endpoint: route, neighbour, chains and sets go', async () => {
    expect((await plugin.send({ type: 'ENDPOINTDESTROYED', endpoint_id: EP1.id, issued: Date.now() }))['rc']).to.equal('SUCCESS');
    plugin.endpoints.delete(EP1.id);
    await waitFor(
      'EP1 gone',
      async () => {
        const chains = await host.run('iptables-save', ['-t', 'filter']);
        const neigh = await host.run('ip', ['neigh', 'show', 'dev', tap(EP1.id)]);
        return !(await routes()).includes(EP1.ip) && !chains.includes(suffix(EP1.id)) && (await felixSets(host)).length === 0 && !neigh.includes('PERMANENT');
      },
      10000,
    );
  });

  it('resyncs by itself when the plugin goes away and comes back', async () => {
    const pluginResets = async () => {
      const r = await runCommand(STATUS, ['--url', `http://127.0.0.1:${METRICS_PORT}`, '--json'], { netns: host.name });
      const conns = ((JSON.parse(r.output) as Json[])[0]!['status'] as Json)['connections'] as Json[];
      return conns.find((c) => c['name'] === 'plugin')!['resets'] as number;
    };
    const before = await pluginResets();
    plugin.rep!.close();
    plugin.endpoints.set(EP1.id, createMsg(EP1, c1.mac));
    // Away until Felix has given up on it: its unanswered HEARTBEAT timed out, a reset of the plugin
    // connection in status (when, exactly, is the unit tests' business).
    await waitFor('a reset of the plugin connection', async () => (await pluginResets()) > before, 15000, 200);
    await plugin.listen();
    await plugin.rep!.inbox.take((m) => m['type'] === 'RESYNCSTATE', 'RESYNCSTATE to the new plugin', 15000);
    await waitFor('EP1 programmed again', async () => (await routes()).includes(`${EP1.ip} dev ${tap(EP1.id)}`), 10000);
  });

  it('is live but not ready while no plugin answers its resync', async () => {
    const lonely = await createNetns('flonely', 'cflx');
    const lonelyCfg = path.join(dir, 'lonely.cfg');
    fs.writeFileSync(lonelyCfg, fs.readFileSync(cfg, 'utf8').replace(/ipc:\/\/[^\n]*\/(\w+)\.sock/g, `ipc://${dir}/lonely-$1.sock`));
    const f = startCommand(FELIX, ['--config-file', lonelyCfg], { netns: lonely.name });
    const script = (p: string) => `fetch('http://127.0.0.1:${METRICS_PORT}${p}').then(async (r) => process.stdout.write(r.status + ' ' + await r.text()))`;
    const live = await waitFor('/livez', async () => (await lonely.exec(process.execPath, ['-e', script('/livez')])).stdout, 10000);
    expect(live).to.equal('200 ok');
    expect(await lonely.run(process.execPath, ['-e', script('/readyz')])).to.equal('503 not ready: waiting for first resync with the plugin');
    const r = await runCommand(STATUS, ['--url', `http://127.0.0.1:${METRICS_PORT}`], { netns: lonely.name });
    expect(r.code).to.equal(1);
    expect(r.output).to.match(/^calico-felix .* NOT READY \(waiting for first resync with the plugin\)/m);
    await stop(f);
  });

  it('stops with a one-line error naming file, section and key on a bad config', async () => {
    const bad = path.join(dir, 'bad.cfg');
    fs.writeFileSync(bad, '[global]\nPluginAddress = 10.0.0.1\n[connection]\nConnectionTimeoutMillis = soon\n');
    const r = await runCommand(FELIX, ['--config-file', bad], { netns: host.name });
    expect(r.code).to.equal(1);
    expect(r.output.trim()).to.equal(`calico-felix: ${bad}: [global] ACLAddress: missing (required)`);
    fs.writeFileSync(bad, '[global]\nPluginAddress = 10.0.0.1\nACLAddress = 10.0.0.1\n[connection]\nConnectionTimeoutMillis = soon\n');
    const r2 = await runCommand(FELIX, ['--config-file', bad], { netns: host.name });
    expect(r2.output.trim()).to.equal(`calico-felix: ${bad}:5: [connection] ConnectionTimeoutMillis: bad value "soon": expected a whole number`);
    await stop(felix);
  });
});
