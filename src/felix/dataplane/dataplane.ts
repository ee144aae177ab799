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
import type { Logger } from 'pino';
import type { Acls } from '../../common/wire/acl-api.js';
import { isEndpointId, isIp, isMac } from '../../common/wire/codec.js';
import { EndpointAclRules, ProtocolNames, renderAclRules } from './render/acl.js';
import {
  EndpointToHostAction, HostOptions, IpSet, JUMPS, renderDhcpChain, renderEndpointFilter, renderHostChains, renderMetadataChain, renderRpfChain,
} from './render/chains.js';
import { DispatchTarget, DispatchTree } from './render/dispatch.js';
import { EndpointSpec, addrsOf } from './render/endpoint.js';
import {
  CHAIN_DHCP, CHAIN_FORWARD, CHAIN_FROM_ENDPOINT, CHAIN_INPUT, CHAIN_PREROUTING, CHAIN_RPF, CHAIN_TO_ENDPOINT, FAMILIES, Family,
  OWNED_PREFIX, chainName, endpointSuffix,
} from './render/names.js';
import { CommandRunner, execaRunner } from './drivers/commands.js';
import { Conntrack, ConntrackTool } from './drivers/conntrack.js';
import { IptablesDriver } from './drivers/iptables.js';
import { IpsetDriver } from './drivers/ipsets.js';
import { LinkState, Netlink, RtNetlink } from './drivers/netlink.js';
import { Sysctl, procSysctl } from './drivers/sysctl.js';
import { IptablesTables } from './tables.js';
import { IpsetManager } from './ipsets.js';
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
}

export interface Clock {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

const realClock: Clock = {
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
  setInterval: (fn, ms) => setInterval(fn, ms).unref(),
  clearInterval: (h) => clearInterval(h as NodeJS.Timeout),
};

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
  /** Rendered ACLs; null until the first setAcls (deny all). */
  rules: EndpointAclRules | null;
  /** Bumped by every change, so a change made while an apply runs is not lost when that apply completes. */
  version: number;
  /** The sets its chains reference, per family (released when they change). */
  held: Record<Family, string[]>;
  /** Chains a previous Felix left, kept (with their sets) until this endpoint's ACLs arrive. */
  left: Record<Family, boolean>;
  filterProgrammed: boolean;
  routesProgrammed: boolean;
  filterError: string | null;
  routesError: string | null;
  backoffMs: number;
  retryTimer: unknown;
}

/** Interface names go into iptables-restore text and /proc paths: Linux's 15 characters, no specials. */
const IFNAME_RE = /^[A-Za-z0-9_.-]{1,15}$/;

/** See the file comment. */
export class Dataplane {
  private readonly log: Logger;
  private readonly tables: Record<Family, IptablesTables>;
  private readonly sets: IpsetManager;
  private readonly trees: Record<Family, DispatchTree>;
  private readonly links: LinkTracker;
  private readonly routes: RouteManager;
  private readonly conntrack: Conntrack;
  private readonly netlink: Netlink;
  private readonly sysctl: Sysctl;
  private readonly clock: Clock;
  private readonly maxBackoffMs: number;

  private readonly endpoints = new Map<string, EndpointState>();
  private readonly filterDirty = new Set<EndpointState>();
  private readonly routesDirty = new Set<EndpointState>();
  /** Interfaces whose routes and neighbours must go (their endpoint went or moved). */
  private readonly clearedInterfaces = new Set<string>();
  /** Addresses whose flows must be forgotten once the current apply has committed. */
  private readonly conntrackPending = new Set<string>();
  /** Suffixes whose chains a previous run left: kept for their endpoint until its ACLs arrive. */
  private readonly foundAtStart: Record<Family, Set<string>> = { 4: new Set(), 6: new Set() };
  /** The managers hold changes no endpoint carries (removals, dispatch, refresh). */
  private hostDirty = false;
  private cleanupRequested = false;
  /** A host-level apply failed: wait for a timer instead of spinning the loop. */
  private hostRetryPending = false;
  private hostRetryTimer: unknown = null;
  private hostBackoffMs = 0;

  private started = false;
  private stopped = false;
  private loopRunning = false;
  private loopScheduled = false;
  private idleWaiters: (() => void)[] = [];
  private timers: unknown[] = [];

  constructor(private readonly opts: DataplaneOptions) {
    this.log = opts.log.child({ component: 'dataplane' });
    const runner = opts.commands ?? execaRunner;
    this.tables = { 4: new IptablesTables(new IptablesDriver(runner, 4)), 6: new IptablesTables(new IptablesDriver(runner, 6)) };
    this.sets = new IpsetManager(new IpsetDriver(runner));
    this.trees = { 4: new DispatchTree(opts.interfacePrefix), 6: new DispatchTree(opts.interfacePrefix) };
    this.netlink = opts.netlink ?? new RtNetlink();
    this.sysctl = opts.sysctl ?? procSysctl;
    this.conntrack = opts.conntrack ?? new ConntrackTool(runner);
    this.clock = opts.clock ?? realClock;
    this.maxBackoffMs = opts.maxBackoffMs ?? 30000;
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
    await this.links.start();
    await Promise.all([this.tables[4].read(), this.tables[6].read(), this.sets.read()]);
    for (const family of FAMILIES) this.retainDispatch(family);
    this.stageHost();
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
        this.unstage(known);
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
      if (known.spec.ifname !== spec.ifname) {
        this.unstage(known);
        this.clearedInterfaces.add(known.spec.ifname);
      }
      const keeps = new Set(spec.enabled ? [...addrs[4], ...addrs[6]] : []);
      this.forgetFlows([...known.addrs[4], ...known.addrs[6]].filter((a) => !keeps.has(a)));
      known.spec = { ...spec, addrs: [...spec.addrs] };
      known.addrs = addrs;
      if (known.filterError !== null && known.retryTimer === null) known.filterError = null;
      known.version++;
      this.markDirty(known);
    } else {
      const e: EndpointState = {
        spec: { ...spec, addrs: [...spec.addrs] }, suffix: endpointSuffix(spec.id), addrs, rules: null, version: 0,
        held: { 4: [], 6: [] }, left: { 4: false, 6: false }, filterProgrammed: false, routesProgrammed: false,
        filterError: null, routesError: null, backoffMs: 0, retryTimer: null,
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
    const rules = renderAclRules(acls, this.opts.protocols);
    for (const r of rules.invalid)
      this.log.warn({ endpoint: id, family: r.family, direction: r.direction, index: r.index, rule: r.rule, reason: r.reason }, 'invalid ACL rule skipped');
    e.rules = rules;
    e.version++;
    this.filterDirty.add(e);
    this.schedule();
  }

  removeEndpoint(id: string): void {
    const e = this.endpoints.get(id);
    if (!e) return;
    if (e.retryTimer !== null) this.clock.clearTimeout(e.retryTimer);
    this.endpoints.delete(id);
    this.filterDirty.delete(e);
    this.routesDirty.delete(e);
    this.unstage(e);
    this.forgetFlows([...e.addrs[4], ...e.addrs[6]]);
    this.clearedInterfaces.add(e.spec.ifname);
    this.routes.forget(e.spec.ifname);
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

  /** Resolves once nothing is dirty and no apply runs (endpoints waiting for an interface or a retry do not count). */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) this.clock.clearInterval(t);
    if (this.hostRetryTimer !== null) this.clock.clearTimeout(this.hostRetryTimer);
    for (const e of this.endpoints.values()) if (e.retryTimer !== null) this.clock.clearTimeout(e.retryTimer);
    while (this.loopRunning) await new Promise((r) => setTimeout(r, 10));
    this.netlink.close();
    for (const w of this.idleWaiters.splice(0)) w();
  }

  // ---- desired state → managers ----

  private specProblem(spec: EndpointSpec): string | null {
    if (!isEndpointId(spec.id)) return `bad endpoint id ${JSON.stringify(spec.id)}`;
    if (!IFNAME_RE.test(spec.ifname) || !spec.ifname.startsWith(this.opts.interfacePrefix)) return `bad interface name ${JSON.stringify(spec.ifname)}`;
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

  private targets(e: EndpointState): DispatchTarget {
    return { from: chainName('from', e.suffix), to: chainName('to', e.suffix) };
  }

  /** Hands one endpoint's chains, sets and dispatch entries (per family) to the managers. */
  private stage(e: EndpointState): void {
    for (const family of FAMILIES) {
      const addrs = e.addrs[family];
      if (addrs.length === 0) {
        this.unstageFamily(e, family);
        continue;
      }
      const tables = this.tables[family];
      const to = chainName('to', e.suffix);
      const from = chainName('from', e.suffix);
      if (e.rules === null && e.spec.enabled && (e.left[family] || this.foundAtStart[family].has(e.suffix))) {
        // What a previous run programmed keeps flowing until this endpoint's ACLs arrive.
        tables.leaveChain('filter', to);
        tables.leaveChain('filter', from);
        e.left[family] = true;
      } else {
        const filter = renderEndpointFilter({ suffix: e.suffix, mac: e.spec.mac, addrs }, family, e.spec.enabled && e.rules ? e.rules[family] : null);
        this.hold(e, family, filter.sets);
        for (const chain of filter.chains) tables.setChain('filter', chain);
        e.left[family] = false;
      }
      this.foundAtStart[family].delete(e.suffix);
      this.trees[family].set(e.spec.ifname, this.targets(e));
    }
    this.hostDirty = true;
  }

  /** Takes the endpoint out of dispatch and removes its chains, in every family. */
  private unstage(e: EndpointState): void {
    for (const family of FAMILIES) this.unstageFamily(e, family);
    this.hostDirty = true;
  }

  private unstageFamily(e: EndpointState, family: Family): void {
    this.foundAtStart[family].delete(e.suffix);
    this.trees[family].set(e.spec.ifname, null);
    this.tables[family].removeChain('filter', chainName('to', e.suffix));
    this.tables[family].removeChain('filter', chainName('from', e.suffix));
    this.hold(e, family, []);
    e.left[family] = false;
  }

  /** Acquires the sets the endpoint's chains now reference, then releases the ones they no longer do. */
  private hold(e: EndpointState, family: Family, sets: IpSet[]): void {
    const byName = new Map(sets.map((s) => [s.name, s]));
    for (const [name, s] of byName) if (!e.held[family].includes(name)) this.sets.acquire(s);
    for (const name of e.held[family]) if (!byName.has(name)) this.sets.release(name);
    e.held[family] = [...byName.keys()];
  }

  /** Host-wide chains and jumps of both families. */
  private stageHost(): void {
    const o: HostOptions = { interfacePrefix: this.opts.interfacePrefix, metadata: this.opts.metadata, endpointToHost: this.opts.endpointToHost ?? 'DROP' };
    for (const family of FAMILIES) {
      const tables = this.tables[family];
      for (const chain of renderHostChains(family, o)) tables.setChain('filter', chain);
      tables.setChain('filter', renderDhcpChain(family));
      tables.setChain('raw', renderRpfChain(this.opts.interfacePrefix));
      for (const [name, rules] of this.trees[family].chains()) tables.setChain('filter', { name, rules });
      tables.setJump(JUMPS.forward, true);
      tables.setJump(JUMPS.input, true);
      tables.setJump(JUMPS.rpf, true);
    }
    const nat = this.tables[4];
    if (this.opts.metadata) nat.setChain('nat', renderMetadataChain(this.opts.metadata));
    else nat.removeChain('nat', CHAIN_PREROUTING);
    nat.setJump(JUMPS.metadata, this.opts.metadata !== null);
    this.hostDirty = true;
  }

  /** Dispatch entries found at start: kept (for interfaces nobody claims yet) until the first cleanup. */
  private retainDispatch(family: Family): void {
    const found = new Map<string, Partial<DispatchTarget>>();
    const chains = this.tables[family].kernelChains('filter');
    for (const name of chains.keys()) {
      const suffix = /^felix-to-(.+)$/.exec(name)?.[1];
      if (suffix !== undefined && chains.has(chainName('from', suffix))) this.foundAtStart[family].add(suffix);
    }
    for (const [name, rules] of chains) {
      if (!isDispatchChain(name)) continue;
      for (const rule of rules) {
        const leaf = DispatchTree.parseLeafRule(rule);
        if (leaf) found.set(leaf.ifname, { ...found.get(leaf.ifname), [leaf.direction]: leaf.target });
      }
    }
    for (const [ifname, t] of found) {
      if (!ifname.startsWith(this.opts.interfacePrefix) || !t.from || !t.to) continue;
      this.trees[family].set(ifname, { from: t.from, to: t.to });
    }
  }

  private flushDispatch(): void {
    for (const family of FAMILIES)
      for (const [name, rules] of this.trees[family].flush()) {
        if (rules) this.tables[family].setChain('filter', { name, rules });
        else this.tables[family].removeChain('filter', name);
      }
  }

  // ---- the apply loop ----

  private isIdle(): boolean {
    return !this.loopRunning && !this.loopScheduled && !this.hasWork();
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
      if (this.hostDirty || this.cleanupRequested || this.conntrackPending.size > 0) return true;
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
        await this.applyOnce();
        if (this.cleanupRequested && !this.hostRetryPending && ![...this.filterDirty].some((e) => this.filterActionable(e))) await this.cleanup();
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

  /** Chains and sets, and routes alongside (a route without chains meets the dispatch DROP); then conntrack. */
  private async applyOnce(): Promise<void> {
    const batch = this.hostRetryPending ? [] : [...this.filterDirty].filter((e) => this.filterActionable(e));
    const routeWork = [...this.routesDirty].filter((e) => this.routesActionable(e));
    await Promise.all([this.applyFilterBatch(batch), this.applyRoutes(routeWork)]);
    if (this.conntrackPending.size > 0 && !this.hostRetryPending) {
      const addrs = [...this.conntrackPending];
      this.conntrackPending.clear();
      try {
        await this.conntrack.deleteFlows(addrs);
        this.log.info({ addrs: addrs.length }, 'flows of addresses that lost their permission deleted');
      } catch (err) {
        this.log.error({ err }, 'deleting conntrack entries failed; will retry');
        for (const a of addrs) this.conntrackPending.add(a);
        this.retryHostLater();
      }
    }
  }

  private async applyFilterBatch(batch: EndpointState[]): Promise<void> {
    if (batch.length === 0 && (!this.hostDirty || this.hostRetryPending)) return;
    const versions = new Map(batch.map((e) => [e, e.version]));
    const started = performance.now();
    try {
      await this.applyFilter(batch);
      for (const e of batch) this.filterSucceeded(e, versions.get(e)!);
      this.hostBackoffMs = 0;
      if (batch.length) this.log.info({ endpoints: batch.length, ms: Math.round(performance.now() - started) }, 'chains and sets programmed');
    } catch (err) {
      // The managers re-read the kernel before the next try; the batch stays dirty.
      this.log.error({ err, endpoints: batch.length }, 'programming chains and sets failed; will retry');
      this.retryHostLater();
    }
    this.opts.onApplied?.('filter', (performance.now() - started) / 1000);
  }

  /**
   * Stages `batch`, then: sets → chains (one restore per family) → unused
   * sets. An endpoint whose sets cannot be made is failed on its own (taken
   * out of dispatch) and the rest goes on.
   */
  private async applyFilter(batch: EndpointState[]): Promise<void> {
    const t0 = performance.now();
    for (const e of batch) this.stage(e);
    this.flushDispatch();
    const t1 = performance.now();
    const failedSets = await this.sets.applyCreates();
    const t2 = performance.now();
    if (failedSets.size > 0) {
      for (const e of this.endpoints.values()) {
        const failed = FAMILIES.flatMap((f) => e.held[f]).find((name) => failedSets.has(name));
        if (failed !== undefined) this.fail(e, new Error(`set ${failed}: ${failedSets.get(failed)}`), 'filter');
      }
      this.flushDispatch();
    }
    this.hostDirty = false;
    await Promise.all(FAMILIES.map((f) => this.tables[f].apply()));
    const t3 = performance.now();
    await this.sets.applyDeletes((name) => this.tables[4].isSetReferenced(name) || this.tables[6].isSetReferenced(name));
    const ms = (a: number, b: number): number => Math.round(b - a);
    this.log.debug({ endpoints: batch.length, renderMs: ms(t0, t1), setsMs: ms(t1, t2), chainsMs: ms(t2, t3), destroyMs: ms(t3, performance.now()) }, 'filter apply timings');
  }

  private filterSucceeded(e: EndpointState, version: number): void {
    if (e.retryTimer !== null) return; // failed in this apply
    if (e.version === version) this.filterDirty.delete(e);
    e.filterProgrammed = true;
    if (e.filterError !== null) {
      e.filterError = null;
      e.backoffMs = 0;
      this.log.info({ endpoint: e.spec.id }, 'chains and sets programmed after earlier failure');
    }
  }

  /** Removals, host chains and cleanup have no endpoint to carry a retry: hold them until a timer fires. */
  private retryHostLater(): void {
    this.hostRetryPending = true;
    this.hostDirty = true;
    if (this.hostRetryTimer !== null) return;
    this.hostBackoffMs = Math.min(this.hostBackoffMs ? this.hostBackoffMs * 2 : Math.max(200, this.opts.retryMs), this.maxBackoffMs);
    this.hostRetryTimer = this.clock.setTimeout(() => {
      this.hostRetryTimer = null;
      this.hostRetryPending = false;
      this.schedule();
    }, this.hostBackoffMs);
  }

  /** Fail closed: out of dispatch, its flows forgotten, retried with backoff. */
  private fail(e: EndpointState, err: unknown, kind: 'filter' | 'routes'): void {
    const what = kind === 'filter' ? 'programming chains and sets' : 'programming routes';
    const message = `${what} failed: ${(err as Error).message}`;
    if (kind === 'filter') {
      e.filterError = message;
      this.unstage(e);
      this.forgetFlows([...e.addrs[4], ...e.addrs[6]]);
    } else {
      e.routesError = message;
    }
    e.backoffMs = Math.min(e.backoffMs ? e.backoffMs * 2 : Math.max(50, this.opts.retryMs), this.maxBackoffMs);
    this.log.error({ err, endpoint: e.spec.id, retryMs: e.backoffMs }, `${what} failed; endpoint left denied, will retry`);
    if (e.retryTimer !== null) this.clock.clearTimeout(e.retryTimer);
    e.retryTimer = this.clock.setTimeout(() => {
      e.retryTimer = null;
      if (kind === 'filter') this.filterDirty.add(e);
      else this.routesDirty.add(e);
      this.schedule();
    }, e.backoffMs);
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
    const failed = await this.routes.apply(work.map((e) => ({ ep: { id: e.spec.id, ifname: e.spec.ifname, mac: e.spec.mac, addrs: e.addrs, enabled: e.spec.enabled }, link: this.links.get(e.spec.ifname) })), cleared);
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

  /** Re-reads the kernel on the next apply and repairs what drifted. */
  private refresh(): void {
    for (const family of FAMILIES) this.tables[family].invalidate();
    this.sets.invalidate();
    this.routes.invalidate();
    void this.links.refresh().catch((err: Error) => this.log.error({ err }, 'listing links failed'));
    for (const e of this.endpoints.values()) this.routesDirty.add(e);
    this.hostDirty = true;
    this.schedule();
  }

  // ---- cleanup after resync ----

  private async cleanup(): Promise<void> {
    this.cleanupRequested = false;
    try {
      for (const family of FAMILIES) this.tables[family].invalidate();
      this.sets.invalidate();
      this.routes.invalidate();
      await Promise.all([this.tables[4].read(), this.tables[6].read(), this.sets.read(), this.links.refresh()]);
      const known = [...this.endpoints.values()];
      const ownedIfs = new Set(known.map((e) => e.spec.ifname));
      let chains = 0;
      for (const family of FAMILIES) {
        const tree = this.trees[family];
        for (const ifname of tree.interfaces()) if (!ownedIfs.has(ifname)) tree.set(ifname, null);
        const keep = new Set(known.filter((e) => e.addrs[family].length > 0).flatMap((e) => [chainName('to', e.suffix), chainName('from', e.suffix)]));
        const wanted = new Set(tree.chains().keys());
        for (const name of this.tables[family].kernelChains('filter').keys()) {
          if (!name.startsWith(OWNED_PREFIX) || keep.has(name) || wanted.has(name) || HOST_CHAINS.has(name)) continue;
          this.tables[family].removeChain('filter', name);
          chains++;
        }
      }
      const staleLinks = this.links.all().filter((l) => l.name.startsWith(this.opts.interfacePrefix) && !ownedIfs.has(l.name));
      this.forgetFlows(await this.routes.routedTo(staleLinks));
      for (const l of staleLinks) this.clearedInterfaces.add(l.name);
      this.flushDispatch();
      await this.applyFilter([]);
      this.log.info({ chains, sets: this.sets.destroyPending, interfaces: staleLinks.map((l) => l.name) }, 'stale programming removed');
    } catch (err) {
      this.log.error({ err }, 'cleanup of stale programming failed; will retry');
      this.cleanupRequested = true;
      this.retryHostLater();
    }
  }
}

const HOST_CHAINS = new Set([CHAIN_DHCP, CHAIN_FORWARD, CHAIN_INPUT, CHAIN_FROM_ENDPOINT, CHAIN_TO_ENDPOINT, CHAIN_PREROUTING, CHAIN_RPF]);

/** The chains that hold dispatch rules: the two roots and the tree's children. */
function isDispatchChain(name: string): boolean {
  return name === CHAIN_FROM_ENDPOINT || name === CHAIN_TO_ENDPOINT || name.startsWith('felix-FROM-IF-') || name.startsWith('felix-TO-IF-');
}
