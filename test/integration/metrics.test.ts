/**
 * Health, metrics and status over HTTP (issue 7), from the built commands:
 * `plugin` with --metrics-port and `calico-acl-manager` with [metrics], both
 * on 127.0.0.1, driven over real ZeroMQ sockets by independent peers; then
 * `calico-status` reading them.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { perTestWorkspace } from '../support/workspace.js';
import { freePorts } from '../support/ports.js';
import { Running, runCommand, startCommand, waitFor } from '../support/process.js';
import { ReplyPeer, RequestPeer } from '../support/peers.js';
import { PluginNetworkPeer } from '../support/plugin-network-peer.js';
import type { AclEndpointView } from '../../src/common/status-api.js';

type Json = Record<string, unknown>;
const PLUGIN = 'src/plugin/main.js';
const ACLMGR = 'src/aclmgr/main.js';
const STATUS = 'src/status/main.js';

async function get(port: number, p: string): Promise<{ code: number; body: string; type: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${p}`);
  return { code: res.status, body: await res.text(), type: res.headers.get('content-type') ?? '' };
}

/** The value of one sample in Prometheus text, or undefined. */
function sample(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

describe('health, metrics and status (built commands, HTTP on 127.0.0.1)', function () {
  this.timeout(30000);
  const ws = perTestWorkspace('metrics-test');

  describe('plugin ep', () => {
    let epPort: number, felixPort: number, metricsPort: number;
    let plugin: Running;
    let felix: ReplyPeer;

    beforeEach(async () => {
      [epPort, felixPort, metricsPort] = await freePorts(3);
      const data = path.join(ws.dir, 'data.txt');
      fs.writeFileSync(
        data,
        `[felix instance-1]\nip=127.0.0.1\nport=${felixPort}\nhost=instance-1\n\n` +
          [1, 2, 3]
            .map((n) => `[endpoint e${n}]\nid=ep${n}\nip=192.168.1.${n}\nmac=ee:ee:ee:ee:ee:0${n}\nhost=instance-1\ngroup=${n === 3 ? 'group2' : 'group1'}\n`)
            .join('\n'),
      );
      felix = ws.track(await new ReplyPeer().bind(`tcp://127.0.0.1:${felixPort}`));
      plugin = startCommand(PLUGIN, [
        'ep',
        '--data',
        data,
        '--log-dir',
        'none',
        '--log-severity-screen',
        'INFO',
        '--bind',
        '127.0.0.1',
        '--ep-port',
        String(epPort),
        '--metrics-port',
        String(metricsPort),
      ]);
      await waitFor('plugin ready', () => plugin.output().includes('"ready"'), 10000);
    });

    it('serves /livez, /readyz, and 404 for anything else', async () => {
      expect(await get(metricsPort, '/livez')).to.include({ code: 200, body: 'ok\n' });
      expect(await get(metricsPort, '/readyz')).to.include({ code: 200, body: 'ready\n' });
      const other = await get(metricsPort, '/nothing');
      expect(other.code).to.equal(404);
      expect((await fetch(`http://127.0.0.1:${metricsPort}/status`, { method: 'POST' })).status).to.equal(405);
    });

    it('counts what it received on /metrics and /status after some traffic', async () => {
      const resync = ws.track(new RequestPeer(`tcp://127.0.0.1:${epPort}`));
      expect((await resync.request({ type: 'RESYNCSTATE', resync_id: 'r1', hostname: 'instance-1', issued: Date.now() }))['rc']).to.equal('SUCCESS');
      expect((await resync.request({ type: 'RESYNCSTATE', resync_id: 'r2', hostname: 'nowhere', issued: Date.now() }))['rc']).to.equal('FAILURE');
      expect((await resync.raw('not json'))['rc']).to.equal('INVALID');
      for (let i = 0; i < 3; i++) await felix.inbox.take((m) => m['type'] === 'ENDPOINTCREATED', 'a create');

      const m = (await waitFor(
        'the three replies from Felix counted',
        async () => {
          const r = await get(metricsPort, '/metrics');
          return r.body.includes('connection="felix instance-1",api="endpoint",type="ENDPOINTCREATED",rc="SUCCESS"} 3') ? r : null;
        },
        5000,
      ))!;
      expect(m.type).to.match(/^text\/plain; version=0\.0\.4/);
      const text = m.body;
      expect(sample(text, 'calico_messages_received_total{connection="felix-resyncs",api="endpoint",type="RESYNCSTATE",rc="SUCCESS"}')).to.equal(1);
      expect(sample(text, 'calico_messages_received_total{connection="felix-resyncs",api="endpoint",type="RESYNCSTATE",rc="FAILURE"}')).to.equal(1);
      expect(sample(text, 'calico_messages_received_total{connection="felix-resyncs",api="endpoint",type="ERROR",rc="INVALID"}')).to.equal(1);
      expect(sample(text, 'calico_connection_resets_total{connection="felix instance-1",api="endpoint"}')).to.equal(0);
      expect(sample(text, 'calico_plugin_endpoints')).to.equal(3);
      expect(sample(text, 'calico_plugin_groups')).to.equal(2);
      expect(sample(text, 'calico_plugin_felixes')).to.equal(1);
      expect(sample(text, 'calico_ready')).to.equal(1);
      const lastMessage = sample(text, 'calico_connection_last_message_timestamp_seconds{connection="felix-resyncs",api="endpoint"}')!;
      expect(Math.abs(lastMessage - Date.now() / 1000)).to.be.below(60);
      expect(sample(text, 'process_resident_memory_bytes')).to.be.greaterThan(0);

      const status = JSON.parse((await get(metricsPort, '/status')).body) as Json;
      expect(status).to.include({ component: 'plugin-ep', ready: true, version: '0.1.0' });
      expect(status['uptimeSeconds']).to.be.a('number').and.at.least(0);
      expect(status['facts']).to.deep.equal({ felixes: 1, endpoints: 3, groups: 2 });
      const conns = status['connections'] as Json[];
      expect(conns.map((c) => [c['name'], c['kind'], c['address'], c['received'], c['resets']])).to.deep.equal([
        ['felix-resyncs', 'rep', `tcp://127.0.0.1:${epPort}`, 3, 0],
        ['felix instance-1', 'req', `tcp://127.0.0.1:${felixPort}`, 3, 0],
      ]);
      expect(conns[0]!['lastMessageAgeSeconds']).to.be.a('number');
    });

    it('calico-status prints it and exits 0; an unreachable daemon makes it exit 1', async () => {
      const ok = await runCommand(STATUS, ['--url', `http://127.0.0.1:${metricsPort}`]);
      expect(ok.code, ok.output).to.equal(0);
      expect(ok.output).to.match(new RegExp(`^plugin-ep  http://127\\.0\\.0\\.1:${metricsPort}/status  ready  version 0\\.1\\.0`, 'm'));
      expect(ok.output).to.match(/^ {2}felix instance-1\s+endpoint\s+req\s+tcp:\/\/127\.0\.0\.1:\d+\s+\d+\s+/m);
      expect(ok.output).to.include('felixes 1  endpoints 3  groups 2');

      const [closed] = await freePorts(1);
      const bad = await runCommand(STATUS, ['--url', `http://127.0.0.1:${metricsPort}`, '--url', `http://127.0.0.1:${closed}`, '--json']);
      expect(bad.code).to.equal(1);
      const results = JSON.parse(bad.output) as Json[];
      expect(results.map((r) => [r['url'], r['error'] ?? null, (r['status'] as Json | undefined)?.['component'] ?? null])).to.deep.equal([
        [`http://127.0.0.1:${metricsPort}/status`, null, 'plugin-ep'],
        [`http://127.0.0.1:${closed}/status`, 'ECONNREFUSED', null],
      ]);
    });
  });

  it('plugin: refuses a bad --metrics-port or --metrics-address with one line', async () => {
    for (const [args, reason] of [
      [['--metrics-port', '70000'], /--metrics-port: bad value "70000": expected a number from 0 to 65535/],
      [['--metrics-address', 'ipc:///x'], /--metrics-address: bad value "ipc:\/\/\/x": expected an IP address/],
    ] as const) {
      const r = await runCommand(PLUGIN, ['ep', '--data', path.join(ws.dir, 'none.txt'), '--log-dir', 'none', ...args]);
      expect(r.code).to.equal(2);
      expect(r.output.trim().split('\n')).to.have.length(1);
      expect(r.output).to.match(reason);
    }
  });

  it('calico-status: refuses bad arguments with one line and exit 2', async () => {
    const rows: Array<[string[], RegExp]> = [
      [[], /give --url \(one or more\) or --lab-dir/],
      [['--url', 'http://127.0.0.1:1', '--lab-dir', ws.dir], /not both/],
      [['--url', 'nonsense'], /bad URL 'nonsense'/],
      [['--url', 'https://127.0.0.1:1'], /only http:\/\/ is served/],
      [['--url', 'http://127.0.0.1:1', '--timeout-ms', '0'], /--timeout-ms must be positive/],
      [['explain', '192.168.1.1'], /Not enough non-option arguments/],
      [['explain', '192.168.1.1', '192.168.1.2'], /give --url \(one or more\) or --lab-dir/],
      [['explain', '192.168.1.1', '192.168.1.2', '--url', 'http://127.0.0.1:1', '--port', '70000'], /--port must be 0\.\.65535/],
      [['explain', '192.168.1.1', '192.168.1.2', '--url', 'http://127.0.0.1:1', '--family', '5'], /--family must be 4 or 6/],
    ];
    for (const [args, reason] of rows) {
      const r = await runCommand(STATUS, args);
      expect(r.code, args.join(' ')).to.equal(2);
      expect(r.output.trim().split('\n'), args.join(' ')).to.have.length(1);
      expect(r.output)
        .to.match(/^calico-status: /)
        .and.to.match(reason);
    }
    const noLab = await runCommand(STATUS, ['--lab-dir', path.join(ws.dir, 'no-lab')]);
    expect(noLab.code).to.equal(1);
    expect(noLab.output.trim()).to.match(/^calico-status: .*no-lab\/lab\.json/);
  });

  it('plugin network counts GETGROUPS and the GROUPUPDATEs it published', async () => {
    const [groupsPort, pubPort, metricsPort] = await freePorts(3);
    const data = path.join(ws.dir, 'data.txt');
    fs.writeFileSync(data, '[endpoint e1]\nid=ep1\nip=192.168.1.1\nmac=ee:ee:ee:ee:ee:01\nhost=h\ngroup=g1\n');
    const plugin = startCommand(PLUGIN, [
      'network',
      '--data',
      data,
      '--log-dir',
      'none',
      '--log-severity-screen',
      'INFO',
      '--bind',
      '127.0.0.1',
      '--groups-port',
      String(groupsPort),
      '--publish-port',
      String(pubPort),
      '--metrics-port',
      String(metricsPort),
    ]);
    await waitFor('plugin ready', () => plugin.output().includes('"ready"'), 10000);
    const req = ws.track(new RequestPeer(`tcp://127.0.0.1:${groupsPort}`));
    await req.request({ type: 'GETGROUPS', issued: Date.now() });
    await req.request({ type: 'HEARTBEAT' });
    const text = (await waitFor(
      'the republication counted',
      async () => {
        const body = (await get(metricsPort, '/metrics')).body;
        return sample(body, 'calico_plugin_group_updates_published_total') === 1 ? body : null;
      },
      5000,
    ))!;
    expect(sample(text, 'calico_messages_received_total{connection="aclmgr-requests",api="network",type="GETGROUPS",rc="SUCCESS"}')).to.equal(1);
    expect(sample(text, 'calico_messages_received_total{connection="aclmgr-requests",api="network",type="HEARTBEAT",rc="SUCCESS"}')).to.equal(1);
  });

  describe('calico-acl-manager', () => {
    let ports: number[];
    let cfg: string;

    beforeEach(async () => {
      ports = await freePorts(5);
      cfg = path.join(ws.dir, 'acl_manager.cfg');
      const [groups, pub, aclReq, aclPub, metrics] = ports;
      fs.writeFileSync(
        cfg,
        `[global]\nPluginAddress = 127.0.0.1\nLocalAddress = 127.0.0.1\nPluginGroupsPort = ${groups}\nPluginPublishPort = ${pub}\nAclRequestPort = ${aclReq}\nAclPublishPort = ${aclPub}\n` +
          `[log]\nLogFilePath = None\nLogSeverityScreen = INFO\n[connection]\nResyncSettleMillis = 100\n[metrics]\nMetricsPort = ${metrics}\nMetricsAddress = 127.0.0.1\n`,
      );
    });

    it('is not ready until the first group sync, then counts groups, endpoints and ACL publications', async () => {
      const [groups, pub, aclReq, , metrics] = ports as [number, number, number, number, number];
      const manager = startCommand(ACLMGR, ['--config-file', cfg]);
      await waitFor('manager listening', () => manager.output().includes('"ready"'), 10000);
      const notReady = await get(metrics, '/readyz');
      expect(notReady).to.include({ code: 503, body: 'not ready: waiting for first group sync with the plugin\n' });
      expect((await get(metrics, '/livez')).code).to.equal(200);
      const st = await runCommand(STATUS, ['--url', `http://127.0.0.1:${metrics}/status`]);
      expect(st.code).to.equal(1);
      expect(st.output).to.include('NOT READY (waiting for first group sync with the plugin)');

      const plugin = ws.track(await new PluginNetworkPeer(`tcp://127.0.0.1:${groups}`, `tcp://127.0.0.1:${pub}`).start());
      plugin.setGroupQuietly('g1', { ep1: ['192.168.1.1'], ep2: ['192.168.1.2'] });
      await waitFor('ready after the first sync', async () => (await get(metrics, '/readyz')).code === 200, 15000);
      const felix = ws.track(new RequestPeer(`tcp://127.0.0.1:${aclReq}`));
      expect((await felix.request({ type: 'GETACLSTATE', endpoint_id: 'ep1', issued: Date.now() }))['rc']).to.equal('SUCCESS');
      const text = (await waitFor(
        'the GETACLSTATE publication counted',
        async () => {
          const body = (await get(metrics, '/metrics')).body;
          return sample(body, 'calico_aclmgr_acl_updates_published_total') === 3 ? body : null;
        },
        5000,
      ))!;
      expect(sample(text, 'calico_aclmgr_groups')).to.equal(1);
      expect(sample(text, 'calico_aclmgr_endpoints')).to.equal(2);
      expect(sample(text, 'calico_aclmgr_resyncs_completed_total')).to.equal(1);
      expect(sample(text, 'calico_aclmgr_resyncs_started_total')).to.equal(1);
      expect(sample(text, 'calico_messages_received_total{connection="felix-requests",api="acl",type="GETACLSTATE",rc="SUCCESS"}')).to.equal(1);
      expect(sample(text, 'calico_messages_received_total{connection="plugin",api="network",type="GETGROUPS",rc="SUCCESS"}')).to.equal(1);
      expect(sample(text, 'calico_messages_received_total{connection="plugin-groups",api="network",type="GROUPUPDATE",rc=""}')).to.equal(1);
      expect(sample(text, 'calico_ready')).to.equal(1);
      // Nobody subscribed to an endpoint topic here: none published on a subscription.
      expect(sample(text, 'calico_aclmgr_acl_updates_on_subscription_total')).to.equal(0);
      const status = await runCommand(STATUS, ['--url', `http://127.0.0.1:${metrics}`]);
      expect(status.code, status.output).to.equal(0);
      expect(status.output).to.match(/^calico-acl-manager  \S+  ready/m);
      expect(status.output).to.include('groups 1  endpoints 2  aclUpdatesPublished 3  resyncsStarted 1  resyncsCompleted 1');

      // A poller of one fact asks for it alone.
      const one = (await get(metrics, '/metrics?name=calico_aclmgr_groups&name=calico_ready&name=no_such_metric')).body;
      expect(one.split('\n').filter((l) => l !== '' && !l.startsWith('#'))).to.deep.equal(['calico_aclmgr_groups 1', 'calico_ready 1']);

      // What explain reads (issue #16): the endpoint's groups, its ACLs, and the group rule behind each rule.
      const view = await get(metrics, '/status/endpoint?id=ep1');
      expect(view.code).to.equal(200);
      const doc = JSON.parse(view.body) as AclEndpointView;
      expect(doc.groups.map((g) => g.group)).to.deep.equal(['g1']);
      expect(doc.addrs).to.deep.equal(['192.168.1.1']);
      expect(doc.acls.v4.inbound.map((r) => r.cidr)).to.deep.equal(['192.168.1.1/32', '192.168.1.2/32']);
      expect(doc.sources.v4.inbound.map((s) => s.map((x) => `${x.group} ${x.direction}[${x.index}] via ${x.via}`))).to.deep.equal([
        ['g1 inbound[0] via g1'],
        ['g1 inbound[0] via g1'],
      ]);
      expect(await get(metrics, '/status/endpoint?id=nobody')).to.include({ code: 404, body: 'endpoint nobody is in no group the ACL manager knows\n' });
      expect(await get(metrics, '/status/endpoint')).to.include({ code: 400, body: 'missing query parameter id\n' });
      expect((await get(metrics, '/status/constructor')).code).to.equal(404);
    });

    it('stops with one line naming file, section and key on a bad [metrics] value', async () => {
      fs.writeFileSync(cfg, fs.readFileSync(cfg, 'utf8').replace('MetricsAddress = 127.0.0.1', 'MetricsAddress = *'));
      const r = await runCommand(ACLMGR, ['--config-file', cfg]);
      expect(r.code).to.equal(1);
      expect(r.output.trim()).to.equal(`calico-acl-manager: ${cfg}:15: [metrics] MetricsAddress: bad value "*": expected an IP address (or localhost)`);
    });
  });
});
