/**
 * The Felix dataplane (SPEC §6 v2): endpoint state in, kernel state out.
 *
 * Updates (upsertEndpoint, setAcls, removeEndpoint) only record desired state
 * and mark the endpoint dirty; one apply loop takes every dirty endpoint,
 * renders it (latest ACLs win) and hands chains, sets and dispatch entries to
 * the managers, which write only what changed: sets first (one `ipset
 * restore`), then chains (one `iptables-restore` per family), then the sets
 * no chain references any more, then the conntrack entries of addresses
 * that lost their permission. Routes go alongside. The work of an apply is
 * proportional to what changed, not to the number of endpoints.
 *
 * Fail closed: an endpoint whose programming fails is taken out of the
 * dispatch chains (its traffic meets their final DROP) and retried with
 * backoff. Not for use outside the network namespace Felix is meant to own.
 */
import ipaddr from 'ipaddr.js';
import type { Logger } from 'pino';
import type { Acls } from '../../common/wire/acl-api.js';
import type { SkippedRule } from '../../common/status-api.js';
import { Backoff } from '../../common/backoff.js';
import { Clock, realClock } from '../../common/clock.js';
import { isEndpointId, isIp, isMac } from '../../common/wire/codec.js';
import { isInterfaceName } from '../../common/endpoint-names.js';
import type { ProtocolNames } from './render/acl.js';
import type { EndpointToHostAction } from './render/chains.js';
import { EndpointSpec, addrsOf } from './render/endpoint.js';
import { Family, endpointSuffix } from './render/names.js';
import { CommandRunner, execaRunner } from './drivers/commands.js';
import { Conntrack, ConntrackTool } from './drivers/conntrack.js';
import { LinkState, Netlink, RtNetlink } from './drivers/netlink.js';
import { Sysctl, procSysctl } from './drivers/sysctl.js';
import { DeniedCount, DeniedTotals } from './denied.js';
import { EndpointFilters, FilterEndpoint } from './filters.js';
import { LinkTracker } from './links.js';
import { RouteManager } from './routes.js';

export interface DataplaneOptions {
  log: Logger;
  /** Endpoint interfaces start with this ('tap'); only routes to such interfaces are ever touched. */
  interfacePrefix: string;
  metadata: { addr: string; port: number } | null;
  /** What containers may send to the host itself beyond DHCP, discovery and metadata (default DROP). */
  endpointToHost?: EndpointToHostAction;
  /** EndpointRetryTimeMillis: how often to look for missing interfaces; also the first retry backoff. */
  retryMs: number;
  commands?: CommandRunner;
  netlink?: Netlink;
  sysctl?: Sysctl;
  conntrack?: Conntrack;
  /** Protocol number → name as iptables-save and ipset print it (default: the built-in table). */
  protocols?: ProtocolNames;
  /** Longest wait between retries of a failing endpoint (default 30 s). */
  maxBackoffMs?: number;
  /** Told how long each apply of chains and sets, or of routes, took (for a histogram). */
  onApplied?: (part: 'filter' | 'routes', seconds: number) => void;
  /**
   * How often to re-read the kernel and repair drift (chains, set contents,
   * routes, neighbours); default 90 s, 0 = never.
   */
  refreshMs?: number;
  /** Timers, replaceable in tests. */
  clock?: Clock;
  /**
   * A denied-packet reading is reused while younger than this many times
   * the read took (at most 10 s), so a scraper polling in a loop costs the
   * host about 1/N of a core at most, not one (an `iptables-save -c` of
   * 1000 endpoints takes 0.1–0.3 s); default 10, 0: every call reads.
   */
  countersReuse?: number;
}

const DEFAULT_COUNTERS_REUSE = 10;
const MAX_COUNTERS_REUSE_MS = 10000;

export interface EndpointStatus {
  /** Routes and chains/sets in place, nothing pending, no error. */
  programmed: boolean;
  /** Its routes and neighbours match the spec (none while disabled). */
  routesProgrammed: boolean;
  /** Its chains and sets match the spec and its ACLs. */
  filterProgrammed: boolean;
  interfaceUp: boolean;
  error?: string;
}

interface EndpointState {
  spec: EndpointSpec;
  suffix: string;
  addrs: Record<Family, string[]>;
  /** The latest ACLs; null until the first setAcls (deny all). Rendered when applied, so only the latest costs anything. */
  acls: Acls | null;
  /** Bumped by every change, so a change made while an apply runs is not lost when that apply completes. */
  version: number;
  filterProgrammed: boolean;
  routesProgrammed: boolean;
  filterError: string | null;
  routesError: string | null;
  /** The waits between retries of its programming. */
  backoff: Backoff;
  retryTimer: unknown;
}

/** ipaddr.js ranges of addresses that cannot be routed to one endpoint (IPv4 and IPv6 names). */
const UNROUTABLE_RANGES = new Set(['unspecified', 'loopback', 'linkLocal', 'multicast', 'broadcast']);

/** See the file comment. */
export class Dataplane {
  private readonly log: Logger;
  private readonly filters: EndpointFilters;
  private readonly links: LinkTracker;
  private readonly routes: RouteManager;
  private readonly conntrack: Conntrack;
  private readonly netlink: Netlink;
  private readonly sysctl: Sysctl;
  private readonly clock: Clock;
  private readonly maxBackoffMs: number;

  private readonly endpoints = new Map<string, EndpointState>();
  /** Denied-packet totals, kept growing across chain rewrites and removals (issue #16). */
  private readonly denied = new DeniedTotals();
  /** The counter read in flight: concurrent scrapes share it. */
  private deniedRead: Promise<DeniedCount[]> | null = null;
  /** The last reading, when it ended and how long it took. */
  private deniedLast: { at: number; ms: number; counts: DeniedCount[] } | null = null;
  private readonly filterDirty = new Set<EndpointState>();
  private readonly routesDirty = new Set<EndpointState>();
  /** Interfaces whose routes and neighbours must go (their endpoint went or moved). */
  private readonly clearedInterfaces = new Set<string>();
  /** Told when an apply starts (true) and ends (false). */
  onApplying: ((applying: boolean) => void) | undefined;
  /** Addresses whose flows must be forgotten once the apply that removes their permission has committed. */
  private readonly conntrackPending = new Set<string>();
  /** Addresses whose permission a committed restore removed, for the background flow deletion. */
  private readonly flowsToDelete = new Set<string>();
  private flowWorker: Promise<void> | null = null;
  private flowRetryTimer: unknown = null;
  private cleanupRequested = false;
  /** A host-level apply failed: wait for a timer instead of spinning the loop. */
  private hostRetryPending = false;
  private hostRetryTimer: unknown = null;
  private readonly hostBackoff: Backoff;

  private started = false;
  private stopped = false;
  private loopRunning = false;
  private loopScheduled = false;
  private idleWaiters: (() => void)[] = [];
  private timers: unknown[] = [];

  constructor(private readonly opts: DataplaneOptions) {
    this.log = opts.log.child({ component: 'dataplane' });
    const runner = opts.commands ?? execaRunner;
    this.filters = new EndpointFilters({
      log: this.log,
      runner,
      interfacePrefix: opts.interfacePrefix,
      metadata: opts.metadata,
      endpointToHost: opts.endpointToHost ?? 'DROP',
      ...(opts.protocols ? { protocols: opts.protocols } : {}),
    });
    this.netlink = opts.netlink ?? new RtNetlink();
    this.sysctl = opts.sysctl ?? procSysctl;
    this.conntrack = opts.conntrack ?? new ConntrackTool(runner);
    this.clock = opts.clock ?? realClock;
    this.maxBackoffMs = opts.maxBackoffMs ?? 30000;
    this.hostBackoff = new Backoff(Math.max(200, opts.retryMs), this.maxBackoffMs);
    this.links = new LinkTracker(this.netlink, (name, before) => this.onLinkChange(name, before));
    this.routes = new RouteManager(this.netlink, this.sysctl, this.log);
  }

  /**
   * Forwarding on, host-wide chains and jumps in place, link events followed.
   * Never flushes anything: dispatch entries and chains a previous Felix left
   * stay until the first resync has completed.
   */
  async start(): Promise<void> {
    await this.sysctl.ensure('net/ipv4/ip_forward', '1');
    await this.sysctl.ensure('net/ipv6/conf/all/forwarding', '1');
    this.netlink.onEventsLost((why) => {
      if (why === 'overflow') this.log.warn('link events lost (netlink ENOBUFS: a burst of changes); re-reading links, routes and neighbours');
      else this.log.debug('link monitor started; re-reading links, routes and neighbours');
      this.refresh({ chains: false });
    });
    await this.links.start();
    await this.filters.start();
    await this.applyFilter([]);
    this.started = true;
    this.timers.push(this.clock.setInterval(() => void this.pollLinks(), this.opts.retryMs));
    const refreshMs = this.opts.refreshMs ?? 90000;
    if (refreshMs > 0) this.timers.push(this.clock.setInterval(() => this.refresh(), refreshMs));
    this.log.info({ interfacePrefix: this.opts.interfacePrefix, metadata: this.opts.metadata }, 'dataplane started');
    this.schedule();
  }

  /** Records the endpoint's desired state; a spec that cannot be programmed leaves the endpoint denied, with the reason in status(). */
  upsertEndpoint(spec: EndpointSpec): void {
    const problem = this.specProblem(spec);
    const known = this.endpoints.get(spec.id);
    if (problem !== null) {
      this.log.error({ endpoint: spec.id, problem }, 'endpoint cannot be programmed; left denied');
      if (known) {
        this.filters.unstage(known.spec.id);
        this.forgetFlows([...known.addrs[4], ...known.addrs[6]]);
        known.filterError = problem;
        known.version++;
        this.filterDirty.delete(known);
        this.routesDirty.delete(known);
        this.schedule();
      }
      return;
    }
    const addrs = { 4: addrsOf(spec, 4), 6: addrsOf(spec, 6) };
    if (known) {
      if (known.spec.ifname !== spec.ifname) this.clearedInterfaces.add(known.spec.ifname);
      const keeps = new Set(spec.enabled ? [...addrs[4], ...addrs[6]] : []);
      this.forgetFlows([...known.addrs[4], ...known.addrs[6]].filter((a) => !keeps.has(a)));
      known.spec = { ...spec, addrs: [...spec.addrs] };
      known.addrs = addrs;
      if (known.filterError !== null && known.retryTimer === null) known.filterError = null;
      known.version++;
      this.markDirty(known);
    } else {
      const e: EndpointState = {
        spec: { ...spec, addrs: [...spec.addrs] },
        suffix: endpointSuffix(spec.id),
        addrs,
        acls: null,
        version: 0,
        filterProgrammed: false,
        routesProgrammed: false,
        filterError: null,
        routesError: null,
        backoff: new Backoff(Math.max(50, this.opts.retryMs), this.maxBackoffMs),
        retryTimer: null,
      };
      this.endpoints.set(spec.id, e);
      this.markDirty(e);
    }
    this.clearedInterfaces.delete(spec.ifname);
    this.schedule();
  }

  setAcls(id: string, acls: Acls): void {
    const e = this.endpoints.get(id);
    if (!e) return;
    e.acls = acls;
    e.version++;
    this.filterDirty.add(e);
    this.schedule();
  }

  removeEndpoint(id: string): void {
    const e = this.endpoints.get(id);
    if (!e) return;
    if (e.retryTimer !== null) this.clock.clearTimeout(e.retryTimer);
    this.endpoints.delete(id);
    this.denied.forget(id);
    this.filterDirty.delete(e);
    this.routesDirty.delete(e);
    this.filters.unstage(id);
    this.forgetFlows([...e.addrs[4], ...e.addrs[6]]);
    this.clearedInterfaces.add(e.spec.ifname);
    this.routes.forget(e.spec.ifname);
    this.schedule();
  }

  /**
   * Why an endpoint may not have this address, or null (SPEC §3 "What Felix
   * trusts"): the host has it itself, or reaches it on the link of an
   * interface that is not an endpoint's (a route `198.18.0.2 dev tapX` would
   * cut the fabric).
   */
  async addressProblem(addr: string): Promise<string | null> {
    // fe80::1 is every IPv6 endpoint's gateway, and no link-local, multicast or loopback address can be routed to one endpoint.
    const range = ipaddr.parse(addr).range();
    if (UNROUTABLE_RANGES.has(range)) return `${addr} is not an address an endpoint can have (${range})`;
    const route = await this.netlink.routeTo(addr);
    if (route === null) return null;
    if (route.local) return `${addr} is an address of this host`;
    const link = this.links.byIndex(route.ifindex);
    if (!route.viaGateway && link && !link.name.startsWith(this.opts.interfacePrefix))
      return `${addr} is on the link of ${link.name}, which is not an endpoint interface`;
    return null;
  }

  /** After a completed resync: remove felix- chains and sets, and routes to prefix interfaces, that no known endpoint owns. */
  cleanupStale(): void {
    this.cleanupRequested = true;
    this.schedule();
  }

  /** What the kernel has of an endpoint (its chains) and the rules of its ACLs Felix could not program; for /status/endpoint. */
  inForce(id: string): { acls: Acls | null; chains: Array<{ family: Family; name: string; rules: string[] }>; skipped: SkippedRule[] } | undefined {
    const e = this.endpoints.get(id);
    if (!e) return undefined;
    const skipped =
      e.acls && e.spec.enabled ? this.filters.skippedRules(e.acls).map(({ family, direction, index, reason }) => ({ family, direction, index, reason })) : [];
    return { acls: e.acls, chains: this.filters.kernelChains(e.suffix), skipped };
  }

  status(id: string): EndpointStatus | undefined {
    const e = this.endpoints.get(id);
    if (!e) return undefined;
    const error = e.filterError ?? e.routesError;
    const filterProgrammed = e.filterProgrammed && !this.filterDirty.has(e) && e.filterError === null;
    const routesProgrammed = e.routesProgrammed && !this.routesDirty.has(e) && e.routesError === null;
    return {
      programmed: filterProgrammed && routesProgrammed,
      routesProgrammed,
      filterProgrammed,
      interfaceUp: this.links.get(e.spec.ifname)?.up ?? false,
      ...(error !== null ? { error } : {}),
    };
  }

  /**
   * Packets denied per endpoint, direction and family (issue #16), read from
   * the kernel's rule counters now: the DROP rules of each endpoint's chains,
   * and under endpoint `""` those of the dispatch chains (traffic from or to
   * a tap interface no endpoint owns). One `iptables-save -c` and one
   * `ip6tables-save -c` per read, whatever the number of endpoints; calls
   * made while a read runs share it, and so do calls made soon after it
   * (see {@link DataplaneOptions.countersReuse}). A total only grows while
   * its endpoint exists (see denied.ts). Rejects if a tool fails.
   */
  deniedPackets(): Promise<DeniedCount[]> {
    const last = this.deniedLast;
    const reuse = this.opts.countersReuse ?? DEFAULT_COUNTERS_REUSE;
    if (last && this.clock.now() - last.at < Math.min(reuse * last.ms, MAX_COUNTERS_REUSE_MS)) return Promise.resolve(last.counts);
    this.deniedRead ??= (async () => {
      try {
        const started = this.clock.now();
        const readings = await this.filters.readCounters();
        const counts = this.denied.update(readings, new Map([...this.endpoints.values()].map((e) => [e.suffix, e.spec.id])));
        this.deniedLast = { at: this.clock.now(), ms: this.clock.now() - started, counts };
        return counts;
      } catch (err) {
        this.log.warn({ err }, 'reading the denied-packet counters failed');
        throw err;
      } finally {
        this.deniedRead = null;
      }
    })();
    return this.deniedRead;
  }

  /** Resolves once nothing is dirty and no apply runs (endpoints waiting for an interface or a retry do not count). */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) this.clock.clearInterval(t);
    if (this.hostRetryTimer !== null) this.clock.clearTimeout(this.hostRetryTimer);
    if (this.flowRetryTimer !== null) this.clock.clearTimeout(this.flowRetryTimer);
    for (const e of this.endpoints.values()) if (e.retryTimer !== null) this.clock.clearTimeout(e.retryTimer);
    while (this.loopRunning) await new Promise((r) => setTimeout(r, 10));
    await this.flowWorker;
    this.netlink.close();
    this.wakeIdle();
  }

  // ---- desired state → managers ----

  private specProblem(spec: EndpointSpec): string | null {
    if (!isEndpointId(spec.id)) return `bad endpoint id ${JSON.stringify(spec.id)}`;
    if (!isInterfaceName(spec.ifname) || !spec.ifname.startsWith(this.opts.interfacePrefix)) return `bad interface name ${JSON.stringify(spec.ifname)}`;
    if (!isMac(spec.mac)) return `bad mac ${JSON.stringify(spec.mac)}`;
    const bad = spec.addrs.find((a) => !isIp(a));
    return bad === undefined ? null : `bad address ${JSON.stringify(bad)}`;
  }

  private markDirty(e: EndpointState): void {
    this.filterDirty.add(e);
    this.routesDirty.add(e);
  }

  private forgetFlows(addrs: string[]): void {
    for (const a of addrs) this.conntrackPending.add(a);
  }

  private filterEndpoint(e: EndpointState): FilterEndpoint {
    return { id: e.spec.id, suffix: e.suffix, ifname: e.spec.ifname, mac: e.spec.mac, addrs: e.addrs, enabled: e.spec.enabled, acls: e.acls };
  }

  // ---- the apply loop ----

  private wakeIdle(): void {
    for (const w of this.idleWaiters.splice(0)) w();
  }

  private isIdle(): boolean {
    return !this.loopRunning && !this.loopScheduled && this.flowWorker === null && !this.hasWork();
  }

  private routesActionable(e: EndpointState): boolean {
    return (e.routesError === null || e.retryTimer === null) && (!e.spec.enabled || this.links.ready(e.spec.ifname) !== null);
  }

  private filterActionable(e: EndpointState): boolean {
    // A retry timer holds back only the part that failed.
    return e.filterError === null || e.retryTimer === null;
  }

  private hasWork(): boolean {
    if (!this.started || this.stopped) return false;
    if (this.clearedInterfaces.size > 0) return true;
    if (!this.hostRetryPending) {
      if (this.filters.dirty || this.cleanupRequested || this.conntrackPending.size > 0) return true;
      for (const e of this.filterDirty) if (this.filterActionable(e)) return true;
    }
    for (const e of this.routesDirty) if (this.routesActionable(e)) return true;
    return false;
  }

  private schedule(): void {
    if (this.loopScheduled || this.loopRunning || !this.started || this.stopped) return;
    this.loopScheduled = true;
    setImmediate(() => void this.loop());
  }

  private async loop(): Promise<void> {
    this.loopScheduled = false;
    this.loopRunning = true;
    try {
      while (this.hasWork()) {
        this.onApplying?.(true);
        try {
          await this.applyOnce();
        } finally {
          this.onApplying?.(false);
        }
        // A turn of the event loop between applies, for what waited on it (the agent reads ACLs then).
        await new Promise((r) => setImmediate(r));
        if (this.cleanupRequested && !this.hostRetryPending && ![...this.filterDirty].some((e) => this.filterActionable(e))) await this.cleanup();
      }
    } catch (err) {
      this.log.error({ err }, 'apply loop failed');
      this.retryHostLater();
    } finally {
      this.loopRunning = false;
      if (this.hasWork()) this.schedule();
      else if (this.isIdle()) this.wakeIdle();
    }
  }

  /**
   * Chains and sets, and routes alongside (a route without chains meets the
   * dispatch DROP); then the flows of addresses whose permission this apply
   * removed are deleted in the background: spawning `conntrack` per address
   * is slow on a busy host, and the next apply need not wait for it.
   */
  private async applyOnce(): Promise<void> {
    const batch = this.hostRetryPending ? [] : [...this.filterDirty].filter((e) => this.filterActionable(e));
    const routeWork = [...this.routesDirty].filter((e) => this.routesActionable(e));
    // Addresses noted before this apply stages: their permission goes with this apply's restore.
    const flows = this.hostRetryPending ? [] : [...this.conntrackPending];
    for (const a of flows) this.conntrackPending.delete(a);
    await Promise.all([this.applyFilterBatch(batch), this.applyRoutes(routeWork)]);
    if (this.hostRetryPending) for (const a of flows) this.conntrackPending.add(a);
    else this.deleteFlowsLater(flows);
  }

  private deleteFlowsLater(addrs: string[]): void {
    for (const a of addrs) this.flowsToDelete.add(a);
    if (this.flowWorker !== null || this.flowRetryTimer !== null || this.flowsToDelete.size === 0 || this.stopped) return;
    this.flowWorker = (async () => {
      while (this.flowsToDelete.size > 0 && !this.stopped) {
        const batch = [...this.flowsToDelete];
        this.flowsToDelete.clear();
        try {
          await this.conntrack.deleteFlows(batch);
          this.log.info({ addrs: batch.length }, 'flows of addresses that lost their permission deleted');
        } catch (err) {
          this.log.error({ err }, 'deleting conntrack entries failed; will retry');
          for (const a of batch) this.flowsToDelete.add(a);
          this.flowRetryTimer = this.clock.setTimeout(
            () => {
              this.flowRetryTimer = null;
              this.deleteFlowsLater([]);
            },
            Math.max(200, this.opts.retryMs),
          );
          return;
        }
      }
    })().finally(() => {
      this.flowWorker = null;
      if (this.isIdle()) this.wakeIdle();
    });
  }

  private async applyFilterBatch(batch: EndpointState[]): Promise<void> {
    if (batch.length === 0 && (!this.filters.dirty || this.hostRetryPending)) return;
    const versions = new Map(batch.map((e) => [e, e.version]));
    const started = performance.now();
    // Changed or added while this apply runs: another apply follows at once.
    const moreWaiting = () => this.filters.dirty || [...this.filterDirty].some((e) => versions.get(e) !== e.version && this.filterActionable(e));
    try {
      await this.applyFilter(batch, moreWaiting);
      for (const e of batch) this.filterSucceeded(e, versions.get(e)!);
      this.hostBackoff.reset();
      if (batch.length) this.log.info({ endpoints: batch.length, ms: Math.round(performance.now() - started) }, 'chains and sets programmed');
    } catch (err) {
      // The managers re-read the kernel before the next try; the batch stays dirty.
      this.log.error({ err, endpoints: batch.length }, 'programming chains and sets failed; will retry');
      this.retryHostLater();
    }
    this.opts.onApplied?.('filter', (performance.now() - started) / 1000);
  }

  /** Stages `batch` and writes everything staged; an endpoint whose sets could not be made fails on its own. */
  private async applyFilter(batch: EndpointState[], moreWaiting?: () => boolean): Promise<void> {
    const started = performance.now();
    for (const e of batch) this.filters.stage(this.filterEndpoint(e));
    const staged = performance.now();
    const failed = await this.filters.apply(moreWaiting);
    this.log.debug({ endpoints: batch.length, stageMs: Math.round(staged - started), writeMs: Math.round(performance.now() - staged) }, 'filter apply timings');
    for (const [id, err] of failed) {
      const e = this.endpoints.get(id);
      if (e) this.fail(e, err, 'filter');
    }
  }

  private filterSucceeded(e: EndpointState, version: number): void {
    if (e.retryTimer !== null) return; // failed in this apply
    if (e.version === version) this.filterDirty.delete(e);
    e.filterProgrammed = true;
    if (e.filterError !== null) {
      e.filterError = null;
      e.backoff.reset();
      this.log.info({ endpoint: e.spec.id }, 'chains and sets programmed after earlier failure');
    }
  }

  /** Removals, host chains and cleanup have no endpoint to carry a retry: hold them until a timer fires. */
  private retryHostLater(): void {
    this.hostRetryPending = true;
    this.filters.dirty = true;
    if (this.hostRetryTimer !== null) return;
    const wait = this.hostBackoff.next();
    this.hostRetryTimer = this.clock.setTimeout(() => {
      this.hostRetryTimer = null;
      this.hostRetryPending = false;
      this.schedule();
    }, wait);
  }

  /** Fail closed: out of dispatch, its flows forgotten, retried with backoff. */
  private fail(e: EndpointState, err: unknown, kind: 'filter' | 'routes'): void {
    const what = kind === 'filter' ? 'programming chains and sets' : 'programming routes';
    const message = `${what} failed: ${(err as Error).message}`;
    if (kind === 'filter') {
      e.filterError = message;
      this.filters.unstage(e.spec.id);
      this.forgetFlows([...e.addrs[4], ...e.addrs[6]]);
    } else {
      e.routesError = message;
    }
    const wait = e.backoff.next();
    this.log.error({ err, endpoint: e.spec.id, retryMs: wait }, `${what} failed; endpoint left denied, will retry`);
    if (e.retryTimer !== null) this.clock.clearTimeout(e.retryTimer);
    e.retryTimer = this.clock.setTimeout(() => {
      e.retryTimer = null;
      if (kind === 'filter') this.filterDirty.add(e);
      else this.routesDirty.add(e);
      this.schedule();
    }, wait);
  }

  // ---- routes ----

  private async applyRoutes(work: EndpointState[]): Promise<void> {
    const owned = this.clearedInterfaces.size > 0 ? new Set([...this.endpoints.values()].map((e) => e.spec.ifname)) : new Set<string>();
    const cleared = [...this.clearedInterfaces]
      .filter((name) => !owned.has(name) && name.startsWith(this.opts.interfacePrefix))
      .flatMap((name) => this.links.get(name) ?? []);
    this.clearedInterfaces.clear();
    if (work.length === 0 && cleared.length === 0) return;
    const started = performance.now();
    const versions = new Map(work.map((e) => [e, e.version]));
    const failed = await this.routes.apply(
      work.map((e) => ({
        ep: { id: e.spec.id, ifname: e.spec.ifname, mac: e.spec.mac, addrs: e.addrs, enabled: e.spec.enabled },
        link: this.links.get(e.spec.ifname),
      })),
      cleared,
    );
    for (const e of work) {
      const err = failed.get(e.spec.id);
      if (err) {
        this.fail(e, err, 'routes');
        continue;
      }
      if (e.version === versions.get(e)) this.routesDirty.delete(e);
      e.routesProgrammed = true;
      e.routesError = null;
    }
    this.opts.onApplied?.('routes', (performance.now() - started) / 1000);
  }

  // ---- links ----

  private onLinkChange(name: string, before: LinkState | undefined): void {
    const link = this.links.get(name);
    // Down or gone, the kernel has flushed the interface's routes and neighbours.
    if (before && (!link || link.index !== before.index || !link.up)) this.routes.interfaceFlushed(before.index);
    if (!link) this.routes.forget(name);
    if (!this.started) return;
    for (const e of this.endpoints.values()) {
      if (e.spec.ifname !== name) continue;
      this.log.info({ endpoint: e.spec.id, interface: name, exists: link !== undefined, up: link?.up ?? false }, 'endpoint interface changed');
      e.version++;
      this.routesDirty.add(e);
    }
    this.schedule();
  }

  /** Fallback for missed link events: while some endpoint waits for its interface, ask for it every retryMs. */
  private async pollLinks(): Promise<void> {
    if (this.stopped) return;
    const waiting = [...this.endpoints.values()]
      .filter((e) => e.spec.enabled && (this.routesDirty.has(e) || !e.routesProgrammed) && !this.links.ready(e.spec.ifname))
      .map((e) => e.spec.ifname);
    if (waiting.length === 0) return;
    try {
      await this.links.refreshNames(waiting.slice(0, 64));
    } catch (err) {
      this.log.error({ err }, 'looking up links failed');
    }
  }

  /** Re-reads the kernel on the next apply and repairs what drifted (`chains: false`: only links, routes and neighbours). */
  private refresh({ chains = true } = {}): void {
    if (chains) this.filters.invalidate();
    this.routes.invalidate();
    void this.links.refresh().catch((err: unknown) => this.log.error({ err }, 'listing links failed'));
    for (const e of this.endpoints.values()) this.routesDirty.add(e);
    this.schedule();
  }

  // ---- cleanup after resync ----

  private async cleanup(): Promise<void> {
    this.cleanupRequested = false;
    try {
      this.routes.invalidate();
      const [chains] = await Promise.all([this.filters.stageCleanup(), this.links.refresh()]);
      const owned = new Set([...this.endpoints.values()].map((e) => e.spec.ifname));
      const staleLinks = this.links.all().filter((l) => l.name.startsWith(this.opts.interfacePrefix) && !owned.has(l.name));
      this.forgetFlows(await this.routes.routedTo(staleLinks));
      for (const l of staleLinks) this.clearedInterfaces.add(l.name);
      await this.applyFilter([]);
      this.log.info(
        { chains, setsAwaitingDestruction: this.filters.setsAwaitingDestruction, interfaces: staleLinks.map((l) => l.name) },
        'stale programming removed',
      );
    } catch (err) {
      this.log.error({ err }, 'cleanup of stale programming failed; will retry');
      this.cleanupRequested = true;
      this.retryHostLater();
    }
  }
}
