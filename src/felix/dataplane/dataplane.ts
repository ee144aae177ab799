/**
 * The Felix dataplane: desired state per endpoint in, kernel state out.
 *
 * Updates (upsertEndpoint, setAcls, removeEndpoint) only record desired state
 * and mark the endpoint dirty; one apply loop takes every dirty endpoint and
 * programs them together: one `ipset restore` (creates and content swaps),
 * one `iptables-restore` per family, one more `ipset restore` only if sets
 * must be destroyed; alongside, routes, neighbours and sysctls over rtnetlink
 * (one route and one neighbour dump per apply). Chains and set names are
 * read in bulk (iptables-save, ipset list -t) at start, after any failure,
 * on cleanup and every `refreshMs`, and cached in between: an apply with
 * nothing changed runs no command at all. Set contents are known from what
 * Felix wrote (always whole, by swap); sets found at start are rewritten once.
 *
 * Fail closed: an endpoint whose programming fails is taken out of the
 * dispatch chains (its traffic meets their final DROP) and retried with
 * backoff. Not for use outside the network namespace Felix is meant to own.
 */
import type { Logger } from 'pino';
import type { Acls } from '../../common/wire/acl-api.js';
import { isEndpointId, isIp, isMac } from '../../common/wire/codec.js';
import type { AclSetMembers } from './render/acl.js';
import {
  Chain, Jump, dispatchInterface, dispatchRules, hostJumps, metadataJump, renderDispatchChains,
  renderHostChains, renderMetadataChain,
} from './render/chains.js';
import { EndpointSpec, FamilyProgram, aclMembers, addrsOf, renderEndpointFilter } from './render/endpoint.js';
import {
  CHAIN_FROM_ENDPOINT, CHAIN_PREROUTING, CHAIN_TO_ENDPOINT, FAMILIES, Family, HOST_CHAINS, OWNED_PREFIX,
  chainName, endpointSetNames, endpointSuffix, isTempSet,
} from './render/names.js';
import type { IptablesState, IpsetChanges, TableChanges } from './render/restore.js';
import { CommandRunner, execaRunner } from './drivers/commands.js';
import { IptablesDriver } from './drivers/iptables.js';
import { IpsetDriver } from './drivers/ipsets.js';
import { HostRoute, LinkEvent, LinkState, NeighbourEntry, Netlink, RtNetlink } from './drivers/netlink.js';
import { Sysctl, procSysctl } from './drivers/sysctl.js';

export interface DataplaneOptions {
  log: Logger;
  /** Endpoint interfaces start with this ('tap'); only routes to such interfaces are ever touched. */
  interfacePrefix: string;
  metadata: { addr: string; port: number } | null;
  /** EndpointRetryTimeMillis: how often to look for missing interfaces; also the first retry backoff. */
  retryMs: number;
  commands?: CommandRunner;
  netlink?: Netlink;
  sysctl?: Sysctl;
  /** Longest wait between retries of a failing endpoint (default 30 s). */
  maxBackoffMs?: number;
  /** Told how long each apply of chains and sets, or of routes, took (for a histogram). */
  onApplied?: (part: 'filter' | 'routes', seconds: number) => void;
  /**
   * How often to re-read the kernel and repair drift (chains, set existence,
   * routes, neighbours); default 90 s, 0 = never. Set contents are trusted
   * from the cache: they are only ever replaced whole by Felix.
   */
  refreshMs?: number;
}

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
  /** The spec's addresses per family, canonical (parsed once per upsert, not per apply). */
  addrs: Record<Family, string[]>;
  /** Set members from the last ACLs; null until the first setAcls (deny all). */
  members: Record<Family, AclSetMembers> | null;
  filterDirty: boolean;
  routesDirty: boolean;
  /** Bumped by every change, so a change made while an apply runs is not lost when that apply completes. */
  version: number;
  /** Its chains and sets exist (as of some earlier apply). */
  filterProgrammed: boolean;
  routesProgrammed: boolean;
  /** The ifindex whose sysctls were set, so an interface re-created gets them again. */
  sysctlIfindex: number | null;
  /** Chains/sets failed: the endpoint is out of dispatch (denied) until a retry succeeds. */
  filterError: string | null;
  routesError: string | null;
  backoffMs: number;
  retryTimer: NodeJS.Timeout | null;
}

interface CachedSet {
  type: string;
  family: Family;
  /** null: exists, contents unknown (found at start): replaced once the endpoint's ACLs are known, or it is disabled. */
  members: string[] | null;
}

type DispatchMap = { from: Map<string, string>; to: Map<string, string> };

const CONCURRENCY = 64;
/** Interface names go into iptables-restore text and /proc paths: Linux's 15 characters, no specials. */
const IFNAME_RE = /^[A-Za-z0-9_.-]{1,15}$/;

/** Why a spec cannot be programmed, or null. */
function specProblem(spec: EndpointSpec): string | null {
  if (!isEndpointId(spec.id)) return `bad endpoint id ${JSON.stringify(spec.id)}`;
  if (!IFNAME_RE.test(spec.ifname)) return `bad interface name ${JSON.stringify(spec.ifname)}`;
  if (!isMac(spec.mac)) return `bad mac ${JSON.stringify(spec.mac)}`;
  const bad = spec.addrs.find((a) => !isIp(a));
  return bad === undefined ? null : `bad address ${JSON.stringify(bad)}`;
}
const sameList = (a: readonly string[] | undefined, b: readonly string[]): boolean =>
  a !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);

/** Runs `fn` over `items`, at most `limit` at a time. */
async function forEachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** See the file comment. */
export class Dataplane {
  private readonly log: Logger;
  private readonly iptables: Record<Family, IptablesDriver>;
  private readonly ipsets: IpsetDriver;
  private readonly netlink: Netlink;
  private readonly sysctl: Sysctl;
  private readonly maxBackoffMs: number;

  private readonly endpoints = new Map<string, EndpointState>();
  /** Suffixes whose chains and sets must go. */
  private readonly removedSuffixes = new Set<string>();
  /** Interfaces whose routes and neighbours must go. */
  private readonly removedInterfaces = new Set<string>();
  private cleanupRequested = false;
  /** Removals, host chains or cleanup failed: they wait for a timer instead of spinning the loop. */
  private hostRetryPending = false;
  /** Dispatch must be recomputed though no endpoint is dirty (an endpoint turned invalid). */
  private dispatchDirty = false;

  private tables: Record<Family, IptablesState | null> = { 4: null, 6: null };
  /** Re-read chains and set names before the next apply, keeping the known contents of sets that still exist. */
  private staleCache = false;
  private sets: Map<string, CachedSet> | null = null;
  private links = new Map<string, LinkState>();
  /** Dispatch entries found at start for interfaces not (yet) known: kept until cleanupStale, so a restart cuts no traffic. */
  private retained: Record<Family, DispatchMap> = { 4: { from: new Map(), to: new Map() }, 6: { from: new Map(), to: new Map() } };

  private started = false;
  private stopped = false;
  private loopRunning = false;
  private loopScheduled = false;
  private idleWaiters: (() => void)[] = [];
  private pollTimer: NodeJS.Timeout | null = null;
  private cleanupTimer: NodeJS.Timeout | null = null;
  private refreshTimer: NodeJS.Timeout | null = null;

  constructor(private readonly opts: DataplaneOptions) {
    this.log = opts.log.child({ component: 'dataplane' });
    const runner = opts.commands ?? execaRunner;
    this.iptables = { 4: new IptablesDriver(runner, 4), 6: new IptablesDriver(runner, 6) };
    this.ipsets = new IpsetDriver(runner);
    this.netlink = opts.netlink ?? new RtNetlink();
    this.sysctl = opts.sysctl ?? procSysctl;
    this.maxBackoffMs = opts.maxBackoffMs ?? 30000;
  }

  /** Forwarding on, host-wide chains and jumps in place, link events followed. Never flushes anything. */
  async start(): Promise<void> {
    await this.sysctl.ensure('net/ipv4/ip_forward', '1');
    await this.sysctl.ensure('net/ipv6/conf/all/forwarding', '1');
    this.netlink.onLinkEvent((e) => this.onLinkEvent(e));
    this.links = new Map((await this.netlink.links()).map((l) => [l.name, l]));
    await this.readKernelState();
    for (const family of FAMILIES) this.retained[family] = this.dispatchInKernel(family);
    await this.applyFilter([]);
    this.started = true;
    this.pollTimer = setInterval(() => void this.pollLinks(), this.opts.retryMs);
    this.pollTimer.unref();
    const refreshMs = this.opts.refreshMs ?? 90000;
    if (refreshMs > 0) {
      this.refreshTimer = setInterval(() => this.refresh(), refreshMs);
      this.refreshTimer.unref();
    }
    this.log.info({ interfacePrefix: this.opts.interfacePrefix, metadata: this.opts.metadata }, 'dataplane started');
    this.schedule();
  }

  /** Records the endpoint's desired state; a spec that cannot be programmed leaves the endpoint denied, with the reason in status(). */
  upsertEndpoint(spec: EndpointSpec): void {
    const problem = specProblem(spec);
    if (problem !== null) {
      this.log.error({ endpoint: spec.id, problem }, 'endpoint cannot be programmed; left denied');
      const known = this.endpoints.get(spec.id);
      if (known) {
        known.filterError = problem;
        known.filterDirty = false;
        known.routesDirty = false;
        known.version++;
        this.dispatchDirty = true;
        this.schedule();
      }
      return;
    }
    const known = this.endpoints.get(spec.id);
    if (known) {
      if (known.spec.ifname !== spec.ifname) this.removedInterfaces.add(known.spec.ifname);
      known.spec = { ...spec, addrs: [...spec.addrs] };
      known.addrs = { 4: addrsOf(spec, 4), 6: addrsOf(spec, 6) };
      known.filterError = null;
      known.filterDirty = true;
      known.routesDirty = true;
      known.version++;
    } else {
      const suffix = endpointSuffix(spec.id);
      this.removedSuffixes.delete(suffix);
      this.endpoints.set(spec.id, {
        spec: { ...spec, addrs: [...spec.addrs] }, suffix, addrs: { 4: addrsOf(spec, 4), 6: addrsOf(spec, 6) }, members: null, filterDirty: true, routesDirty: true, version: 0,
        filterProgrammed: false, routesProgrammed: false, sysctlIfindex: null, filterError: null, routesError: null, backoffMs: 0, retryTimer: null,
      });
    }
    this.removedInterfaces.delete(spec.ifname);
    this.schedule();
  }

  setAcls(id: string, acls: Acls): void {
    const e = this.endpoints.get(id);
    if (!e) return;
    const { members, invalid } = aclMembers(acls);
    for (const r of invalid)
      this.log.warn({ endpoint: id, family: r.family, direction: r.direction, index: r.index, rule: r.rule, reason: r.reason }, 'invalid ACL rule skipped');
    e.members = members;
    e.filterDirty = true;
    e.version++;
    this.schedule();
  }

  removeEndpoint(id: string): void {
    const e = this.endpoints.get(id);
    if (!e) return;
    if (e.retryTimer) clearTimeout(e.retryTimer);
    this.endpoints.delete(id);
    this.removedSuffixes.add(e.suffix);
    this.removedInterfaces.add(e.spec.ifname);
    this.schedule();
  }

  /** After a completed resync: remove felix- chains and sets, and routes to prefix interfaces, that no known endpoint owns. */
  cleanupStale(): void {
    this.cleanupRequested = true;
    this.schedule();
  }

  status(id: string): EndpointStatus | undefined {
    const e = this.endpoints.get(id);
    if (!e) return undefined;
    const error = e.filterError ?? e.routesError;
    const filterProgrammed = e.filterProgrammed && !e.filterDirty && e.filterError === null;
    const routesProgrammed = e.routesProgrammed && !e.routesDirty && e.routesError === null;
    return {
      programmed: filterProgrammed && routesProgrammed,
      routesProgrammed,
      filterProgrammed,
      interfaceUp: this.links.get(e.spec.ifname)?.up ?? false,
      ...(error !== null ? { error } : {}),
    };
  }

  /** Resolves once nothing is dirty and no apply runs (endpoints waiting for an interface or a retry do not count). */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.cleanupTimer) clearTimeout(this.cleanupTimer);
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    for (const e of this.endpoints.values()) if (e.retryTimer) clearTimeout(e.retryTimer);
    while (this.loopRunning) await new Promise((r) => setTimeout(r, 10));
    this.netlink.close();
    for (const w of this.idleWaiters.splice(0)) w();
  }

  // ---- the apply loop ----

  private isIdle(): boolean {
    return !this.loopRunning && !this.loopScheduled && !this.hasWork();
  }

  private linkReady(e: EndpointState): LinkState | null {
    const link = this.links.get(e.spec.ifname);
    return link && link.up ? link : null;
  }

  /** Route work can be done now: an enabled endpoint waits for its interface to exist and be up. */
  private routesActionable(e: EndpointState): boolean {
    return e.routesDirty && (e.routesError === null || e.retryTimer === null) && (!e.spec.enabled || this.linkReady(e) !== null);
  }

  private filterActionable(e: EndpointState): boolean {
    // A retry timer holds back only the part that failed.
    return e.filterDirty && (e.filterError === null || e.retryTimer === null);
  }

  private hasWork(): boolean {
    if (!this.started || this.stopped) return false;
    if (this.removedInterfaces.size) return true;
    if (!this.hostRetryPending && (this.cleanupRequested || this.dispatchDirty || this.removedSuffixes.size)) return true;
    for (const e of this.endpoints.values()) {
      if (this.filterActionable(e) || this.routesActionable(e)) return true;
    }
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
        await this.applyOnce();
        if (this.cleanupRequested && !this.hostRetryPending && !this.hasDirtyEndpoints()) await this.cleanup();
      }
    } catch (err) {
      this.log.error({ err }, 'apply loop failed');
      this.retryHostLater();
    } finally {
      this.loopRunning = false;
      if (this.hasWork()) this.schedule();
      else if (this.isIdle()) for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  private hasDirtyEndpoints(): boolean {
    return [...this.endpoints.values()].some((e) => this.filterActionable(e));
  }

  /** Chains and sets, and routes alongside: neither needs the other (a route without chains meets the dispatch DROP). */
  private async applyOnce(): Promise<void> {
    await Promise.all([this.applyFilterBatch(), this.applyRoutes()]);
  }

  private async applyFilterBatch(): Promise<void> {
    const batch = [...this.endpoints.values()].filter((e) => this.filterActionable(e));
    const versions = new Map(batch.map((e) => [e, e.version]));
    const hostWork = (this.removedSuffixes.size > 0 || this.dispatchDirty) && !this.hostRetryPending;
    this.dispatchDirty = false;
    if (batch.length || hostWork) {
      const started = Date.now();
      try {
        await this.applyFilter(batch);
        for (const e of batch) this.filterSucceeded(e, versions.get(e)!);
        this.log.info({ endpoints: batch.length, ms: Date.now() - started }, 'chains and sets programmed');
      } catch (err) {
        this.log.error({ err, endpoints: batch.length }, 'programming chains and sets failed; retrying endpoint by endpoint');
        await this.isolateFailures(batch, versions);
      }
      this.opts.onApplied?.('filter', (Date.now() - started) / 1000);
    }
  }

  private filterSucceeded(e: EndpointState, version: number): void {
    if (e.version === version) e.filterDirty = false;
    e.filterProgrammed = true;
    if (e.filterError !== null) {
      e.filterError = null;
      e.backoffMs = 0;
      this.log.info({ endpoint: e.spec.id }, 'chains and sets programmed after earlier failure');
    }
  }

  /** A batch failed: re-read the kernel, then program each endpoint on its own so one bad endpoint holds up no other. */
  private async isolateFailures(batch: EndpointState[], versions: Map<EndpointState, number>): Promise<void> {
    this.invalidateCache();
    let failed = 0;
    for (const e of batch) {
      try {
        await this.applyFilter([e]);
        this.filterSucceeded(e, versions.get(e)!);
      } catch (err) {
        failed++;
        this.invalidateCache();
        this.fail(e, err, 'filter');
      }
    }
    if (failed === 0 && batch.length > 0) return;
    // Take failed endpoints out of dispatch (their traffic meets the DROP) and finish removals.
    try {
      await this.applyFilter([]);
    } catch (err) {
      this.log.error({ err }, 'host chains or removals failed; will retry');
      this.invalidateCache();
      this.retryHostLater();
    }
  }

  /** Removals, host chains and cleanup have no endpoint to carry a retry: hold them until a timer fires. */
  private retryHostLater(): void {
    this.hostRetryPending = true;
    if (this.cleanupTimer) return;
    this.cleanupTimer = setTimeout(() => {
      this.cleanupTimer = null;
      this.hostRetryPending = false;
      this.schedule();
    }, Math.max(1000, this.opts.retryMs));
    this.cleanupTimer.unref();
  }

  private fail(e: EndpointState, err: unknown, kind: 'filter' | 'routes'): void {
    const what = kind === 'filter' ? 'programming chains and sets' : 'programming routes';
    const message = `${what} failed: ${(err as Error).message}`;
    if (kind === 'filter') e.filterError = message;
    else e.routesError = message;
    e.backoffMs = Math.min(e.backoffMs ? e.backoffMs * 2 : Math.max(50, this.opts.retryMs), this.maxBackoffMs);
    this.log.error({ err, endpoint: e.spec.id, retryMs: e.backoffMs }, `${what} failed; endpoint left denied, will retry`);
    if (e.retryTimer) clearTimeout(e.retryTimer);
    e.retryTimer = setTimeout(() => {
      e.retryTimer = null;
      this.schedule();
    }, e.backoffMs);
    e.retryTimer.unref();
  }

  // ---- chains and sets ----

  /** Re-reads the kernel on the next apply and reconciles every endpoint against it. */
  private refresh(): void {
    this.staleCache = true;
    for (const e of this.endpoints.values()) {
      e.filterDirty = true;
      e.routesDirty = true;
      e.version++;
    }
    this.schedule();
  }

  private invalidateCache(): void {
    this.tables = { 4: null, 6: null };
    this.sets = null;
  }

  private async readKernelState(): Promise<void> {
    const [v4, v6, sets] = await Promise.all([this.iptables[4].read(), this.iptables[6].read(), this.ipsets.read()]);
    const known = this.staleCache ? this.sets : null;
    this.staleCache = false;
    this.tables = { 4: v4, 6: v6 };
    this.sets = new Map(
      [...sets]
        .filter(([name]) => name.startsWith(OWNED_PREFIX))
        .map(([name, h]) => {
          const before = known?.get(name);
          return [name, { ...h, members: before && before.type === h.type ? before.members : null }];
        }),
    );
  }

  private chainsOf(family: Family, table = 'filter'): Map<string, string[]> {
    return this.tables[family]?.get(table) ?? new Map();
  }

  private dispatchInKernel(family: Family): DispatchMap {
    const read = (chain: string): Map<string, string> => {
      const m = new Map<string, string>();
      for (const rule of this.chainsOf(family).get(chain) ?? []) {
        const ifname = dispatchInterface(rule);
        if (ifname !== null) m.set(ifname, rule);
      }
      return m;
    };
    return { from: read(CHAIN_FROM_ENDPOINT), to: read(CHAIN_TO_ENDPOINT) };
  }

  /** Dispatch entries: retained ones for interfaces no known endpoint owns, then every endpoint whose chains exist and that is not failing. */
  private desiredDispatch(family: Family, programming: Set<EndpointState>): Chain[] {
    const owned = new Set([...this.endpoints.values()].map((e) => e.spec.ifname));
    const from = new Map([...this.retained[family].from].filter(([ifname]) => !owned.has(ifname)));
    const to = new Map([...this.retained[family].to].filter(([ifname]) => !owned.has(ifname)));
    for (const e of this.endpoints.values()) {
      const included = programming.has(e) || (e.filterProgrammed && e.filterError === null);
      if (!included || e.addrs[family].length === 0) continue;
      const rules = dispatchRules(e.spec.ifname, e.suffix);
      from.set(e.spec.ifname, rules.from);
      to.set(e.spec.ifname, rules.to);
    }
    return renderDispatchChains(from, to);
  }

  private jumpChanges(existing: string[] | undefined, jump: Jump, wanted: boolean): { insert: Jump[]; remove: Jump[] } {
    const count = (existing ?? []).filter((r) => r === jump.rule).length;
    const target = wanted ? 1 : 0;
    return { insert: count < target ? [jump] : [], remove: Array.from({ length: Math.max(0, count - target) }, () => jump) };
  }

  /** Host-wide chains and jumps of one family, as changes against the cache. */
  private hostChanges(family: Family, filter: TableChanges): TableChanges | null {
    const chains = this.chainsOf(family);
    for (const chain of renderHostChains(this.opts.interfacePrefix))
      if (!sameList(chains.get(chain.name), chain.rules)) filter.write.push(chain);
    for (const jump of hostJumps()) {
      const c = this.jumpChanges(chains.get(jump.from), jump, true);
      filter.insertJumps.push(...c.insert);
      filter.deleteJumps.push(...c.remove);
    }
    if (family === 6) return null;
    const nat = this.chainsOf(4, 'nat');
    const changes: TableChanges = { table: 'nat', write: [], remove: [], insertJumps: [], deleteJumps: [] };
    const meta = this.opts.metadata;
    if (meta) {
      const chain = renderMetadataChain(meta);
      if (!sameList(nat.get(chain.name), chain.rules)) changes.write.push(chain);
    } else if (nat.has(CHAIN_PREROUTING)) {
      changes.remove.push(CHAIN_PREROUTING);
    }
    const c = this.jumpChanges(nat.get(metadataJump.from), metadataJump, meta !== null);
    changes.insertJumps.push(...c.insert);
    changes.deleteJumps.push(...c.remove);
    return changes;
  }

  /**
   * Reconciles chains and sets of `batch` (plus removed endpoints and the
   * host-wide chains) with the cached kernel state, in the order sets
   * created/filled → chains → sets destroyed.
   */
  private async applyFilter(batch: EndpointState[], extraRemovedChains: Record<Family, string[]> = { 4: [], 6: [] }, extraDestroyedSets: string[] = []): Promise<void> {
    if (this.staleCache || this.tables[4] === null || this.tables[6] === null || this.sets === null) await this.readKernelState();
    const sets = this.sets!;
    const setChanges: IpsetChanges = { create: [], replace: [], destroy: [] };
    const destroy: string[] = [...extraDestroyedSets];
    const filter: Record<Family, TableChanges> = {
      4: { table: 'filter', write: [], remove: [...extraRemovedChains[4]], insertJumps: [], deleteJumps: [] },
      6: { table: 'filter', write: [], remove: [...extraRemovedChains[6]], insertJumps: [], deleteJumps: [] },
    };
    const removeEndpointFamily = (family: Family, suffix: string): void => {
      for (const name of [chainName('to', suffix), chainName('from', suffix)])
        if (this.chainsOf(family).has(name)) filter[family].remove.push(name);
      for (const name of endpointSetNames(family, suffix)) if (sets.has(name)) destroy.push(name);
    };

    const programs = new Map<EndpointState, Map<Family, FamilyProgram>>();
    for (const e of batch) programs.set(e, renderEndpointFilter(e.spec, e.members));
    for (const [e, program] of programs) {
      for (const family of FAMILIES) {
        const p = program.get(family);
        if (!p) {
          removeEndpointFamily(family, e.suffix);
          continue;
        }
        const chains = this.chainsOf(family);
        for (const chain of p.chains) if (!sameList(chains.get(chain.name), chain.rules)) filter[family].write.push(chain);
        for (const set of p.sets) {
          const cached = sets.get(set.name);
          if (!cached || cached.type !== set.type) setChanges.create.push(set);
          // A set a previous run left (contents unknown) keeps its members until the endpoint's ACLs arrive: a restart cuts no new flow.
          else if (cached.members === null && e.members === null && e.spec.enabled) continue;
          else if (cached.members === null || !sameList(cached.members, set.members)) setChanges.replace.push(set);
        }
      }
    }
    const stillOwned = new Set([...this.endpoints.values()].map((e) => e.suffix));
    for (const suffix of this.removedSuffixes) if (!stillOwned.has(suffix)) for (const family of FAMILIES) removeEndpointFamily(family, suffix);

    const nat = this.hostChanges(4, filter[4]);
    this.hostChanges(6, filter[6]);
    const programming = new Set(programs.keys());
    for (const family of FAMILIES)
      for (const chain of this.desiredDispatch(family, programming))
        if (!sameList(this.chainsOf(family).get(chain.name), chain.rules)) filter[family].write.push(chain);

    const t0 = performance.now();
    // 1. sets the chains will refer to
    await this.ipsets.apply(setChanges);
    const t1 = performance.now();
    for (const s of [...setChanges.create, ...setChanges.replace]) sets.set(s.name, { type: s.type, family: s.family, members: s.members });
    // 2. chains, one restore per family
    await this.iptables[4].apply(nat ? [filter[4], nat] : [filter[4]]);
    this.updateTableCache(4, filter[4]);
    if (nat) this.updateTableCache(4, nat);
    await this.iptables[6].apply([filter[6]]);
    this.updateTableCache(6, filter[6]);
    const t2 = performance.now();
    // 3. sets no chain refers to any more
    if (destroy.length) {
      await this.ipsets.apply({ create: [], replace: [], destroy });
      for (const name of destroy) sets.delete(name);
    }
    for (const suffix of [...this.removedSuffixes]) if (!stillOwned.has(suffix)) this.removedSuffixes.delete(suffix);
    this.log.debug({ ipsetMs: Math.round(t1 - t0), iptablesMs: Math.round(t2 - t1), totalMs: Math.round(performance.now() - t0) }, 'filter apply timings');
  }

  private updateTableCache(family: Family, c: TableChanges): void {
    const state = this.tables[family]!;
    const table = state.get(c.table) ?? new Map<string, string[]>();
    state.set(c.table, table);
    for (const chain of c.write) table.set(chain.name, [...chain.rules]);
    for (const name of c.remove) table.delete(name);
    for (const j of c.deleteJumps) {
      const rules = table.get(j.from) ?? [];
      const i = rules.indexOf(j.rule);
      if (i >= 0) rules.splice(i, 1);
    }
    for (const j of c.insertJumps) table.set(j.from, [j.rule, ...(table.get(j.from) ?? [])]);
  }

  // ---- routes, neighbours, sysctls ----

  private async applyRoutes(): Promise<void> {
    const work = [...this.endpoints.values()].filter((e) => this.routesActionable(e));
    const gone = [...this.removedInterfaces];
    if (work.length === 0 && gone.length === 0) return;
    const started = performance.now();
    let routes: HostRoute[];
    let neighbours: NeighbourEntry[];
    try {
      [routes, neighbours] = await Promise.all([this.netlink.hostRoutes(), this.netlink.neighbours()]);
    } catch (err) {
      for (const e of work) this.fail(e, err, 'routes');
      return;
    }
    const routesByIf = groupBy(routes, (r) => r.ifindex);
    const neighByIf = groupBy(neighbours, (n) => n.ifindex);

    await forEachLimited(work, CONCURRENCY, async (e) => {
      const link = this.links.get(e.spec.ifname);
      const version = e.version;
      try {
        if (link) await this.reconcileRoutes(e, link, routesByIf.get(link.index) ?? [], neighByIf.get(link.index) ?? []);
        if (e.version === version) e.routesDirty = false;
        e.routesProgrammed = true;
        e.routesError = null;
      } catch (err) {
        this.fail(e, err, 'routes');
      }
    });

    this.log.debug({ endpoints: work.length, ms: Math.round(performance.now() - started) }, 'route apply timings');
    this.opts.onApplied?.('routes', (performance.now() - started) / 1000);
    const owned = new Set([...this.endpoints.values()].map((e) => e.spec.ifname));
    for (const ifname of gone) {
      this.removedInterfaces.delete(ifname);
      const link = this.links.get(ifname);
      if (!link || owned.has(ifname) || !ifname.startsWith(this.opts.interfacePrefix)) continue;
      try {
        await this.clearInterface(link.index, routesByIf.get(link.index) ?? [], neighByIf.get(link.index) ?? []);
        this.log.info({ interface: ifname }, 'routes of removed endpoint deleted');
      } catch (err) {
        this.log.error({ err, interface: ifname }, 'deleting routes of removed endpoint failed');
      }
    }
  }

  private async reconcileRoutes(e: EndpointState, link: LinkState, routes: HostRoute[], neighbours: NeighbourEntry[]): Promise<void> {
    const active = e.spec.enabled && link.up;
    const wanted = active ? FAMILIES.flatMap((family) => e.addrs[family].map((dst) => ({ family, dst }))) : [];
    const wantedRoutes = new Set(wanted.map((w) => w.dst));
    const wantedNeigh = new Set(active ? e.addrs[4] : []);
    if (e.sysctlIfindex !== link.index && link.up) {
      await this.sysctl.ensure(`net/ipv4/conf/${e.spec.ifname}/proxy_arp`, '1');
      await this.sysctl.ensure(`net/ipv4/conf/${e.spec.ifname}/route_localnet`, '1');
      // Answer the container's ARP at once instead of after the default 0.8 s proxy delay.
      await this.sysctl.ensure(`net/ipv4/neigh/${e.spec.ifname}/proxy_delay`, '0');
      e.sysctlIfindex = link.index;
    }
    let changes = 0;
    for (const r of routes) if (!wantedRoutes.has(r.dst)) (await this.netlink.deleteRoute(r), changes++);
    const present = new Set(routes.map((r) => r.dst));
    for (const { family, dst } of wanted) if (!present.has(dst)) (await this.netlink.addRoute({ family, dst, ifindex: link.index }), changes++);
    const mac = e.spec.mac.toLowerCase();
    for (const n of neighbours) if (!wantedNeigh.has(n.dst)) (await this.netlink.deleteNeighbour(n), changes++);
    const neighNow = new Map(neighbours.map((n) => [n.dst, n.mac]));
    for (const dst of wantedNeigh) if (neighNow.get(dst) !== mac) (await this.netlink.setNeighbour({ dst, ifindex: link.index, mac }), changes++);
    if (changes) this.log.info({ endpoint: e.spec.id, interface: e.spec.ifname, changes }, 'routes and neighbours programmed');
  }

  private async clearInterface(ifindex: number, routes: HostRoute[], neighbours: NeighbourEntry[]): Promise<void> {
    for (const r of routes) if (r.ifindex === ifindex) await this.netlink.deleteRoute(r);
    for (const n of neighbours) if (n.ifindex === ifindex) await this.netlink.deleteNeighbour(n);
  }

  // ---- links ----

  private onLinkEvent(ev: LinkEvent): void {
    const name = ev.kind === 'removed' ? ev.name : ev.link.name;
    if (ev.kind === 'removed') this.links.delete(name);
    else {
      const before = this.links.get(name);
      this.links.set(name, ev.link);
      if (before && before.index === ev.link.index && before.up === ev.link.up) return;
    }
    for (const e of this.endpoints.values()) {
      if (e.spec.ifname !== name) continue;
      this.log.info({ endpoint: e.spec.id, interface: name, event: ev.kind, up: ev.kind === 'removed' ? false : ev.link.up }, 'endpoint interface changed');
      e.routesDirty = true;
      e.version++;
      if (ev.kind === 'removed') e.sysctlIfindex = null;
    }
    this.schedule();
  }

  /** Fallback for missed link events: while some endpoint waits for its interface, look every retryMs. */
  private async pollLinks(): Promise<void> {
    const waiting = [...this.endpoints.values()].filter((e) => e.spec.enabled && (e.routesDirty || !e.routesProgrammed) && !this.linkReady(e));
    if (waiting.length === 0 || this.stopped) return;
    try {
      this.links = new Map((await this.netlink.links()).map((l) => [l.name, l]));
    } catch (err) {
      this.log.error({ err }, 'listing links failed');
      return;
    }
    for (const e of waiting) if (this.linkReady(e)) (e.routesDirty = true, e.version++);
    this.schedule();
  }

  // ---- cleanup after resync ----

  private async cleanup(): Promise<void> {
    this.cleanupRequested = false;
    try {
      this.invalidateCache();
      await this.readKernelState();
      this.retained = { 4: { from: new Map(), to: new Map() }, 6: { from: new Map(), to: new Map() } };
      const known = [...this.endpoints.values()];
      const ownedChains: Record<Family, Set<string>> = { 4: new Set(HOST_CHAINS), 6: new Set(HOST_CHAINS) };
      const ownedSets = new Set<string>();
      for (const e of known)
        for (const f of FAMILIES) {
          if (e.addrs[f].length === 0) continue;
          ownedChains[f].add(chainName('to', e.suffix)).add(chainName('from', e.suffix));
          for (const s of endpointSetNames(f, e.suffix)) ownedSets.add(s);
        }
      const stale = (f: Family): string[] => [...this.chainsOf(f).keys()].filter((c) => c.startsWith(OWNED_PREFIX) && !ownedChains[f].has(c));
      const staleChains = { 4: stale(4), 6: stale(6) };
      const staleSets = [...this.sets!.keys()].filter((s) => !ownedSets.has(s) || isTempSet(s));
      await this.applyFilter([], staleChains, staleSets);

      const links = await this.netlink.links();
      this.links = new Map(links.map((l) => [l.name, l]));
      const ownedIfs = new Set(known.map((e) => e.spec.ifname));
      const staleLinks = links.filter((l) => l.name.startsWith(this.opts.interfacePrefix) && !ownedIfs.has(l.name));
      if (staleLinks.length) {
        const [routes, neighbours] = await Promise.all([this.netlink.hostRoutes(), this.netlink.neighbours()]);
        for (const l of staleLinks) await this.clearInterface(l.index, routes, neighbours);
      }
      this.log.info({ chains: staleChains[4].length + staleChains[6].length, sets: staleSets.length, interfaces: staleLinks.map((l) => l.name) }, 'stale programming removed');
    } catch (err) {
      this.log.error({ err }, 'cleanup of stale programming failed; will retry');
      this.invalidateCache();
      this.cleanupRequested = true;
      this.retryHostLater();
    }
  }
}

function groupBy<T, K>(items: T[], key: (t: T) => K): Map<K, T[]> {
  const m = new Map<K, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = m.get(k);
    if (list) list.push(item);
    else m.set(k, [item]);
  }
  return m;
}

