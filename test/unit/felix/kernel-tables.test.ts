/**
 * Kernel tables (issue #15): the pure calculation (usages, warnings, the
 * limits wanted for N addresses) table-driven, then the monitor against the
 * fake kernel in a root and a child namespace, on a fake clock.
 */
import { expect } from 'chai';
import { pino } from 'pino';
import {
  KernelTableFacts,
  KernelTableReader,
  NeighbourThresholds,
  ProcKernelTables,
  parseNeighbourStat,
} from '../../../src/felix/dataplane/drivers/kernel-tables.js';
import {
  KernelTableMonitor,
  TableUsage,
  countAddresses,
  limitRaises,
  tableUsages,
  tableWarning,
  wantedConntrackMax,
  wantedNeighbourThresholds,
} from '../../../src/felix/kernel-tables.js';
import { FakeClock } from '../../support/fake-clock.js';
import { FakeKernel, FakeKernelOptions } from '../../support/fake-kernel.js';

/** /proc/net/stat/arp_cache as Linux 6.18 printed it (two CPUs, no entries), and ndisc_cache with 25. */
const ARP_CACHE = `entries  allocs   destroys hash_grows lookups  hits     res_failed rcv_probes_mcast rcv_probes_ucast periodic_gc_runs forced_gc_runs unresolved_discards table_fulls
00000000 00016577 0001b7e1 00000004   000192f7 0000229d 00000006   00000000         00000000         000005cb         00000000       00000000            00000000
00000000 0001a918 000156ae 00000007   0001d6b4 00002370 00000008   00000000         00000000         00000000         00000000       00000000            00000000
`;
const NDISC_CACHE = `entries  allocs   destroys hash_grows lookups  hits     res_failed rcv_probes_mcast rcv_probes_ucast periodic_gc_runs forced_gc_runs unresolved_discards table_fulls
00000019 001a8102 001aab42 00000007   0000032a 000001b3 00000028   00000037         00000002         00000000         00000d38       00000000            00000000
`;

const DEFAULTS: NeighbourThresholds = { thresh1: 128, thresh2: 512, thresh3: 1024 };

function facts(
  over: { root?: boolean; v4?: number; v6?: number; thresholds?: NeighbourThresholds | null; conntrack?: KernelTableFacts['conntrack'] } = {},
): KernelTableFacts {
  const root = over.root ?? true;
  const thresholds = over.thresholds === undefined ? (root ? DEFAULTS : null) : over.thresholds;
  return {
    root,
    neighbours: { 4: { entries: over.v4 ?? 0, kernelWide: root, thresholds }, 6: { entries: over.v6 ?? 0, kernelWide: root, thresholds } },
    conntrack: over.conntrack === undefined ? { entries: 10, max: 262144 } : over.conntrack,
  };
}

const usage = (over: Partial<TableUsage>): TableUsage => ({
  table: 'ipv4-neighbours',
  entries: 0,
  limit: 1000,
  scope: 'kernel',
  sysctl: 'net.ipv4.neigh.default.gc_thresh3',
  ...over,
});

describe('kernel tables: calculation', () => {
  it('reads the entries column of /proc/net/stat/arp_cache and ndisc_cache (hex, first CPU row)', () => {
    expect(parseNeighbourStat(ARP_CACHE)).to.equal(0);
    expect(parseNeighbourStat(NDISC_CACHE)).to.equal(25);
  });

  for (const bad of ['', 'entries\n', 'allocs entries\n0001 zz\n'])
    it(`refuses neighbour statistics it does not recognise: ${JSON.stringify(bad)}`, () =>
      expect(() => parseNeighbourStat(bad)).to.throw(/unexpected neighbour statistics/));

  it('root namespace: kernel-wide neighbour counts against gc_thresh3, conntrack against nf_conntrack_max', () => {
    expect(tableUsages(facts({ v4: 700, v6: 3 }))).to.deep.equal([
      { table: 'ipv4-neighbours', entries: 700, limit: 1024, scope: 'kernel', sysctl: 'net.ipv4.neigh.default.gc_thresh3' },
      { table: 'ipv6-neighbours', entries: 3, limit: 1024, scope: 'kernel', sysctl: 'net.ipv6.neigh.default.gc_thresh3' },
      { table: 'conntrack', entries: 10, limit: 262144, scope: 'namespace', sysctl: 'net.netfilter.nf_conntrack_max' },
    ]);
  });

  it('child namespace: the namespace’s own neighbour counts, limits not visible; no conntrack row without nf_conntrack', () => {
    expect(tableUsages(facts({ root: false, v4: 5, conntrack: null }))).to.deep.equal([
      { table: 'ipv4-neighbours', entries: 5, limit: null, scope: 'namespace', sysctl: 'net.ipv4.neigh.default.gc_thresh3' },
      { table: 'ipv6-neighbours', entries: 0, limit: null, scope: 'namespace', sysctl: 'net.ipv6.neigh.default.gc_thresh3' },
    ]);
  });

  const warnings: Array<[string, TableUsage, string | null]> = [
    ['below 80%', usage({ entries: 799 }), null],
    [
      'at 80%',
      usage({ entries: 800 }),
      'IPv4 neighbour table (ARP) holds 800 of 1000 entries (80%) in the whole kernel: raise net.ipv4.neigh.default.gc_thresh3 (and gc_thresh2 to about half of it)',
    ],
    [
      'over the limit',
      usage({ table: 'ipv6-neighbours', entries: 1100, sysctl: 'net.ipv6.neigh.default.gc_thresh3' }),
      'IPv6 neighbour table (NDP) holds 1100 of 1000 entries (110%) in the whole kernel: raise net.ipv6.neigh.default.gc_thresh3 (and gc_thresh2 to about half of it)',
    ],
    [
      'conntrack at 90%, this namespace',
      usage({ table: 'conntrack', entries: 235930, limit: 262144, scope: 'namespace', sysctl: 'net.netfilter.nf_conntrack_max' }),
      'conntrack table holds 235930 of 262144 entries (90%) in this namespace: raise net.netfilter.nf_conntrack_max',
    ],
    ['a limit not visible', usage({ entries: 100000, limit: null, scope: 'namespace' }), null],
    ['conntrack without a limit (0)', usage({ table: 'conntrack', entries: 5, limit: 0 }), null],
  ];
  for (const [name, u, want] of warnings) it(`warns ${want === null ? 'not' : 'once'}: ${name}`, () => expect(tableWarning(u)).to.equal(want));

  const neighbours: Array<[string, NeighbourThresholds, number, NeighbourThresholds]> = [
    ['no addresses: the defaults already do', DEFAULTS, 0, DEFAULTS],
    ['one address: 1028 rounds up to 2048', DEFAULTS, 1, { thresh1: 128, thresh2: 1024, thresh3: 2048 }],
    ['256 addresses: exactly 2048', DEFAULTS, 256, { thresh1: 128, thresh2: 1024, thresh3: 2048 }],
    ['257 addresses: 2052 rounds up to 3072', DEFAULTS, 257, { thresh1: 128, thresh2: 1536, thresh3: 3072 }],
    ['10 000 addresses', DEFAULTS, 10000, { thresh1: 128, thresh2: 20992, thresh3: 41984 }],
    ['higher limits are never lowered', { thresh1: 4096, thresh2: 8192, thresh3: 16384 }, 1000, { thresh1: 4096, thresh2: 8192, thresh3: 16384 }],
    ['only the one that is short is raised', { thresh1: 128, thresh2: 4000, thresh3: 1024 }, 300, { thresh1: 128, thresh2: 4000, thresh3: 4000 }],
    [
      'an operator’s higher value is kept as it is, not rounded',
      { thresh1: 128, thresh2: 512, thresh3: 5000 },
      500,
      { thresh1: 128, thresh2: 1536, thresh3: 5000 },
    ],
    [
      'an operator’s lower value is raised to a multiple of 1024',
      { thresh1: 128, thresh2: 512, thresh3: 5000 },
      900,
      { thresh1: 128, thresh2: 2560, thresh3: 5120 },
    ],
  ];
  for (const [name, now, addrs, want] of neighbours)
    it(`neighbour thresholds: ${name}`, () => {
      const got = wantedNeighbourThresholds(now, addrs);
      expect(got).to.deep.equal(want);
      expect(got.thresh3).to.be.at.least(now.thresh3);
      expect(got.thresh2).to.be.at.least(now.thresh2).and.at.most(got.thresh3);
    });

  const conntrack: Array<[number, number, number]> = [
    [65536, 2, 131072],
    [65536, 8, 262144],
    [262144, 2, 262144],
    [1048576, 64, 2097152],
    [4000000, 2, 4000000],
    // 0 is no limit at all: never "raised" to one.
    [0, 8, 0],
  ];
  for (const [now, cpus, want] of conntrack)
    it(`nf_conntrack_max ${now} with ${cpus} CPUs → ${want}`, () => expect(wantedConntrackMax(now, cpus)).to.equal(want));

  it('raises in the root namespace only, gc_thresh3 before gc_thresh2, only the families that need it', () => {
    const f = facts({ conntrack: { entries: 0, max: 65536 } });
    expect(limitRaises(f, { 4: 300, 6: 0 }, 2)).to.deep.equal([
      { table: 'ipv4-neighbours', key: 'net/ipv4/neigh/default/gc_thresh3', from: 1024, to: 3072 },
      { table: 'ipv4-neighbours', key: 'net/ipv4/neigh/default/gc_thresh2', from: 512, to: 1536 },
      { table: 'conntrack', key: 'net/netfilter/nf_conntrack_max', from: 65536, to: 131072 },
    ]);
    expect(limitRaises({ ...f, root: false }, { 4: 300, 6: 300 }, 2)).to.deep.equal([]);
    expect(limitRaises(facts({ thresholds: { thresh1: 128, thresh2: 8192, thresh3: 16384 } }), { 4: 300, 6: 300 }, 2)).to.deep.equal([]);
  });

  it('counts endpoint addresses per family', () => {
    expect(countAddresses([{ addrs: ['10.0.0.1', '2001:db8::1'] }, { addrs: [] }, { addrs: ['10.0.0.2'] }])).to.deep.equal({ 4: 2, 6: 1 });
  });
});

describe('kernel tables: monitor (fake kernel, fake clock)', () => {
  let k: FakeKernel;
  let clock: FakeClock;
  let logs: Array<{ level: number; msg: string } & Record<string, unknown>>;
  let addresses: { 4: number; 6: number };
  let monitor: KernelTableMonitor;

  const WARN = 40;
  const INFO = 30;
  const lines = (level: number, re: RegExp) => logs.filter((l) => l.level === level && re.test(l.msg));
  const value = (key: string) => k.sysctl.read(key);
  const writes = () => k.ops.filter((o) => o.cmd === 'sysctl' && o.args[0] === 'ensure');

  /** While set, every reading fails. */
  let readsFail = false;

  async function start(opts: FakeKernelOptions & { raise?: boolean; cpus?: number } = {}, seed: (k: FakeKernel) => void = () => {}): Promise<void> {
    k = new FakeKernel(opts);
    seed(k);
    clock = new FakeClock();
    logs = [];
    const log = pino({ level: 'info' }, { write: (s: string) => logs.push(JSON.parse(s) as (typeof logs)[number]) });
    monitor = new KernelTableMonitor({
      reader: failing(new ProcKernelTables(k.sysctl, k.netlink, (name) => k.readProcNetStat(name))),
      sysctl: k.sysctl,
      log,
      raiseLimits: opts.raise ?? true,
      cpus: opts.cpus ?? 8,
      addresses: () => ({ ...addresses }),
      clock,
    });
    await monitor.start();
  }

  function failing(reader: KernelTableReader): KernelTableReader {
    return { read: () => (readsFail ? Promise.reject(Object.assign(new Error('EIO: injected'), { code: 'EIO' })) : reader.read()) };
  }

  /** One timer tick, and the reading it starts. */
  async function tick(): Promise<void> {
    clock.advance(10_000);
    await monitor.idle();
  }

  beforeEach(() => {
    addresses = { 4: 0, 6: 0 };
    readsFail = false;
  });
  afterEach(() => (monitor as KernelTableMonitor | undefined)?.stop()); // unset if beforeEach failed

  it('root namespace: raises the limits the endpoints need, logs each raise, and reports the new limits', async () => {
    addresses = { 4: 300, 6: 0 };
    await start();
    expect(await value('net/ipv4/neigh/default/gc_thresh3')).to.equal('3072');
    expect(await value('net/ipv4/neigh/default/gc_thresh2')).to.equal('1536');
    expect(await value('net/ipv4/neigh/default/gc_thresh1')).to.equal('128');
    expect(await value('net/ipv6/neigh/default/gc_thresh3')).to.equal('1024');
    expect(await value('net/netfilter/nf_conntrack_max')).to.equal('262144');
    expect(writes().map((o) => o.args.slice(1))).to.deep.equal([
      ['net/ipv4/neigh/default/gc_thresh3', '3072'],
      ['net/ipv4/neigh/default/gc_thresh2', '1536'],
      ['net/netfilter/nf_conntrack_max', '262144'],
    ]);
    const raised = lines(INFO, /^raised /);
    expect(raised.map((l) => l.msg)).to.deep.equal([
      'raised net.ipv4.neigh.default.gc_thresh3 from 1024 to 3072',
      'raised net.ipv4.neigh.default.gc_thresh2 from 512 to 1536',
      'raised net.netfilter.nf_conntrack_max from 65536 to 262144',
    ]);
    expect(raised[0]).to.include({ table: 'ipv4-neighbours', from: 1024, to: 3072, addresses: 300 });
    expect(raised[2]).to.include({ table: 'conntrack', cpus: 8 });
    expect(monitor.usages.map((u) => [u.table, u.limit, u.scope])).to.deep.equal([
      ['ipv4-neighbours', 3072, 'kernel'],
      ['ipv6-neighbours', 1024, 'kernel'],
      ['conntrack', 262144, 'namespace'],
    ]);
  });

  it('raises further as endpoints grow, and never lowers when they shrink', async () => {
    addresses = { 4: 10, 6: 0 };
    await start();
    expect(await value('net/ipv4/neigh/default/gc_thresh3')).to.equal('2048');
    addresses = { 4: 1000, 6: 200 };
    monitor.endpointsChanged();
    await monitor.idle();
    expect(await value('net/ipv4/neigh/default/gc_thresh3')).to.equal('5120');
    expect(await value('net/ipv4/neigh/default/gc_thresh2')).to.equal('2560');
    expect(await value('net/ipv6/neigh/default/gc_thresh3')).to.equal('2048');
    const before = writes().length;
    addresses = { 4: 1, 6: 0 };
    monitor.endpointsChanged();
    await tick();
    await tick();
    expect(writes()).to.have.length(before);
    expect(await value('net/ipv4/neigh/default/gc_thresh3')).to.equal('5120');
  });

  it('reads again when endpoint addresses grow, not when they stay or shrink', async () => {
    addresses = { 4: 5, 6: 0 };
    await start();
    const reads = () => k.count('sysctl.read');
    const first = reads();
    monitor.endpointsChanged();
    addresses = { 4: 4, 6: 0 };
    monitor.endpointsChanged();
    await monitor.idle();
    expect(reads()).to.equal(first);
    addresses = { 4: 4, 6: 1 };
    monitor.endpointsChanged();
    await monitor.idle();
    expect(reads()).to.be.greaterThan(first);
  });

  it('root namespace with RaiseKernelLimits off: reports, writes nothing', async () => {
    addresses = { 4: 5000, 6: 5000 };
    await start({ raise: false }, (k) => k.learnNeighbours(4, 3));
    await tick();
    expect(writes()).to.deep.equal([]);
    expect(k.sysctl.writes).to.equal(0);
    expect(monitor.usages[0]).to.deep.equal({
      table: 'ipv4-neighbours',
      entries: 3,
      limit: 1024,
      scope: 'kernel',
      sysctl: 'net.ipv4.neigh.default.gc_thresh3',
    });
    expect(lines(INFO, /RaiseKernelLimits is off/)).to.have.length(1);
  });

  it('child namespace: reports what it sees and says so, raises nothing even with the option on', async () => {
    addresses = { 4: 5000, 6: 5000 };
    await start({ namespace: 'child' }, (k) => {
      k.addLink('tapa');
      k.learnNeighbours(4, 7);
      k.learnNeighbours(6, 2);
      // Other namespaces' entries: not visible from here.
      k.neighboursElsewhere(4, 900);
      k.addFlow('10.0.0.1', '10.0.0.2');
    });
    await k.netlink.setNeighbour({ dst: '10.65.0.1', ifindex: k.link('tapa')!.index, mac: 'ee:ee:ee:ee:ee:01' });
    await tick();
    expect(writes()).to.deep.equal([]);
    expect(monitor.usages).to.deep.equal([
      { table: 'ipv4-neighbours', entries: 8, limit: null, scope: 'namespace', sysctl: 'net.ipv4.neigh.default.gc_thresh3' },
      { table: 'ipv6-neighbours', entries: 2, limit: null, scope: 'namespace', sysctl: 'net.ipv6.neigh.default.gc_thresh3' },
      { table: 'conntrack', entries: 1, limit: 65536, scope: 'namespace', sysctl: 'net.netfilter.nf_conntrack_max' },
    ]);
    expect(lines(INFO, /in a network namespace.*reporting only, raising nothing/)).to.have.length(1);
    expect(monitor.warnings).to.deep.equal([]);
  });

  it('root namespace: the neighbour counts are kernel-wide (other namespaces’ entries too)', async () => {
    await start({ raise: false }, (k) => {
      k.learnNeighbours(4, 7);
      k.neighboursElsewhere(4, 900);
      k.neighboursElsewhere(6, 20);
    });
    expect(monitor.usages.map((u) => [u.table, u.entries])).to.deep.equal([
      ['ipv4-neighbours', 907],
      ['ipv6-neighbours', 20],
      ['conntrack', 0],
    ]);
    // Kernel-wide counts come from /proc/net/stat: no neighbour dump.
    expect(k.count('netlink.neighbourCounts')).to.equal(0);
  });

  it('warns once when a table reaches 80%, says when it is back below, and warns again on the next crossing', async () => {
    await start({ raise: false });
    const warned = () => lines(WARN, /IPv4 neighbour table/);
    k.neighboursElsewhere(4, 820);
    await tick();
    expect(warned().map((l) => l.msg)).to.deep.equal([
      'IPv4 neighbour table (ARP) holds 820 of 1024 entries (80%) in the whole kernel: raise net.ipv4.neigh.default.gc_thresh3 (and gc_thresh2 to about half of it)',
    ]);
    expect(warned()[0]).to.include({ table: 'ipv4-neighbours', entries: 820, limit: 1024, scope: 'kernel' });
    expect(monitor.warnings).to.deep.equal([warned()[0]!.msg]);
    k.neighboursElsewhere(4, 1000);
    await tick();
    await tick();
    expect(warned()).to.have.length(1);
    expect(monitor.warnings[0]).to.match(/holds 1000 of 1024 entries \(97%\)/);
    k.neighboursElsewhere(4, 100);
    await tick();
    expect(lines(INFO, /back below/).map((l) => l.msg)).to.deep.equal(['IPv4 neighbour table (ARP) back below 80% of its limit: 100 of 1024 entries']);
    expect(monitor.warnings).to.deep.equal([]);
    k.neighboursElsewhere(4, 900);
    await tick();
    expect(warned()).to.have.length(2);
  });

  it('a raise of gc_thresh3 that fails is logged once, leaves gc_thresh2 alone, and is tried again', async () => {
    addresses = { 4: 300, 6: 0 };
    await start({}, (k) => k.failNext((cmd, args) => cmd === 'sysctl' && args[0] === 'ensure' && args[1] === 'net/ipv4/neigh/default/gc_thresh3', 'EPERM'));
    expect(lines(WARN, /cannot raise net\.ipv4\.neigh\.default\.gc_thresh3/)).to.have.length(1);
    expect(await value('net/ipv4/neigh/default/gc_thresh2')).to.equal('512');
    expect(monitor.usages[0]!.limit).to.equal(1024);
    await tick();
    expect(await value('net/ipv4/neigh/default/gc_thresh3')).to.equal('3072');
    expect(await value('net/ipv4/neigh/default/gc_thresh2')).to.equal('1536');
    expect(monitor.usages[0]!.limit).to.equal(3072);
  });

  it('a reading that fails is logged once and keeps the last usages', async () => {
    await start({ raise: false }, (k) => k.learnNeighbours(4, 3));
    readsFail = true;
    k.learnNeighbours(4, 50);
    await tick();
    await tick();
    expect(lines(WARN, /cannot read the kernel tables/)).to.have.length(1);
    expect(monitor.usages[0]!.entries).to.equal(3);
    readsFail = false;
    await tick();
    expect(monitor.usages[0]!.entries).to.equal(50);
  });

  it('without nf_conntrack: no conntrack row and nothing raised for it', async () => {
    addresses = { 4: 1, 6: 0 };
    await start({ conntrack: false });
    expect(monitor.usages.map((u) => u.table)).to.deep.equal(['ipv4-neighbours', 'ipv6-neighbours']);
    expect(writes().map((o) => o.args[1])).to.deep.equal(['net/ipv4/neigh/default/gc_thresh3', 'net/ipv4/neigh/default/gc_thresh2']);
  });
});
