/**
 * Endpoint filtering as the managers hold it (SPEC §6 v2): turns endpoints
 * (spec + latest ACLs) into chains, shared sets and dispatch entries, and
 * writes them in the order that never opens or cuts off an endpoint: sets
 * first, then one `iptables-restore` per family, then the sets no chain
 * references any more. Knows what a previous run left: its dispatch entries
 * stay until the first cleanup, and an endpoint's old chains (of either
 * version) until its own ACLs arrive.
 */
import type { Logger } from 'pino';
import type { Acls } from '../../common/wire/acl-api.js';
import { EndpointAclRules, ProtocolNames, renderAclRules } from './render/acl.js';
import {
  EndpointToHostAction,
  IpSet,
  JUMPS,
  renderDhcpChain,
  renderEndpointFilter,
  renderHostChains,
  renderMetadataChain,
  renderRpfChain,
} from './render/chains.js';
import { DispatchTarget, DispatchTree } from './render/dispatch.js';
import {
  CHAIN_DHCP,
  CHAIN_FORWARD,
  CHAIN_FROM_ENDPOINT,
  CHAIN_INPUT,
  CHAIN_PREROUTING,
  CHAIN_RPF,
  CHAIN_TO_ENDPOINT,
  FAMILIES,
  Family,
  OWNED_PREFIX,
  chainName,
} from './render/names.js';
import type { CountedRule } from './render/restore.js';
import type { CommandRunner } from './drivers/commands.js';
import { IptablesDriver } from './drivers/iptables.js';
import { IpsetDriver } from './drivers/ipsets.js';
import { IptablesTables } from './tables.js';
import { IpsetManager } from './ipsets.js';

/** What filtering needs to know of one endpoint. */
export interface FilterEndpoint {
  id: string;
  suffix: string;
  ifname: string;
  mac: string;
  addrs: Record<Family, string[]>;
  enabled: boolean;
  /** The latest ACLs; null until the first arrive (deny all). */
  acls: Acls | null;
}

export interface FilterOptions {
  log: Logger;
  runner: CommandRunner;
  interfacePrefix: string;
  metadata: { addr: string; port: number } | null;
  endpointToHost: EndpointToHostAction;
  protocols?: ProtocolNames;
}

/** What is staged for one endpoint. */
interface Staged {
  ifname: string;
  suffix: string;
  /** The sets its chains reference, per family (released when they change). */
  held: Record<Family, string[]>;
  /** Chains a previous run left, kept (with their sets) until the ACLs arrive. */
  left: Record<Family, boolean>;
}

const HOST_CHAINS = new Set([CHAIN_DHCP, CHAIN_FORWARD, CHAIN_INPUT, CHAIN_FROM_ENDPOINT, CHAIN_TO_ENDPOINT, CHAIN_PREROUTING, CHAIN_RPF]);

/** The chains that hold dispatch rules: the two roots and the tree's children. */
const isDispatchChain = (name: string): boolean =>
  name === CHAIN_FROM_ENDPOINT || name === CHAIN_TO_ENDPOINT || name.startsWith('felix-FROM-IF-') || name.startsWith('felix-TO-IF-');

export class EndpointFilters {
  private readonly log: Logger;
  private readonly tables: Record<Family, IptablesTables>;
  private readonly sets: IpsetManager;
  private readonly trees: Record<Family, DispatchTree>;
  private readonly staged = new Map<string, Staged>();
  /** Suffixes whose chains a previous run left: kept for their endpoint until its ACLs arrive. */
  private readonly foundAtStart: Record<Family, Set<string>> = { 4: new Set(), 6: new Set() };
  /** Something is staged that the kernel does not have yet. */
  dirty = false;
  /** Rendered ACLs by object: equal ACLs arrive as one shared object (see AclInterner), rendered once. */
  private readonly rendered = new WeakMap<Acls, EndpointAclRules>();

  constructor(private readonly opts: FilterOptions) {
    this.log = opts.log;
    this.tables = { 4: new IptablesTables(new IptablesDriver(opts.runner, 4)), 6: new IptablesTables(new IptablesDriver(opts.runner, 6)) };
    this.sets = new IpsetManager(new IpsetDriver(opts.runner));
    this.trees = { 4: new DispatchTree(opts.interfacePrefix), 6: new DispatchTree(opts.interfacePrefix) };
  }

  /** Reads the kernel, keeps what a previous run left, stages the host-wide chains. Writes nothing. */
  async start(): Promise<void> {
    await Promise.all([this.tables[4].read(), this.tables[6].read(), this.sets.read()]);
    for (const family of FAMILIES) this.retain(family);
    this.stageHost();
  }

  /** Renders the endpoint (its latest ACLs win) and hands its chains, sets and dispatch entries to the managers. */
  stage(ep: FilterEndpoint): void {
    const s = this.record(ep);
    let rules: EndpointAclRules | null = null;
    if (ep.acls && ep.enabled) {
      rules = this.render(ep.acls);
      for (const r of rules.invalid)
        this.log.warn(
          { endpoint: ep.id, family: r.family, direction: r.direction, index: r.index, rule: r.rule, reason: r.reason },
          'invalid ACL rule skipped',
        );
    }
    for (const family of FAMILIES) {
      const addrs = ep.addrs[family];
      if (addrs.length === 0) {
        this.unstageFamily(s, family);
        continue;
      }
      const tables = this.tables[family];
      const to = chainName('to', s.suffix);
      const from = chainName('from', s.suffix);
      if (ep.acls === null && ep.enabled && (s.left[family] || this.foundAtStart[family].has(s.suffix))) {
        // What a previous run programmed keeps flowing until this endpoint's ACLs arrive.
        tables.leaveChain('filter', to);
        tables.leaveChain('filter', from);
        s.left[family] = true;
      } else {
        const filter = renderEndpointFilter({ suffix: s.suffix, mac: ep.mac, addrs }, family, rules ? rules[family] : null);
        this.hold(s, family, filter.sets);
        for (const chain of filter.chains) tables.setChain('filter', chain);
        s.left[family] = false;
      }
      this.foundAtStart[family].delete(s.suffix);
      this.trees[family].set(s.ifname, { from, to });
    }
    this.dirty = true;
  }

  /** An endpoint's chains as the kernel has them (last read or written), in each family that has them; for /status. */
  kernelChains(suffix: string): Array<{ family: Family; name: string; rules: string[] }> {
    return FAMILIES.flatMap((family) =>
      [chainName('from', suffix), chainName('to', suffix)].flatMap((name) => {
        const rules = this.tables[family].kernelChains('filter').get(name);
        return rules ? [{ family, name, rules: [...rules] }] : [];
      }),
    );
  }

  /** The rules of these ACLs that are not programmed (invalid, over budget), as staging renders them. */
  skippedRules(acls: Acls): EndpointAclRules['invalid'] {
    return this.render(acls).invalid;
  }

  private render(acls: Acls): EndpointAclRules {
    let cached = this.rendered.get(acls);
    if (!cached) this.rendered.set(acls, (cached = renderAclRules(acls, this.opts.protocols)));
    return cached;
  }

  /** Takes the endpoint out of dispatch and removes its chains, in every family (its traffic meets the dispatch DROP). */
  unstage(id: string): void {
    const s = this.staged.get(id);
    if (!s) return;
    for (const family of FAMILIES) this.unstageFamily(s, family);
    this.staged.delete(id);
    this.dirty = true;
  }

  /**
   * Writes what is staged: sets → chains → unused sets (at once, or with
   * the next apply's sets when `moreWaiting()` says one follows). An endpoint whose
   * sets cannot be made is unstaged on its own and returned with the error;
   * the rest goes on. Throws (having invalidated what it knows of the
   * kernel) if the chains could not be written.
   */
  async apply(moreWaiting: () => boolean = () => this.dirty): Promise<Map<string, Error>> {
    const failed = new Map<string, Error>();
    // What the chains reference decides which sets may go: known from the kernel before anything is destroyed.
    await Promise.all(FAMILIES.map((f) => this.tables[f].readIfNeeded()));
    const referenced = (name: string): boolean => this.tables[4].isSetReferenced(name) || this.tables[6].isSetReferenced(name);
    const failedSets = await this.sets.applyCreates(referenced);
    if (failedSets.size > 0) {
      for (const [id, s] of this.staged) {
        const name = FAMILIES.flatMap((f) => s.held[f]).find((n) => failedSets.has(n));
        if (name === undefined) continue;
        failed.set(id, new Error(`set ${name}: ${failedSets.get(name)}`));
        this.unstage(id);
      }
    }
    await Promise.all(FAMILIES.map((f) => this.tables[f].readIfNeeded()));
    // From the dispatch flush to the plans nothing waits, so an endpoint unstaged while the sets were
    // written leaves dispatch in the same restore that removes its chains (else: chain busy).
    this.flushDispatch();
    this.dirty = false;
    await Promise.all(FAMILIES.map((f) => this.tables[f].apply()));
    // More to apply already: the next apply's set restore destroys what this one left unused.
    if (!moreWaiting()) await this.sets.applyDeletes(referenced);
    return failed;
  }

  /** Both families' filter chains with their rule counters, read now (one iptables-save -c each). */
  async readCounters(): Promise<Record<Family, Map<string, CountedRule[]>>> {
    const [v4, v6] = await Promise.all([this.tables[4].readCounters(), this.tables[6].readCounters()]);
    return { 4: v4, 6: v6 };
  }

  /** Reads the kernel again before the next apply and repairs what drifted. */
  invalidate(): void {
    for (const family of FAMILIES) this.tables[family].invalidate();
    this.sets.invalidate();
    this.dirty = true;
  }

  /**
   * After a completed resync: stages the removal of everything felix- that
   * no staged endpoint owns (dispatch entries a previous run left, their
   * chains, stale tree chains); the sets follow once unreferenced. Returns
   * how many chains go.
   */
  async stageCleanup(): Promise<number> {
    for (const family of FAMILIES) this.tables[family].invalidate();
    this.sets.invalidate();
    await Promise.all([this.tables[4].read(), this.tables[6].read(), this.sets.read()]);
    const owned = new Set([...this.staged.values()].map((s) => s.ifname));
    let chains = 0;
    for (const family of FAMILIES) {
      this.foundAtStart[family].clear();
      const tree = this.trees[family];
      for (const ifname of tree.interfaces()) if (!owned.has(ifname)) tree.set(ifname, null);
      // Chains of staged endpoints stay (or go as their own staging says).
      const keep = new Set(tree.chains().keys());
      for (const s of this.staged.values()) keep.add(chainName('to', s.suffix)).add(chainName('from', s.suffix));
      for (const name of this.tables[family].kernelChains('filter').keys()) {
        if (!name.startsWith(OWNED_PREFIX) || keep.has(name) || HOST_CHAINS.has(name)) continue;
        this.tables[family].removeChain('filter', name);
        chains++;
      }
    }
    this.dirty = true;
    return chains;
  }

  /** Sets kept only because chains a previous run left still reference them. */
  get setsAwaitingDestruction(): number {
    return this.sets.destroyPending;
  }

  private record(ep: FilterEndpoint): Staged {
    const known = this.staged.get(ep.id);
    if (known && known.ifname === ep.ifname) return known;
    if (known) this.unstage(ep.id);
    const s: Staged = { ifname: ep.ifname, suffix: ep.suffix, held: { 4: [], 6: [] }, left: { 4: false, 6: false } };
    this.staged.set(ep.id, s);
    return s;
  }

  private unstageFamily(s: Staged, family: Family): void {
    this.foundAtStart[family].delete(s.suffix);
    this.trees[family].set(s.ifname, null);
    this.tables[family].removeChain('filter', chainName('to', s.suffix));
    this.tables[family].removeChain('filter', chainName('from', s.suffix));
    this.hold(s, family, []);
    s.left[family] = false;
  }

  /** Acquires the sets the endpoint's chains now reference, then releases the ones they no longer do. */
  private hold(s: Staged, family: Family, sets: IpSet[]): void {
    const byName = new Map(sets.map((set) => [set.name, set]));
    for (const [name, set] of byName) if (!s.held[family].includes(name)) this.sets.acquire(set);
    for (const name of s.held[family]) if (!byName.has(name)) this.sets.release(name);
    s.held[family] = [...byName.keys()];
  }

  /** Host-wide chains and jumps of both families. */
  private stageHost(): void {
    const o = { interfacePrefix: this.opts.interfacePrefix, metadata: this.opts.metadata, endpointToHost: this.opts.endpointToHost };
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
    this.dirty = true;
  }

  /** Dispatch entries and endpoint chains found at start: kept until the first cleanup, or until their endpoint's ACLs arrive. */
  private retain(family: Family): void {
    const chains = this.tables[family].kernelChains('filter');
    for (const name of chains.keys()) {
      const suffix = /^felix-to-(.+)$/.exec(name)?.[1];
      if (suffix !== undefined && chains.has(chainName('from', suffix))) this.foundAtStart[family].add(suffix);
    }
    const found = new Map<string, Partial<DispatchTarget>>();
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
}
