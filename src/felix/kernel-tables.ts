/**
 * Kernel tables Felix depends on (issue #15): the neighbour tables (IPv4
 * ARP and IPv6 NDP, limited by `gc_thresh3`) and the conntrack table
 * (limited by `nf_conntrack_max`). A host with thousands of containers fills
 * the neighbour tables long before anything else: the kernel keeps one table
 * per family for all namespaces, and every container's namespace adds its
 * own entries to it. When one is full, new neighbours (or new flows) are
 * refused and packets dropped, with little more than a rate-limited
 * "neighbor table overflow!" in the kernel log.
 *
 * Pure calculation first (usages, warnings, the limits wanted for N
 * addresses), then {@link KernelTableMonitor}, which reads the facts through
 * a {@link KernelTableReader}, raises limits through {@link Sysctl} and logs.
 */
import type { KernelTableStatus } from '../common/metrics.js';
import type { Logger } from '../common/logging.js';
import { ipFamily } from '../common/wire/codec.js';
import { Clock, realClock } from '../common/clock.js';
import { CONNTRACK_MAX, KernelTableFacts, KernelTableReader, NeighbourThresholds, neighbourSysctl } from './dataplane/drivers/kernel-tables.js';
import { Sysctl, sysctlName } from './dataplane/drivers/sysctl.js';
import type { Family } from './dataplane/render/names.js';

export type { KernelTableStatus as TableUsage };

/** Warn at this share of a limit. */
export const WARN_PERCENT = 80;

/**
 * nf_conntrack_max wanted on a busy host: kube-proxy's defaults
 * (`--conntrack-min` 131072, `--conntrack-max-per-core` 32768), which it
 * also writes to the host at start when the value is lower.
 */
export const CONNTRACK_MIN = 131072;
export const CONNTRACK_PER_CPU = 32768;

/** Room above the endpoint addresses for the neighbour tables: 4 entries per address plus this, in multiples of this. */
export const NEIGHBOUR_BASE = 1024;
export const NEIGHBOUR_PER_ADDRESS = 4;

export const neighbourTable = (family: Family): string => `ipv${family}-neighbours`;
const TITLE: Record<string, string> = {
  'ipv4-neighbours': 'IPv4 neighbour table (ARP)',
  'ipv6-neighbours': 'IPv6 neighbour table (NDP)',
  conntrack: 'conntrack table',
};
const title = (table: string) => TITLE[table] ?? table;

/** One row per table, in a fixed order; conntrack only while nf_conntrack is loaded. */
export function tableUsages(facts: KernelTableFacts): KernelTableStatus[] {
  const rows: KernelTableStatus[] = ([4, 6] as const).map((family) => {
    const n = facts.neighbours[family];
    return {
      table: neighbourTable(family),
      entries: n.entries,
      limit: n.thresholds?.thresh3 ?? null,
      scope: n.kernelWide ? 'kernel' : 'namespace',
      sysctl: sysctlName(neighbourSysctl(family, 3)),
    };
  });
  // The kernel compares each namespace's own conntrack count with the (kernel-wide) max.
  if (facts.conntrack)
    rows.push({ table: 'conntrack', entries: facts.conntrack.entries, limit: facts.conntrack.max, scope: 'namespace', sysctl: sysctlName(CONNTRACK_MAX) });
  return rows;
}

/** A table at or above {@link WARN_PERCENT} of a known limit (0 means no limit for conntrack). */
export function overWarnLevel(u: KernelTableStatus): boolean {
  return u.limit !== null && u.limit > 0 && u.entries * 100 >= u.limit * WARN_PERCENT;
}

const where = (u: KernelTableStatus) => (u.scope === 'kernel' ? 'in the whole kernel' : 'in this namespace');

/** The warning line for a table at or above 80% of its limit, or null. */
export function tableWarning(u: KernelTableStatus): string | null {
  if (!overWarnLevel(u)) return null;
  const also = u.table.endsWith('-neighbours') ? ' (and gc_thresh2 to about half of it)' : '';
  return `${title(u.table)} holds ${u.entries} of ${u.limit} entries (${Math.floor((u.entries * 100) / u.limit!)}%) ${where(u)}: raise ${u.sysctl}${also}`;
}

export function tableWarnings(usages: KernelTableStatus[]): string[] {
  return usages.map(tableWarning).filter((w): w is string => w !== null);
}

const roundUp = (n: number, step: number) => Math.ceil(n / step) * step;

/**
 * The neighbour thresholds wanted for `addresses` endpoint addresses of the
 * table's family: gc_thresh3 at least 4 × addresses + 1024, rounded up to a
 * multiple of 1024, gc_thresh2 at least half of that. Never lower than now;
 * gc_thresh1 is left alone; gc_thresh3 stays ≥ gc_thresh2.
 */
export function wantedNeighbourThresholds(current: NeighbourThresholds, addresses: number): NeighbourThresholds {
  const want3 = roundUp(NEIGHBOUR_PER_ADDRESS * addresses + NEIGHBOUR_BASE, NEIGHBOUR_BASE);
  const thresh2 = Math.max(current.thresh2, want3 / 2);
  return { thresh1: current.thresh1, thresh2, thresh3: Math.max(current.thresh3, want3, thresh2) };
}

/** nf_conntrack_max wanted for `cpus` CPUs: max(131072, 32768 per CPU), never lower than now; 0 (no limit) stays 0. */
export function wantedConntrackMax(current: number, cpus: number): number {
  if (current === 0) return 0;
  return Math.max(current, CONNTRACK_MIN, CONNTRACK_PER_CPU * cpus);
}

/** One sysctl to write: `key` as under /proc/sys. */
export interface LimitRaise {
  table: string;
  key: string;
  from: number;
  to: number;
}

/**
 * The writes that bring the limits up to what `addresses` (per family) and
 * `cpus` need, in the order to make them (gc_thresh3 before gc_thresh2).
 * None outside the root namespace: the limits are kernel-wide, and a child
 * namespace neither has the neighbour thresholds nor may write nf_conntrack_max.
 */
export function limitRaises(facts: KernelTableFacts, addresses: Record<Family, number>, cpus: number): LimitRaise[] {
  if (!facts.root) return [];
  const out: LimitRaise[] = [];
  for (const family of [4, 6] as const) {
    const now = facts.neighbours[family].thresholds;
    if (!now) continue;
    const want = wantedNeighbourThresholds(now, addresses[family]);
    for (const n of [3, 2] as const) {
      const [from, to] = n === 3 ? [now.thresh3, want.thresh3] : [now.thresh2, want.thresh2];
      if (to > from) out.push({ table: neighbourTable(family), key: neighbourSysctl(family, n), from, to });
    }
  }
  if (facts.conntrack) {
    const to = wantedConntrackMax(facts.conntrack.max, cpus);
    if (to > facts.conntrack.max) out.push({ table: 'conntrack', key: CONNTRACK_MAX, from: facts.conntrack.max, to });
  }
  return out;
}

/** Endpoint addresses per family (what the neighbour tables must hold room for). */
export function countAddresses(endpoints: Iterable<{ addrs: readonly string[] }>): Record<Family, number> {
  const n: Record<Family, number> = { 4: 0, 6: 0 };
  for (const ep of endpoints) for (const a of ep.addrs) n[ipFamily(a)]++;
  return n;
}

export interface KernelTableMonitorOptions {
  reader: KernelTableReader;
  sysctl: Sysctl;
  log: Logger;
  /** felix.cfg `[global] RaiseKernelLimits`. */
  raiseLimits: boolean;
  /** The host's CPUs, for nf_conntrack_max. */
  cpus: number;
  /** Endpoint addresses Felix holds now, per family. */
  addresses: () => Record<Family, number>;
  /** How often to read the tables (default 10 s). */
  intervalMs?: number;
  clock?: Clock;
}

/**
 * Watches the kernel tables: reads them every 10 s and when the endpoint
 * addresses grow, keeps the latest reading for /metrics and /status, logs a
 * warning once when a table reaches 80% of its limit (and an info when it
 * drops below again), and — in the root namespace, with RaiseKernelLimits on
 * — raises the limits to what the endpoints need, never lowering one.
 *
 * Use: `await start()`, call `endpointsChanged()` after endpoints were
 * programmed, read `usages` / `warnings`, `stop()`. It never touches a
 * table's contents; it is not a garbage collector.
 */
export class KernelTableMonitor {
  private latest: KernelTableStatus[] = [];
  /** Tables over the warning level at the last reading. */
  private readonly warned = new Set<string>();
  /** Raises that failed (`key=value`), each logged once. */
  private readonly failedRaises = new Set<string>();
  /** Addresses per family at the last reading. */
  private covered: Record<Family, number> = { 4: -1, 6: -1 };
  private running: Promise<void> | null = null;
  private again = false;
  private readFailing = false;
  /** Whether the last reading was in the root namespace (null before the first). */
  private root: boolean | null = null;
  private described = false;
  private stopped = false;
  private timer: unknown;
  private readonly clock: Clock;

  constructor(private readonly opts: KernelTableMonitorOptions) {
    this.clock = opts.clock ?? realClock;
  }

  /** The latest reading; empty before the first. */
  get usages(): KernelTableStatus[] {
    return this.latest;
  }

  get warnings(): string[] {
    return tableWarnings(this.latest);
  }

  /** Reads the tables once (raising limits if due), then every interval. */
  async start(): Promise<void> {
    await this.check();
    this.timer = this.clock.setInterval(() => void this.check(), this.opts.intervalMs ?? 10000);
  }

  /** No more readings; resolves when the one running (if any) has ended. */
  async stop(): Promise<void> {
    this.clock.clearInterval(this.timer);
    this.stopped = true;
    await this.idle();
  }

  /** Resolves once no reading runs (one the timer started, say). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /**
   * Cheap: reads the tables again only where it may raise limits (root
   * namespace, option on), and only if some family has more endpoint
   * addresses than at the last reading. Elsewhere the periodic reading
   * suffices: in a network namespace a reading is two neighbour dumps, and
   * one per routes apply was work on the programming path that could never
   * lead to a raise.
   */
  endpointsChanged(): void {
    if (this.stopped || !this.opts.raiseLimits || this.root !== true) return;
    const n = this.opts.addresses();
    if (n[4] > this.covered[4] || n[6] > this.covered[6]) void this.check();
  }

  /** One reading (and raise); a call while one runs makes it run once more and resolves after that. */
  check(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.checkOnce();
      } while (this.again as boolean); // set by a check() meanwhile
    })().finally(() => (this.running = null));
    return this.running;
  }

  private async read(): Promise<KernelTableFacts | null> {
    try {
      const facts = await this.opts.reader.read();
      this.readFailing = false;
      return facts;
    } catch (err) {
      if (!this.readFailing) this.opts.log.warn({ err }, 'cannot read the kernel tables; will try again');
      this.readFailing = true;
      return null;
    }
  }

  private async checkOnce(): Promise<void> {
    const { log, raiseLimits, cpus } = this.opts;
    let facts = await this.read();
    if (!facts) return;
    this.root = facts.root;
    const addresses = this.opts.addresses();
    this.covered = addresses;
    if (!this.described) {
      this.described = true;
      if (!facts.root)
        log.info(
          { raiseLimits },
          'kernel tables: in a network namespace; neighbour counts are this namespace’s, their limits are not visible; reporting only, raising nothing',
        );
      else
        log.info(
          { raiseLimits },
          raiseLimits
            ? 'kernel tables: watching; raising neighbour and conntrack limits as endpoints need'
            : 'kernel tables: watching; RaiseKernelLimits is off, limits left as they are',
        );
    }
    if (raiseLimits && facts.root) {
      let raised = false;
      const failed = new Set<string>();
      for (const r of limitRaises(facts, addresses, cpus)) {
        if (failed.has(r.table)) continue;
        const about = { table: r.table, sysctl: sysctlName(r.key), from: r.from, to: r.to };
        const why = r.table === 'conntrack' ? { cpus } : { addresses: addresses[r.table === neighbourTable(6) ? 6 : 4] };
        try {
          await this.opts.sysctl.ensure(r.key, String(r.to));
          raised = true;
          log.info({ ...about, ...why }, `raised ${about.sysctl} from ${r.from} to ${r.to}`);
        } catch (err) {
          // gc_thresh2 must not go above a gc_thresh3 that stayed where it was.
          failed.add(r.table);
          if (!this.failedRaises.has(`${r.key}=${r.to}`)) log.warn({ ...about, ...why, err }, `cannot raise ${about.sysctl}`);
          this.failedRaises.add(`${r.key}=${r.to}`);
        }
      }
      if (raised) facts = (await this.read()) ?? facts;
    }
    this.latest = tableUsages(facts);
    this.logCrossings();
  }

  private logCrossings(): void {
    for (const u of this.latest) {
      const warning = tableWarning(u);
      const about = { table: u.table, entries: u.entries, limit: u.limit, scope: u.scope, sysctl: u.sysctl };
      if (warning !== null && !this.warned.has(u.table)) {
        this.warned.add(u.table);
        this.opts.log.warn(about, warning);
      } else if (warning === null && this.warned.delete(u.table)) {
        this.opts.log.info(about, `${title(u.table)} back below ${WARN_PERCENT}% of its limit: ${u.entries} of ${u.limit ?? 'an unknown number of'} entries`);
      }
    }
    for (const t of this.warned) if (!this.latest.some((u) => u.table === t)) this.warned.delete(t);
  }
}
