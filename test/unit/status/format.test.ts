/** calico-status output (pure): ages, tables, one block per daemon, readiness. */
import { expect } from 'chai';
import type { DaemonStatus, EndpointStatus } from '../../../src/common/metrics.js';
import { QueryResult, allReady, formatAge, formatReport, formatResult, statusUrl, table } from '../../../src/status/format.js';

function daemon(over: Partial<DaemonStatus> = {}): DaemonStatus {
  return {
    component: 'plugin-ep',
    version: '0.1.0',
    pid: 42,
    uptimeSeconds: 65,
    ready: true,
    waitingFor: [],
    connections: [{ name: 'felix-resyncs', api: 'endpoint', kind: 'rep', address: 'tcp://*:9901', received: 3, lastMessageAgeSeconds: 0.42, resets: 0 }],
    facts: { felixes: 2, endpoints: 3 },
    ...over,
  };
}

function endpoint(over: Partial<EndpointStatus> = {}): EndpointStatus {
  return {
    id: 'aaaaaaaaaaaa',
    ifname: 'tapaaaaaaaaaaa',
    addrs: ['192.168.1.1'],
    mac: 'ee:ee:ee:ee:ee:01',
    enabled: true,
    interfaceUp: true,
    routesProgrammed: true,
    chainsProgrammed: true,
    programmed: true,
    error: null,
    aclAgeSeconds: 12.5,
    deniedPackets: { inbound: 3, outbound: 0 },
    ...over,
  };
}

describe('calico-status formatting', () => {
  const ages: Array<[number | null, string]> = [
    [null, 'never'],
    [0, '0.0s'],
    [0.42, '0.4s'],
    [9.96, '10.0s'],
    [12.5, '12s'],
    [59.9, '59s'],
    [60, '1m00s'],
    [303, '5m03s'],
    [3600, '1h00m'],
    [7500, '2h05m'],
    [86400, '1d00h'],
    [273600, '3d04h'],
  ];
  for (const [seconds, text] of ages) it(`formats an age of ${seconds} s as ${text}`, () => expect(formatAge(seconds)).to.equal(text));

  const urls: Array<[string, string]> = [
    ['http://127.0.0.1:9091', 'http://127.0.0.1:9091/status'],
    ['http://127.0.0.1:9091/', 'http://127.0.0.1:9091/status'],
    ['http://127.0.0.1:9091/status', 'http://127.0.0.1:9091/status'],
    ['http://[::1]:9091/other', 'http://[::1]:9091/other'],
  ];
  for (const [given, used] of urls) it(`asks ${used} when given ${given}`, () => expect(statusUrl(given)).to.equal(used));

  it('pads columns to the widest cell, without trailing blanks', () => {
    expect(
      table([
        ['a', 'bb', 'c'],
        ['ddd', 'e', ''],
      ]),
    ).to.deep.equal(['a    bb  c', 'ddd  e']);
  });

  it('shows a daemon: heading, connections, facts', () => {
    expect(formatResult({ url: 'http://127.0.0.1:9093/status', status: daemon() })).to.deep.equal([
      'plugin-ep  http://127.0.0.1:9093/status  ready  version 0.1.0  pid 42  up 1m05s',
      '  connection     api       socket  address       received  last message  resets',
      '  felix-resyncs  endpoint  rep     tcp://*:9901  3         0.4s ago      0',
      '  felixes 2  endpoints 3',
    ]);
  });

  it('says what a daemon that is not ready waits for, and a connection that never heard anything', () => {
    const lines = formatResult({
      url: 'u',
      status: daemon({
        ready: false,
        waitingFor: ['first resync with the plugin'],
        connections: [{ ...daemon().connections[0]!, received: 0, lastMessageAgeSeconds: null, resets: 2 }],
        facts: {},
      }),
    });
    expect(lines[0]).to.include('NOT READY (waiting for first resync with the plugin)');
    expect(lines[2]).to.match(/0\s+never\s+2$/);
    expect(lines).to.have.length(3);
  });

  it('shows an unreachable daemon in one line', () => {
    expect(formatResult({ url: 'http://127.0.0.1:9/status', error: 'ECONNREFUSED' })).to.deep.equal(['http://127.0.0.1:9/status  UNREACHABLE: ECONNREFUSED']);
  });

  const states: Array<[string, Partial<EndpointStatus>, RegExp]> = [
    ['programmed', {}, /yes\s+yes\s+yes\s+yes\s+12s ago\s+3\/0\s+programmed$/],
    ['programmed but no ACLs yet (denied)', { aclAgeSeconds: null }, /none\s+3\/0\s+programmed \(denied: no ACLs yet\)$/],
    [
      'waiting for its interface',
      { interfaceUp: false, routesProgrammed: false, programmed: false },
      /yes\s+no\s+no\s+yes\s+12s ago\s+3\/0\s+waiting for interface$/,
    ],
    ['disabled, routes pending', { enabled: false, routesProgrammed: false, programmed: false }, /no\s+yes\s+no\s+yes\s+12s ago\s+3\/0\s+pending$/],
    ['denying in both directions', { deniedPackets: { inbound: 1204, outbound: 17 } }, /12s ago\s+1204\/17\s+programmed$/],
    ['without denied counts (not readable, or an older Felix)', { deniedPackets: null }, /12s ago\s+-\s+programmed$/],
    [
      'failed',
      { programmed: false, chainsProgrammed: false, error: 'programming chains and sets failed: boom' },
      /FAILED: programming chains and sets failed: boom$/,
    ],
    ['without addresses', { addrs: [] }, /tapaaaaaaaaaaa\s+-\s+yes/],
  ];
  for (const [name, over, row] of states)
    it(`shows a Felix endpoint that is ${name}`, () => {
      const lines = formatResult({ url: 'u', status: daemon({ component: 'calico-felix', endpoints: [endpoint(over)] }) });
      expect(lines.at(-2)).to.match(/^  endpoint\s+interface\s+addresses\s+enabled\s+iface up\s+routes\s+chains\s+ACLs\s+denied in\/out\s+state$/);
      expect(lines.at(-1)).to.match(/^  aaaaaaaaaaaa\s+tapaaaaaaaaaaa\s+/);
      expect(lines.at(-1)).to.match(row);
    });

  it('says so when Felix has no endpoints', () => {
    expect(formatResult({ url: 'u', status: daemon({ component: 'calico-felix', endpoints: [] }) }).at(-1)).to.equal('  no endpoints');
  });

  it('shows Felix’s kernel tables after its facts, a row each, then any warnings', () => {
    const lines = formatResult({
      url: 'u',
      status: daemon({
        component: 'calico-felix',
        facts: { endpoints: 1 },
        kernelTables: [
          { table: 'ipv4-neighbours', entries: 850, limit: 1024, scope: 'kernel', sysctl: 'net.ipv4.neigh.default.gc_thresh3' },
          { table: 'ipv6-neighbours', entries: 2, limit: null, scope: 'namespace', sysctl: 'net.ipv6.neigh.default.gc_thresh3' },
          { table: 'conntrack', entries: 7, limit: 0, scope: 'namespace', sysctl: 'net.netfilter.nf_conntrack_max' },
        ],
        warnings: ['IPv4 neighbour table (ARP) holds 850 of 1024 entries (83%) in the whole kernel: raise net.ipv4.neigh.default.gc_thresh3'],
        endpoints: [],
      }),
    });
    expect(lines.slice(3)).to.deep.equal([
      '  endpoints 1',
      '  kernel table     entries  limit                                       counted in',
      '  ipv4-neighbours  850      1024 (83%)                                  all namespaces',
      '  ipv6-neighbours  2        limit not visible from a network namespace  this namespace',
      '  conntrack        7        none (0)                                    this namespace',
      '  WARNING: IPv4 neighbour table (ARP) holds 850 of 1024 entries (83%) in the whole kernel: raise net.ipv4.neigh.default.gc_thresh3',
      '  no endpoints',
    ]);
  });

  it('separates daemons by a blank line', () => {
    const report = formatReport([
      { url: 'a', error: 'x' },
      { url: 'b', error: 'y' },
    ]);
    expect(report).to.equal('a  UNREACHABLE: x\n\nb  UNREACHABLE: y');
  });

  const readiness: Array<[string, QueryResult[], boolean]> = [
    [
      'all ready',
      [
        { url: 'a', status: daemon() },
        { url: 'b', status: daemon() },
      ],
      true,
    ],
    [
      'one not ready',
      [
        { url: 'a', status: daemon() },
        { url: 'b', status: daemon({ ready: false, waitingFor: ['x'] }) },
      ],
      false,
    ],
    [
      'one unreachable',
      [
        { url: 'a', status: daemon() },
        { url: 'b', error: 'ECONNREFUSED' },
      ],
      false,
    ],
    ['nothing asked', [], false],
  ];
  for (const [name, results, ok] of readiness) it(`exits ${ok ? 0 : 1} when ${name}`, () => expect(allReady(results)).to.equal(ok));
});
