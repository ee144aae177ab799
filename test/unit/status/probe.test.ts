/** What daemons put in /status and /metrics, from their state: socket counts, Felix's endpoint rows, the registry. */
import { expect } from 'chai';
import { defaultInterfaceName } from '../../../src/common/endpoint-names.js';
import { Observability } from '../../../src/common/metrics.js';
import { SocketStats, replyKind } from '../../../src/common/zmq/stats.js';
import { endpointStatuses, felixProbe } from '../../../src/felix/probe.js';
import type { TableUsage } from '../../../src/felix/kernel-tables.js';
import type { FelixEndpoint } from '../../../src/felix/endpoints.js';
import type { DeniedCount, EndpointStatus as DataplaneStatus } from '../../../src/felix/dataplane/index.js';
import type { FelixAgent } from '../../../src/felix/agent.js';

const noRoute = { lookup: () => Promise.resolve({ dev: null, gateway: null, protocol: null, error: 'no route' }) };

describe('status and metrics from daemon state', () => {
  const kinds: Array<[string, Buffer | object, { type: string; rc: string }]> = [
    ['a reply object', { type: 'ENDPOINTCREATED', rc: 'SUCCESS', message: '' }, { type: 'ENDPOINTCREATED', rc: 'SUCCESS' }],
    ['a heartbeat (no rc)', { type: 'HEARTBEAT' }, { type: 'HEARTBEAT', rc: '' }],
    ['a JSON body', Buffer.from('{"type":"RESYNCSTATE","rc":"FAILURE"}'), { type: 'RESYNCSTATE', rc: 'FAILURE' }],
    ['a body that is not JSON', Buffer.from('nope'), { type: 'ERROR', rc: 'INVALID' }],
    ['a JSON array', Buffer.from('[1]'), { type: 'ERROR', rc: 'INVALID' }],
    ['an object without type', { rc: 'SUCCESS' }, { type: 'ERROR', rc: 'SUCCESS' }],
  ];
  for (const [name, body, kind] of kinds) it(`classifies ${name}`, () => expect(replyKind(body)).to.deep.equal(kind));

  it('counts messages by type and rc, and keeps a peer from growing the label set', () => {
    const s = new SocketStats();
    s.record('GETACLSTATE', 'SUCCESS');
    s.record('GETACLSTATE', 'SUCCESS');
    s.record('HEARTBEAT');
    s.record('lower-case', 'SUCCESS');
    s.record('ENDPOINTCREATED', 'not an rc');
    for (let i = 0; i < 200; i++) s.record(`TYPE${String.fromCharCode(65 + (i % 26))}${String.fromCharCode(65 + Math.floor(i / 26))}`, 'SUCCESS');
    expect(s.received.get('GETACLSTATE\nSUCCESS')!.count).to.equal(2);
    expect(s.received.get('HEARTBEAT\n')!.count).to.equal(1);
    expect(s.received.get('ENDPOINTCREATED\nOTHER')!.count).to.equal(1);
    expect(s.received.size).to.be.at.most(65);
    expect(s.received.get('OTHER\nSUCCESS')!.count).to.be.greaterThan(1);
    expect(s.total).to.equal(205);
    expect(s.lastReceivedAt).to.be.a('number');
  });

  const ep = (id: string, over: Partial<FelixEndpoint> = {}): FelixEndpoint => ({
    id,
    ifname: defaultInterfaceName('tap', id),
    mac: 'ee:ee:ee:ee:ee:01',
    addrs: ['192.168.1.1'],
    enabled: true,
    acls: null,
    aclsAt: null,
    ...over,
  });
  const dp = (over: Partial<DataplaneStatus> = {}): DataplaneStatus => ({
    programmed: true,
    routesProgrammed: true,
    filterProgrammed: true,
    interfaceUp: true,
    ...over,
  });

  it('joins Felix’s endpoints with the dataplane’s status, sorted by id, with ACL ages', () => {
    const statuses = new Map<string, DataplaneStatus>([
      ['bbbbbbbbbbbb', dp()],
      ['aaaaaaaaaaaa', dp({ programmed: false, filterProgrammed: false, error: 'programming chains and sets failed: x' })],
    ]);
    const rows = endpointStatuses(
      [ep('bbbbbbbbbbbb', { aclsAt: 10_000 }), ep('aaaaaaaaaaaa'), ep('cccccccccccc', { enabled: false })],
      (id) => statuses.get(id),
      12_500,
    );
    expect(rows.map((r) => [r.id, r.programmed, r.routesProgrammed, r.chainsProgrammed, r.error, r.aclAgeSeconds])).to.deep.equal([
      ['aaaaaaaaaaaa', false, true, false, 'programming chains and sets failed: x', null],
      ['bbbbbbbbbbbb', true, true, true, null, 2.5],
      // Not known to the dataplane: shown as nothing programmed.
      ['cccccccccccc', false, false, false, null, null],
    ]);
    expect(rows[2]!.enabled).to.equal(false);
  });

  it('Felix: denied packets per endpoint on /status (both families summed) and as calico_felix_denied_packets_total, read at scrape time', async () => {
    const counts: DeniedCount[] = [
      { endpoint: '', direction: 'inbound', family: 4, packets: 2 },
      { endpoint: '', direction: 'outbound', family: 4, packets: 0 },
      { endpoint: 'aaaaaaaaaaaa', direction: 'inbound', family: 4, packets: 5 },
      { endpoint: 'aaaaaaaaaaaa', direction: 'inbound', family: 6, packets: 7 },
      { endpoint: 'aaaaaaaaaaaa', direction: 'outbound', family: 4, packets: 1 },
    ];
    let reads = 0;
    let fail = false;
    const dataplane = {
      status: () => dp(),
      inForce: () => undefined,
      deniedPackets: () => {
        reads++;
        if (fail) return Promise.reject(new Error('iptables-save failed'));
        return Promise.resolve(counts);
      },
    };
    const endpoints = new Map([
      ['aaaaaaaaaaaa', ep('aaaaaaaaaaaa')],
      ['bbbbbbbbbbbb', ep('bbbbbbbbbbbb')],
    ]);
    const agent = {
      manager: { endpoints, acls: new Map(), resyncsCompleted: 1 },
      connections: () => [],
      waitingFor: () => [],
      resyncsStarted: 1,
      aclUpdatesSuperseded: 0,
    } as unknown as FelixAgent;
    const obs = new Observability(felixProbe(() => ({ agent, dataplane }), 'host-1', noRoute));
    expect(reads).to.equal(0, 'nothing is read before a scrape');
    const status = await obs.status();
    expect(status.endpoints!.map((e) => [e.id, e.deniedPackets])).to.deep.equal([
      ['aaaaaaaaaaaa', { inbound: 12, outbound: 1 }],
      // No chains counted yet: 0, not unknown.
      ['bbbbbbbbbbbb', { inbound: 0, outbound: 0 }],
    ]);
    const text = await obs.registry.metrics();
    expect(text.split('\n').filter((l) => l.startsWith('calico_felix_denied_packets_total'))).to.deep.equal([
      'calico_felix_denied_packets_total{endpoint="",direction="inbound",family="ipv4"} 2',
      'calico_felix_denied_packets_total{endpoint="",direction="outbound",family="ipv4"} 0',
      'calico_felix_denied_packets_total{endpoint="aaaaaaaaaaaa",direction="inbound",family="ipv4"} 5',
      'calico_felix_denied_packets_total{endpoint="aaaaaaaaaaaa",direction="inbound",family="ipv6"} 7',
      'calico_felix_denied_packets_total{endpoint="aaaaaaaaaaaa",direction="outbound",family="ipv4"} 1',
    ]);
    expect(text).to.include('# TYPE calico_felix_denied_packets_total counter');
    // /readyz's status reads no counters.
    reads = 0;
    expect(await obs.status({ endpoints: false }))
      .to.include({ ready: true })
      .and.not.have.property('endpoints');
    expect(reads).to.equal(0);
    // A failed read: the rows say unknown, the scrape goes on without the metric.
    fail = true;
    expect((await obs.status()).endpoints!.map((e) => e.deniedPackets)).to.deep.equal([null, null]);
    const without = await obs.registry.metrics();
    expect(without).not.to.match(/^calico_felix_denied_packets_total\{/m);
    expect(without).to.include('calico_felix_endpoints 2');
  });

  it('derives metrics and /status from the probe at read time', async () => {
    const stats = new SocketStats();
    let known = 1;
    let waiting = ['first resync with the plugin'];
    const obs = new Observability({
      component: 'calico-felix',
      connections: () => [{ name: 'plugin', api: 'endpoint', kind: 'req', address: 'tcp://10.0.0.1:9901', stats }],
      waitingFor: () => waiting,
      facts: [
        { name: 'endpoints', metric: 'calico_test_endpoints', help: 'h', kind: 'gauge', value: () => known },
        { name: 'resyncs', metric: 'calico_test_resyncs_total', help: 'h', kind: 'counter', value: () => known * 2 },
      ],
    });
    stats.record('RESYNCSTATE', 'SUCCESS');
    stats.resets = 3;
    let text = await obs.registry.metrics();
    expect(text).to.include('calico_messages_received_total{connection="plugin",api="endpoint",type="RESYNCSTATE",rc="SUCCESS"} 1');
    expect(text).to.include('calico_connection_resets_total{connection="plugin",api="endpoint"} 3');
    expect(text).to.include('calico_ready 0');
    expect(text).to.include('calico_test_endpoints 1');
    expect(text).to.include('calico_test_resyncs_total 2');
    expect(text).to.include('calico_build_info{component="calico-felix",version="0.1.0"} 1');
    expect(text).to.match(/^nodejs_heap_size_used_bytes \d+/m);
    known = 4;
    waiting = [];
    stats.record('RESYNCSTATE', 'SUCCESS');
    text = await obs.registry.metrics();
    expect(text).to.include('type="RESYNCSTATE",rc="SUCCESS"} 2');
    expect(text).to.include('calico_test_resyncs_total 8');
    expect(text).to.include('calico_ready 1');
    const status = await obs.status();
    expect(status).to.include({ component: 'calico-felix', version: '0.1.0', ready: true });
    expect(status.facts).to.deep.equal({ endpoints: 4, resyncs: 8 });
    expect(status.connections).to.have.length(1);
    expect(status.connections[0]).to.include({ name: 'plugin', received: 2, resets: 3 });
    expect(status.connections[0]!.lastMessageAgeSeconds).to.be.a('number').and.at.least(0);
  });

  it('Felix: kernel tables as gauges (no limit sample where the limit is not visible) and on /status with the warnings', async () => {
    let usages: TableUsage[] = [];
    let warnings: string[] = [];
    const tables = {
      get usages() {
        return usages;
      },
      get warnings() {
        return warnings;
      },
    };
    const obs = new Observability(felixProbe(() => ({ dataplane: { status: () => undefined, inForce: () => undefined }, tables }), 'host-1', noRoute));
    let text = await obs.registry.metrics();
    expect(text).not.to.match(/^calico_felix_kernel_table_(entries|limit)\{/m);
    expect(await obs.status()).to.include({ ready: false });
    expect((await obs.status()).kernelTables).to.deep.equal([]);
    usages = [
      { table: 'ipv4-neighbours', entries: 8, limit: null, scope: 'namespace', sysctl: 'net.ipv4.neigh.default.gc_thresh3' },
      { table: 'conntrack', entries: 240000, limit: 262144, scope: 'namespace', sysctl: 'net.netfilter.nf_conntrack_max' },
    ];
    warnings = ['conntrack table holds 240000 of 262144 entries (91%) in this namespace: raise net.netfilter.nf_conntrack_max'];
    text = await obs.registry.metrics();
    expect(text.split('\n').filter((l) => l.startsWith('calico_felix_kernel_table_'))).to.deep.equal([
      'calico_felix_kernel_table_entries{table="ipv4-neighbours",scope="namespace"} 8',
      'calico_felix_kernel_table_entries{table="conntrack",scope="namespace"} 240000',
      'calico_felix_kernel_table_limit{table="conntrack"} 262144',
    ]);
    const status = await obs.status();
    expect(status.kernelTables).to.deep.equal(usages);
    expect(status.warnings).to.deep.equal(warnings);
    // Gone from the reading, gone from the scrape.
    usages = usages.slice(1);
    text = await obs.registry.metrics();
    expect(text).not.to.include('table="ipv4-neighbours"');
  });
});
