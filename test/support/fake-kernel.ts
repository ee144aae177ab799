/**
 * An in-memory kernel for unit tests of Felix's dataplane (SPEC §6, STYLE
 * "A fake kernel and a clock"): it stands in for `iptables-save`/`-restore`
 * (and `ip6tables-*`), `ipset`, `conntrack`, rtnetlink and /proc/sys, and
 * refuses what the real ones refuse, with their error texts (checked against
 * iptables v1.8.9 (nf_tables), ipset v7.17, conntrack v1.4.7 and Linux in a
 * throwaway network namespace), and keeps each rule's packet counters as the
 * kernel does (a test counts packets with `hitRule`; `iptables-save -c`
 * prints them; a rule written anew starts at 0), so an apply loop can be run through whole
 * sequences — restarts, failures, teardown while something still refers to
 * the removed object — in milliseconds and without root.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import ipaddr from 'ipaddr.js';
import { CommandError, type CommandRunner } from '../../src/felix/dataplane/drivers/commands.js';
import type { HostRoute, LinkAddress, LinkEvent, LinkState, NeighbourEntry, Netlink, RouteDecision } from '../../src/felix/dataplane/drivers/netlink.js';
import type { Sysctl } from '../../src/felix/dataplane/drivers/sysctl.js';
import type { Family } from '../../src/felix/dataplane/render/names.js';
import { IpsetSyntaxError, SET_TYPE_REVISIONS, ipsetEntries, parseRule, tokenize, type ParsedRule } from './fake-kernel-formats.js';

export type IptablesTable = 'filter' | 'nat' | 'raw';

/** The tables the fake models and their built-in chains, in the order `iptables-save` prints them. */
export const BUILTIN_CHAINS: Readonly<Record<IptablesTable, readonly string[]>> = {
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  raw: ['PREROUTING', 'OUTPUT'],
};
const TABLES = Object.keys(BUILTIN_CHAINS) as IptablesTable[];
const FAMILIES: readonly Family[] = [4, 6];

/** Targets that are not chains; besides these, any all-uppercase name that is not a chain counts as one. */
const BUILTIN_TARGETS = new Set([
  'ACCEPT',
  'DROP',
  'RETURN',
  'QUEUE',
  'REJECT',
  'MARK',
  'CONNMARK',
  'DNAT',
  'SNAT',
  'MASQUERADE',
  'REDIRECT',
  'NETMAP',
  'LOG',
  'NFLOG',
  'NFQUEUE',
  'CT',
  'NOTRACK',
  'TRACE',
  'SET',
  'TCPMSS',
  'CLASSIFY',
  'DSCP',
  'TOS',
  'TTL',
  'HL',
  'AUDIT',
]);
/** Targets and matches the kernel accepts only in some tables (checked in a namespace: RULE_APPEND fails with EINVAL elsewhere). */
const TARGET_TABLES: Record<string, readonly IptablesTable[]> = {
  DNAT: ['nat'],
  SNAT: ['nat'],
  MASQUERADE: ['nat'],
  REDIRECT: ['nat'],
  NETMAP: ['nat'],
  REJECT: ['filter'],
  CT: ['raw'],
  NOTRACK: ['raw'],
};
const MATCH_TABLES: Record<string, readonly IptablesTable[]> = { rpfilter: ['raw'] };
const POLICIES = new Set(['ACCEPT', 'DROP']);

const IPTABLES_VERSION = 'v1.8.9 (nf_tables)';
const IPSET_BANNER = 'ipset v7.17';
const CONNTRACK_BANNER = 'conntrack v1.4.7 (conntrack-tools)';
const MAX_CHAIN_NAME = 28;
const MAX_SET_NAME = 31;
const MAX_IFNAME = 15;
const DEFAULT_MAXELEM = 65536;
const DEFAULT_HASHSIZE = 1024;

/** One call made to the fake: a tool run through the runner, or a netlink / sysctl operation. */
export interface FakeCall {
  cmd: string;
  args: string[];
  input?: string;
}

/** What a test sees of an ipset. */
export interface FakeSet {
  type: string;
  family: Family;
  /** Entries as `ipset list` prints them. */
  members: Set<string>;
  maxelem: number;
  /** iptables rules (both families, all tables) that reference the set. */
  references: number;
}

export interface FakeFlow {
  src: string;
  dst: string;
}

export type FailurePredicate = (cmd: string, args: string[], input: string | undefined) => boolean;

export interface FakeKernelOptions {
  /** Start with `lo` (index 1, up), as every namespace has; default true. */
  loopback?: boolean;
  /**
   * The namespace the fake stands for (default `root`). A `child` lacks
   * `/proc/net/stat/{arp,ndisc}_cache` and `net/ipv{4,6}/neigh/default/*`,
   * and its `net/netfilter/nf_conntrack_max` is read-only (EACCES), as Linux has it.
   */
  namespace?: 'root' | 'child';
  /** nf_conntrack loaded (default true); without it `net/netfilter/*` does not exist. */
  conntrack?: boolean;
}

/** A rule with the kernel's counters for it (`iptables-save -c`); a new rule, or one replaced with `-R`, starts at 0. */
type Rule = ParsedRule & { packets: number; bytes: number };
interface Chain {
  builtin: boolean;
  policy: string;
  rules: Rule[];
}
type Table = Map<string, Chain>;

interface IpSetState {
  name: string;
  type: string;
  family: Family;
  hashsize: number;
  maxelem: number;
  timeout: number | null;
  /** counters, comment, skbinfo, forceadd: they, maxelem and timeout decide whether `-exist create` may meet an existing set. */
  extensions: string[];
  members: Set<string>;
}

interface Flow {
  family: Family;
  src: string;
  dst: string;
}

/** A tool refusing: becomes `CommandError(cmdline, stderr)`. */
class ToolFailure extends Error {
  constructor(readonly stderr: string) {
    super(stderr);
  }
}
/** The three ways iptables-restore reports a bad line (checked against v1.8.9 nf_tables). */
interface RestoreFailures {
  /** While parsing: `TOOL v1.8.9 (nf_tables): MSG` (or bare MSG), `Error occurred at line: N`, `Try …`. */
  paramFail: (n: number, msg: string, bare?: boolean) => ToolFailure;
  /** From the rule cache: `TOOL: line N failed: MSG`. */
  lineFail: (n: number, msg?: string) => ToolFailure;
  /** From the kernel at COMMIT: `TOOL v1.8.9 (nf_tables): \nline N: MSG`. */
  kernelFail: (n: number, msg: string) => ToolFailure;
}

/** An ipset command refusing; `restore` prefixes `Error in line N: `. */
class IpsetError extends Error {}

type IpsetOp =
  | { cmd: 'create'; spec: IpSetState }
  | { cmd: 'add' | 'del' | 'test'; set: string; element: string; entries: string[] }
  | { cmd: 'flush' | 'destroy'; set?: string }
  | { cmd: 'rename'; set: string; to: string }
  | { cmd: 'swap'; set: string; other: string };

/** An Error as rtnetlink or /proc/sys would give it: `code` is the errno name. */
export function errnoError(code: string, message = `Request rejected: ${code}`): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(message);
  err.code = code;
  err.errno = -((os.constants.errno as Record<string, number>)[code] ?? 5);
  return err;
}

/** A process boundary: the caller's promise settles on a later turn of the event loop, as with a real child process. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const familyWord = (f: Family): string => (f === 4 ? 'inet' : 'inet6');

function parseAddress(text: string): { family: Family; text: string } | null {
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) return { family: 4, text: ipaddr.IPv4.parse(text).toString() };
  if (ipaddr.IPv6.isValid(text)) return { family: 6, text: ipaddr.IPv6.parse(text).toString() };
  return null;
}

/** A chain on a jump loop reachable from a built-in chain (the kernel refuses those; unreachable loops it accepts). */
function findLoop(chains: Table): string | null {
  const state = new Map<string, 'active' | 'done'>();
  const visit = (name: string): string | null => {
    const s = state.get(name);
    if (s === 'active') return name;
    if (s === 'done') return null;
    state.set(name, 'active');
    for (const r of chains.get(name)?.rules ?? []) {
      const t = r.target?.name;
      if (t !== undefined && chains.has(t) && !chains.get(t)!.builtin) {
        const hit = visit(t);
        if (hit) return hit;
      }
    }
    state.set(name, 'done');
    return null;
  };
  for (const [name, c] of chains) {
    if (!c.builtin) continue;
    const hit = visit(name);
    if (hit) return hit;
  }
  return null;
}

function countSetRefs(chains: Table): Map<string, number> {
  const refs = new Map<string, number>();
  for (const c of chains.values()) for (const r of c.rules) for (const s of r.sets) refs.set(s, (refs.get(s) ?? 0) + 1);
  return refs;
}

function newTable(table: IptablesTable): Table {
  return new Map(BUILTIN_CHAINS[table].map((name) => [name, { builtin: true, policy: 'ACCEPT', rules: [] }]));
}

/** A table block of `iptables-restore`: changes go to copies of the chains they touch until COMMIT. */
class TableTx {
  readonly chains: Table;
  /** Chains deleted with `-X`, and the line that did it. */
  readonly deleted = new Map<string, number>();
  /** A jump or goto to a chain that did not exist at its line: reported at COMMIT. */
  missingChain: string | null = null;
  private readonly own = new Set<string>();

  constructor(base: Table) {
    this.chains = new Map(base);
  }

  mutable(name: string): Chain {
    const c = this.chains.get(name)!;
    if (this.own.has(name)) return c;
    const copy = { ...c, rules: [...c.rules] };
    this.chains.set(name, copy);
    this.own.add(name);
    return copy;
  }

  create(name: string): void {
    this.chains.set(name, { builtin: false, policy: '-', rules: [] });
    this.own.add(name);
  }

  delete(name: string, line: number): void {
    this.chains.delete(name);
    this.own.delete(name);
    this.deleted.set(name, line);
  }
}

/** Links, host routes and permanent neighbours, shared by every netlink handle of one fake kernel. */
class Network {
  readonly links = new Map<number, LinkState>();
  /** Key `family dst`: one host route per destination in the main table. */
  readonly routes = new Map<string, HostRoute>();
  /** Key `ifindex dst`. */
  readonly neighbours = new Map<string, NeighbourEntry>();
  /** IPv6 interface addresses, key `ifindex addr/len` (the kernel's own link-local ones are not modelled). */
  readonly addresses = new Map<string, LinkAddress>();
  readonly handles = new Set<FakeNetlink>();
  nextIndex = 1;
  /** Entries the kernel learned by itself (ARP, NDP) in this namespace: only counted, per family. */
  readonly learned: Record<Family, number> = { 4: 0, 6: 0 };
  /** Entries of other namespaces: only the root namespace's /proc/net/stat counts them. */
  readonly elsewhere: Record<Family, number> = { 4: 0, 6: 0 };

  /** This namespace's neighbour entries of a family, permanent and learned. */
  neighbourCount(family: Family): number {
    let n = this.learned[family];
    for (const e of this.neighbours.values()) if (parseAddress(e.dst)?.family === family) n++;
    return n;
  }

  byName(name: string): LinkState | undefined {
    for (const l of this.links.values()) if (l.name === name) return l;
    return undefined;
  }

  /** What the kernel does when a link goes down or away: its routes, neighbours (permanent ones too) and IPv6 addresses go. */
  flush(ifindex: number): void {
    for (const [k, r] of this.routes) if (r.ifindex === ifindex) this.routes.delete(k);
    for (const [k, n] of this.neighbours) if (n.ifindex === ifindex) this.neighbours.delete(k);
    for (const [k, a] of this.addresses) if (a.ifindex === ifindex) this.addresses.delete(k);
  }

  /** While set, link events are dropped (a full socket buffer), and each handle is told when it ends. */
  losingEvents = false;

  emit(e: LinkEvent): void {
    if (this.losingEvents) return;
    for (const h of this.handles) h.deliver(e);
  }
}

/**
 * One rtnetlink socket of a {@link FakeKernel}: the dataplane's view of links,
 * routes and neighbours. Errors carry `code` (EEXIST, ESRCH, ENODEV, ENETDOWN,
 * ENOENT, EINVAL) and the message the `netlink` package uses
 * (`Request rejected: EEXIST`). `close()` closes only this handle.
 */
export class FakeNetlink implements Netlink {
  private listeners: Array<(e: LinkEvent) => void> = [];
  private lostListeners: Array<(why: 'overflow' | 'started') => void> = [];
  private closed = false;

  constructor(
    private readonly net: Network,
    private readonly gate: (args: string[]) => Promise<void>,
  ) {
    net.handles.add(this);
  }

  /** Queues a link event for this socket's listeners, as a message arriving on the socket. */
  deliver(e: LinkEvent): void {
    for (const l of this.listeners) {
      const copy: LinkEvent = e.kind === 'removed' ? { ...e } : { kind: e.kind, link: { ...e.link } };
      queueMicrotask(() => {
        if (!this.closed) l(copy);
      });
    }
  }

  private async op(args: string[]): Promise<void> {
    if (this.closed) throw errnoError('EBADF', 'fake netlink: socket closed');
    await this.gate(args);
  }

  private linkAt(ifindex: number): LinkState {
    const l = this.net.links.get(ifindex);
    if (!l) throw errnoError('ENODEV');
    return l;
  }

  private static address(dst: string, family?: Family): string {
    const a = parseAddress(dst);
    if (!a || (family !== undefined && a.family !== family)) throw errnoError('EINVAL');
    return a.text;
  }

  async links(): Promise<LinkState[]> {
    await this.op(['links']);
    return [...this.net.links.values()].map((l) => ({ ...l }));
  }

  async hostRoutes(): Promise<HostRoute[]> {
    await this.op(['hostRoutes']);
    return [...this.net.routes.values()].map((r) => ({ ...r }));
  }

  async link(name: string): Promise<LinkState | null> {
    await this.op(['link', name]);
    const l = this.net.byName(name);
    return l ? { ...l } : null;
  }

  /** Like `ip route get`: only the fake's host routes are known (the fake has no addresses of its own). */
  async routeTo(addr: string): Promise<RouteDecision | null> {
    await this.op(['routeTo', addr]);
    const family = addr.includes(':') ? 6 : 4;
    const r = this.net.routes.get(`${family} ${FakeNetlink.address(addr, family)}`);
    return r ? { local: false, ifindex: r.ifindex, viaGateway: false } : null;
  }

  /** Create or replace (NLM_F_CREATE|NLM_F_REPLACE): a route to the same destination on another link is replaced. */
  async setRoute(r: HostRoute): Promise<void> {
    await this.op(['setRoute', r.dst, String(r.ifindex)]);
    const dst = FakeNetlink.address(r.dst, r.family);
    const link = this.linkAt(r.ifindex);
    if (!link.up) throw errnoError('ENETDOWN');
    this.net.routes.set(`${r.family} ${dst}`, { family: r.family, dst, ifindex: r.ifindex });
  }

  async deleteRoute(r: HostRoute): Promise<void> {
    await this.op(['deleteRoute', r.dst, String(r.ifindex)]);
    const dst = FakeNetlink.address(r.dst, r.family);
    this.linkAt(r.ifindex);
    const key = `${r.family} ${dst}`;
    if (this.net.routes.get(key)?.ifindex !== r.ifindex) throw errnoError('ESRCH');
    this.net.routes.delete(key);
  }

  async neighbours(): Promise<NeighbourEntry[]> {
    await this.op(['neighbours']);
    return [...this.net.neighbours.values()].map((n) => ({ ...n }));
  }

  async neighbourCounts(): Promise<Record<Family, number>> {
    await this.op(['neighbourCounts']);
    return { 4: this.net.neighbourCount(4), 6: this.net.neighbourCount(6) };
  }

  async setNeighbour(n: NeighbourEntry): Promise<void> {
    await this.op(['setNeighbour', n.dst, String(n.ifindex), n.mac]);
    const dst = FakeNetlink.address(n.dst);
    this.linkAt(n.ifindex);
    if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(n.mac)) throw errnoError('EINVAL');
    this.net.neighbours.set(`${n.ifindex} ${dst}`, { dst, ifindex: n.ifindex, mac: n.mac.toLowerCase() });
  }

  async deleteNeighbour(n: NeighbourEntry): Promise<void> {
    await this.op(['deleteNeighbour', n.dst, String(n.ifindex)]);
    const dst = FakeNetlink.address(n.dst);
    this.linkAt(n.ifindex);
    if (!this.net.neighbours.delete(`${n.ifindex} ${dst}`)) throw errnoError('ENOENT');
  }

  async ipv6Addresses(): Promise<LinkAddress[]> {
    await this.op(['ipv6Addresses']);
    return [...this.net.addresses.values()].map((a) => ({ ...a }));
  }

  /** Create or replace, as the driver asks; a down link takes the address too (it goes at the next down). */
  async addIpv6Address(a: LinkAddress): Promise<void> {
    await this.op(['addIpv6Address', `${a.addr}/${a.prefixLen}`, String(a.ifindex)]);
    const addr = FakeNetlink.address(a.addr, 6);
    this.linkAt(a.ifindex);
    if (!Number.isInteger(a.prefixLen) || a.prefixLen < 0 || a.prefixLen > 128) throw errnoError('EINVAL');
    this.net.addresses.set(`${a.ifindex} ${addr}/${a.prefixLen}`, { addr, prefixLen: a.prefixLen, ifindex: a.ifindex });
  }

  async deleteIpv6Address(a: LinkAddress): Promise<void> {
    await this.op(['deleteIpv6Address', `${a.addr}/${a.prefixLen}`, String(a.ifindex)]);
    const addr = FakeNetlink.address(a.addr, 6);
    this.linkAt(a.ifindex);
    if (!this.net.addresses.delete(`${a.ifindex} ${addr}/${a.prefixLen}`)) throw errnoError('EADDRNOTAVAIL');
  }

  onLinkEvent(listener: (e: LinkEvent) => void): void {
    this.listeners.push(listener);
  }

  onEventsLost(listener: (why: 'overflow' | 'started') => void): void {
    this.lostListeners.push(listener);
  }

  /** The socket reported ENOBUFS: asynchronously, as a socket error arrives. */
  eventsLost(): void {
    for (const l of this.lostListeners) queueMicrotask(() => !this.closed && l('overflow'));
  }

  close(): void {
    this.closed = true;
    this.listeners = [];
    this.lostListeners = [];
    this.net.handles.delete(this);
  }
}

const PER_INTERFACE_KEY = /^net\/ipv[46]\/(conf|neigh)\/([^/]+)\/[^/]+$/;
/** Values of keys never written: Linux's defaults (nf_conntrack_max depends on memory; 65536 is common). */
const SYSCTL_DEFAULTS: Record<string, string> = {
  'net/ipv4/neigh/default/gc_thresh1': '128',
  'net/ipv4/neigh/default/gc_thresh2': '512',
  'net/ipv4/neigh/default/gc_thresh3': '1024',
  'net/ipv6/neigh/default/gc_thresh1': '128',
  'net/ipv6/neigh/default/gc_thresh2': '512',
  'net/ipv6/neigh/default/gc_thresh3': '1024',
  'net/netfilter/nf_conntrack_max': '65536',
};

/**
 * /proc/sys of a {@link FakeKernel}. Keys under `net/ipv{4,6}/{conf,neigh}/IF/`
 * exist only while link IF exists (`conf/all`, `conf/default` and
 * `neigh/default` always, except `neigh/default` in a child namespace);
 * writing a missing one throws ENOENT as `fs.readFileSync` would, reading one
 * gives null. A removed link's values go with it. `net/netfilter/*` exists
 * while nf_conntrack is loaded: `nf_conntrack_count` is the fake's flows
 * (read-only), `nf_conntrack_max` read-only in a child namespace. A key never
 * written reads as Linux's default, or `0`.
 */
export class FakeSysctl implements Sysctl {
  /** Every value written (a key never written reads as unset, so the first `ensure` always writes). */
  readonly values = new Map<string, string>();
  /** Writes that changed a value. */
  writes = 0;

  constructor(
    private readonly linkExists: (name: string) => boolean,
    private readonly gate: (args: string[]) => Promise<void>,
    private readonly ns: { child: boolean; conntrack: boolean; conntrackCount: () => number } = { child: false, conntrack: true, conntrackCount: () => 0 },
  ) {}

  exists(key: string): boolean {
    if (key === '' || key.startsWith('/') || key.split('/').some((p) => p === '' || p === '.' || p === '..')) return false;
    if (key.startsWith('net/netfilter/')) return this.ns.conntrack;
    const m = PER_INTERFACE_KEY.exec(key);
    if (!m) return true;
    const [, dir, ifname] = m;
    if (ifname === 'default') return dir === 'conf' || !this.ns.child;
    if (dir === 'conf' && ifname === 'all') return true;
    return this.linkExists(ifname!);
  }

  private static fsError(code: string, key: string): NodeJS.ErrnoException {
    const text = code === 'ENOENT' ? 'no such file or directory' : 'permission denied';
    const err = errnoError(code, `${code}: ${text}, open '/proc/sys/${key}'`);
    Object.assign(err, { syscall: 'open', path: `/proc/sys/${key}` });
    return err;
  }

  async read(key: string): Promise<string | null> {
    await this.gate(['read', key]);
    if (!this.exists(key)) return null;
    if (key === 'net/netfilter/nf_conntrack_count') return String(this.ns.conntrackCount());
    return this.values.get(key) ?? SYSCTL_DEFAULTS[key] ?? '0';
  }

  async ensure(key: string, value: string): Promise<void> {
    await this.gate(['ensure', key, value]);
    if (!this.exists(key)) throw FakeSysctl.fsError('ENOENT', key);
    if (key === 'net/netfilter/nf_conntrack_count' || (key === 'net/netfilter/nf_conntrack_max' && this.ns.child)) throw FakeSysctl.fsError('EACCES', key);
    if (this.values.get(key) !== value) {
      this.values.set(key, value);
      this.writes++;
    }
  }

  /** Drops the values of a removed interface. */
  forget(ifname: string): void {
    for (const key of this.values.keys()) if (PER_INTERFACE_KEY.exec(key)?.[2] === ifname) this.values.delete(key);
  }
}

/**
 * A fake kernel: iptables (filter, nat, raw; IPv4 and IPv6), ipsets,
 * conntrack flows, links, host routes, permanent neighbours and sysctls,
 * behind the dataplane's own interfaces: `.runner` (a `CommandRunner` for
 * `iptables-save`/`-restore --noflush`, `ip6tables-*`, `ipset`, `conntrack`),
 * `.netlink` (a `Netlink`; `newNetlink()` opens another, e.g. for a restarted
 * Felix) and `.sysctl`.
 *
 * Use: pass them to the code under test, drive the world with `addLink`,
 * `setLinkUp`, `removeLink`, `addFlow`, break it with `failNext`, and inspect
 * with `chains`, `sets`, `routes`, `neighbours`, `flows`, `calls`, `count`,
 * `checkInvariants()`.
 *
 * It enforces what the kernel enforces (each iptables table block is one
 * transaction; a jump to a missing chain, `-X` of a referenced chain, a loop,
 * a missing or wrong-family set, NAT targets outside nat… are refused;
 * `ipset restore` is not transactional: it stops at the first bad line, and
 * a line it cannot read also drops the add/del lines still batched before it;
 * a referenced set cannot be destroyed or renamed; conntrack -D fails when it
 * deletes nothing; link down or removal takes its routes and neighbours) and
 * stores rules and set entries in the form `iptables-save` / `ipset list`
 * print them. Not for: performance numbers, packet paths (nothing here
 * forwards or matches packets), or anything only a real namespace can show.
 */
export class FakeKernel {
  readonly runner: CommandRunner;
  readonly netlink: FakeNetlink;
  readonly sysctl: FakeSysctl;
  /** Every tool run through `.runner`, in call order. */
  readonly calls: FakeCall[] = [];
  /** Every netlink (`cmd: 'netlink'`, args `[op, …]`) and sysctl (`cmd: 'sysctl'`, args `['ensure', key, value]`) operation. */
  readonly ops: FakeCall[] = [];
  /** Runs per tool (`iptables-restore`, `ipset`, …) and operations per kind (`netlink.setRoute`, `sysctl.ensure`). */
  counts: Record<string, number> = {};

  private failures: Array<{ predicate: FailurePredicate; stderr: string | undefined }> = [];
  private readonly iptables: Record<Family, Record<IptablesTable, Table>>;
  /** Set references per `family/table`, recounted at each commit. */
  private readonly setRefs = new Map<string, Map<string, number>>();
  /** Sets by kernel index: listing order, and a destroyed set's index is reused first. */
  private readonly setSlots: Array<IpSetState | null> = [];
  private readonly setsByName = new Map<string, IpSetState>();
  private flowList: Flow[] = [];
  private readonly net = new Network();
  private readonly child: boolean;

  constructor(opts: FakeKernelOptions = {}) {
    this.iptables = { 4: this.emptyTables(), 6: this.emptyTables() };
    this.runner = { run: (cmd, args, input) => this.run(cmd, args, input) };
    this.netlink = this.newNetlink();
    this.child = opts.namespace === 'child';
    this.sysctl = new FakeSysctl(
      (name) => this.net.byName(name) !== undefined,
      (args) => this.gate('sysctl', args),
      {
        child: this.child,
        conntrack: opts.conntrack ?? true,
        conntrackCount: () => this.flowList.length,
      },
    );
    if (opts.loopback ?? true) this.addLink('lo', { up: true });
  }

  private emptyTables(): Record<IptablesTable, Table> {
    return { filter: newTable('filter'), nat: newTable('nat'), raw: newTable('raw') };
  }

  // ---- test hooks ----

  /** Another netlink socket on the same kernel (the first is `.netlink`). */
  newNetlink(): FakeNetlink {
    return new FakeNetlink(this.net, (args) => this.gate('netlink', args));
  }

  /**
   * The next call (tool run, or netlink / sysctl operation as `cmd` `netlink` /
   * `sysctl`) for which `predicate` holds fails before it changes anything. A
   * tool rejects with `CommandError` and `stderr`; netlink and sysctl throw an
   * Error whose `code` is `stderr` if it is an errno name, else `EIO`. One-shot;
   * several may be queued.
   */
  failNext(predicate: FailurePredicate, stderr?: string): void {
    this.failures.push({ predicate, stderr });
  }

  /** Calls so far of one tool or operation kind (see `counts`). */
  count(key: string): number {
    return this.counts[key] ?? 0;
  }

  /** Forgets calls, operations and counts (e.g. after seeding a starting state through `.runner`). */
  resetCalls(): void {
    this.calls.length = 0;
    this.ops.length = 0;
    this.counts = {};
  }

  /** Resolves once queued link events and pending calls started before it have run. */
  settle(): Promise<void> {
    return turn().then(turn);
  }

  /** Creates a link (up unless `up: false`) and tells every netlink listener. */
  addLink(name: string, opts: { up?: boolean } = {}): LinkState {
    if (name.length === 0 || name.length > MAX_IFNAME || /[\s/]/.test(name)) throw errnoError('EINVAL', `fake kernel: bad interface name '${name}'`);
    if (this.net.byName(name)) throw errnoError('EEXIST', `fake kernel: link ${name} exists`);
    const link: LinkState = { index: this.net.nextIndex++, name, up: opts.up ?? true };
    this.net.links.set(link.index, link);
    this.net.emit({ kind: 'up-or-changed', link: { ...link } });
    return { ...link };
  }

  /** Runs `changes` (links added, removed, set up or down) with their events dropped, as a burst overflowing the sockets' buffers does; then each socket reports the loss. */
  loseLinkEvents(changes: () => void): void {
    this.net.losingEvents = true;
    try {
      changes();
    } finally {
      this.net.losingEvents = false;
    }
    for (const h of this.net.handles) h.eventsLost();
  }

  /** Sets a link up or down; going down drops its routes and neighbours, as the kernel does. No event if nothing changes. */
  setLinkUp(name: string, up: boolean): void {
    const link = this.requireLink(name);
    if (link.up === up) return;
    link.up = up;
    if (!up) this.net.flush(link.index);
    this.net.emit({ kind: 'up-or-changed', link: { ...link } });
  }

  /** Deletes a link with its routes, neighbours and sysctls; an up link first reports going down, as the kernel does. */
  removeLink(name: string): void {
    const link = this.requireLink(name);
    this.net.flush(link.index);
    if (link.up) this.net.emit({ kind: 'up-or-changed', link: { ...link, up: false } });
    this.net.links.delete(link.index);
    this.sysctl.forget(name);
    this.net.emit({ kind: 'removed', index: link.index, name });
  }

  private requireLink(name: string): LinkState {
    const link = this.net.byName(name);
    if (!link) throw errnoError('ENODEV', `fake kernel: no link ${name}`);
    return link;
  }

  /** Neighbour entries the kernel learned (ARP/NDP) in this namespace, beside the permanent ones: counted, not listed. */
  learnNeighbours(family: Family, n: number): void {
    this.net.learned[family] = n;
  }

  /** Neighbour entries of other namespaces: in the kernel-wide count of the root namespace's /proc/net/stat only. */
  neighboursElsewhere(family: Family, n: number): void {
    this.net.elsewhere[family] = n;
  }

  /**
   * `/proc/net/stat/arp_cache` or `ndisc_cache` as Linux prints it (a header,
   * then one hex row per CPU, two here, each with the table's kernel-wide
   * `entries`); null in a child namespace, which has none.
   */
  readProcNetStat(name: string): string | null {
    const family = name === 'arp_cache' ? 4 : name === 'ndisc_cache' ? 6 : null;
    if (family === null || this.child) return null;
    const hex = (n: number) => n.toString(16).padStart(8, '0');
    const entries = this.net.neighbourCount(family) + this.net.elsewhere[family];
    const header =
      'entries  allocs   destroys hash_grows lookups  hits     res_failed rcv_probes_mcast rcv_probes_ucast periodic_gc_runs forced_gc_runs unresolved_discards table_fulls';
    const row = (cpu: number) => [entries, 100 + cpu, 90 + cpu, 4, 300, 200, 6, 0, 0, 5, 0, 0, 0].map(hex).join(' ');
    return `${header}\n${row(0)}\n${row(1)}\n`;
  }

  /** Adds a conntrack entry (original direction src → dst). */
  addFlow(src: string, dst: string): void {
    const s = parseAddress(src);
    const d = parseAddress(dst);
    if (!s || !d || s.family !== d.family) throw new Error(`fake kernel: bad flow ${src} → ${dst}`);
    this.flowList.push({ family: s.family, src: s.text, dst: d.text });
  }

  // ---- inspection ----

  /** chain → rules (as `iptables-save` prints them, without `-A CHAIN`), built-in chains first. */
  chains(family: Family, table: IptablesTable): Map<string, string[]> {
    return new Map(this.orderedChains(family, table).map(([name, c]) => [name, c.rules.map((r) => r.text)]));
  }

  /**
   * Packets matched by rule `index` (from 1) of a chain, as the kernel
   * counts a packet against every rule it matches: the counters
   * `iptables-save -c` prints grow. For tests of counters kept or lost
   * across restores (a rule written anew starts at 0).
   */
  hitRule(family: Family, table: IptablesTable, chain: string, index: number, packets = 1, bytesPerPacket = 84): void {
    const rule = this.iptables[family][table].get(chain)?.rules[index - 1];
    if (!rule) throw new Error(`fake kernel: no rule ${index} in ${table} ${chain} (IPv${family})`);
    rule.packets += packets;
    rule.bytes += packets * bytesPerPacket;
  }

  /** A chain's rules with their packet counters (as `iptables-save -c` prints them). */
  ruleCounters(family: Family, table: IptablesTable, chain: string): Array<{ rule: string; packets: number }> {
    return (this.iptables[family][table].get(chain)?.rules ?? []).map((r) => ({ rule: r.text, packets: r.packets }));
  }

  policy(family: Family, table: IptablesTable, chain: string): string | undefined {
    return this.iptables[family][table].get(chain)?.policy;
  }

  sets(): Map<string, FakeSet> {
    const out = new Map<string, FakeSet>();
    for (const s of this.setSlots) {
      if (s) out.set(s.name, { type: s.type, family: s.family, members: new Set(s.members), maxelem: s.maxelem, references: this.references(s.name) });
    }
    return out;
  }

  /** Rules referencing set `name`, over both families and all tables. */
  references(name: string): number {
    let n = 0;
    for (const refs of this.setRefs.values()) n += refs.get(name) ?? 0;
    return n;
  }

  links(): LinkState[] {
    return [...this.net.links.values()].map((l) => ({ ...l }));
  }

  link(name: string): LinkState | undefined {
    const l = this.net.byName(name);
    return l && { ...l };
  }

  routes(): HostRoute[] {
    return [...this.net.routes.values()].map((r) => ({ ...r }));
  }

  neighbours(): NeighbourEntry[] {
    return [...this.net.neighbours.values()].map((n) => ({ ...n }));
  }

  ipv6Addresses(): LinkAddress[] {
    return [...this.net.addresses.values()].map((a) => ({ ...a }));
  }

  flows(): FakeFlow[] {
    return this.flowList.map(({ src, dst }) => ({ src, dst }));
  }

  /** What `iptables-save` (`ip6tables-save`) prints, without recording a call. */
  iptablesSave(family: Family, table?: IptablesTable): string {
    return this.saveText(family, family === 4 ? 'iptables-save' : 'ip6tables-save', table ? [table] : TABLES, false);
  }

  /** What `ipset save` prints, without recording a call. */
  ipsetSave(): string {
    return this.ipsetList(undefined, 'save');
  }

  /**
   * Throws if the state is one the kernel could not be in: a rule jumping to a
   * missing chain or using a missing (or wrong-family) set, a reachable jump
   * loop, a missing built-in chain, set reference counts that do not match the
   * rules, a set over its maxelem, a route or neighbour on a missing link, a
   * route on a down link, a sysctl of a missing interface.
   */
  checkInvariants(): void {
    const problems: string[] = [];
    for (const family of FAMILIES) {
      for (const table of TABLES) {
        const where = `${family === 4 ? 'iptables' : 'ip6tables'} ${table}`;
        const chains = this.iptables[family][table];
        for (const b of BUILTIN_CHAINS[table]) {
          const c = chains.get(b);
          if (!c?.builtin || !POLICIES.has(c.policy)) problems.push(`${where}: built-in chain ${b} missing or without policy`);
        }
        for (const [name, c] of chains) {
          if (!c.builtin && name.length > MAX_CHAIN_NAME) problems.push(`${where}: chain name ${name} too long`);
          for (const r of c.rules) {
            const t = r.target;
            const tc = t && chains.get(t.name);
            if (t && (tc ? tc.builtin : t.kind === 'goto' || !isBuiltinTarget(t.name)))
              problems.push(`${where}: ${name}: '${r.text}' targets missing chain ${t.name}`);
            for (const s of r.sets) {
              const set = this.setsByName.get(s);
              if (!set) problems.push(`${where}: ${name}: '${r.text}' uses missing set ${s}`);
              else if (set.family !== family) problems.push(`${where}: ${name}: '${r.text}' uses ${familyWord(set.family)} set ${s}`);
            }
          }
        }
        const loop = findLoop(chains);
        if (loop) problems.push(`${where}: jump loop through ${loop}`);
        const counted = countSetRefs(chains);
        const kept = this.setRefs.get(`${family}/${table}`) ?? new Map<string, number>();
        for (const name of new Set([...counted.keys(), ...kept.keys()])) {
          if ((counted.get(name) ?? 0) !== (kept.get(name) ?? 0))
            problems.push(`${where}: set ${name} has ${kept.get(name) ?? 0} references recorded, ${counted.get(name) ?? 0} in rules`);
        }
      }
    }
    let live = 0;
    this.setSlots.forEach((s, i) => {
      if (!s) return;
      live++;
      if (this.setsByName.get(s.name) !== s) problems.push(`ipset: slot ${i} (${s.name}) not found by its name`);
      if (s.members.size > s.maxelem) problems.push(`ipset: ${s.name} holds ${s.members.size} entries, maxelem ${s.maxelem}`);
    });
    if (live !== this.setsByName.size) problems.push(`ipset: ${live} sets in slots, ${this.setsByName.size} by name`);
    for (const r of this.net.routes.values()) {
      const l = this.net.links.get(r.ifindex);
      if (!l?.up) problems.push(`route ${r.dst} on ${l ? 'down' : 'missing'} link ${r.ifindex}`);
    }
    for (const n of this.net.neighbours.values()) {
      if (!this.net.links.has(n.ifindex)) problems.push(`neighbour ${n.dst} on missing link ${n.ifindex}`);
    }
    for (const a of this.net.addresses.values()) {
      if (!this.net.links.has(a.ifindex)) problems.push(`address ${a.addr} on missing link ${a.ifindex}`);
    }
    for (const key of this.sysctl.values.keys()) if (!this.sysctl.exists(key)) problems.push(`sysctl ${key} of a missing interface`);
    if (problems.length) throw new Error(`fake kernel invariants violated:\n  ${problems.join('\n  ')}`);
  }

  // ---- plumbing ----

  private bump(key: string): void {
    this.counts[key] = (this.counts[key] ?? 0) + 1;
  }

  private takeFailure(cmd: string, args: string[], input: string | undefined): { stderr: string | undefined } | null {
    const i = this.failures.findIndex((f) => f.predicate(cmd, args, input));
    if (i < 0) return null;
    const [f] = this.failures.splice(i, 1);
    return { stderr: f!.stderr };
  }

  /** Records a netlink or sysctl operation, yields like a syscall round trip, and throws an injected failure. */
  private async gate(cmd: 'netlink' | 'sysctl', args: string[]): Promise<void> {
    this.ops.push({ cmd, args: [...args] });
    this.bump(`${cmd}.${args[0]}`);
    await turn();
    const injected = this.takeFailure(cmd, args, undefined);
    if (injected) {
      const code = injected.stderr !== undefined && /^E[A-Z0-9]+$/.test(injected.stderr) ? injected.stderr : 'EIO';
      throw errnoError(code, cmd === 'sysctl' ? `${code}: injected failure, open '/proc/sys/${args[1]}'` : undefined);
    }
  }

  private async run(cmd: string, args: string[], input?: string): Promise<string> {
    this.calls.push({ cmd, args: [...args], ...(input !== undefined ? { input } : {}) });
    const tool = cmd.slice(cmd.lastIndexOf('/') + 1);
    this.bump(tool);
    await turn();
    const cmdline = `${cmd} ${args.join(' ')}`;
    const injected = this.takeFailure(cmd, args, input);
    if (injected) throw new CommandError(cmdline, injected.stderr ?? `fake kernel: injected failure of ${tool}`);
    try {
      return this.exec(tool, args, input ?? '');
    } catch (e) {
      if (e instanceof ToolFailure) throw new CommandError(cmdline, e.stderr);
      throw e;
    }
  }

  private exec(tool: string, args: string[], input: string): string {
    const ipt = /^(ip6?tables)(?:-nft|-legacy)?-(save|restore)$/.exec(tool);
    if (ipt) {
      const family: Family = ipt[1] === 'iptables' ? 4 : 6;
      return ipt[2] === 'save' ? this.iptablesSaveCmd(family, tool, args) : this.iptablesRestore(family, tool, args, input);
    }
    if (tool === 'ipset') return this.ipset(args, input);
    if (tool === 'conntrack') return this.conntrack(args, input);
    throw new ToolFailure(`fake kernel: ${tool} is not modelled (Felix programs iptables through iptables-restore, sets through ipset restore)`);
  }

  // ---- iptables ----

  private orderedChains(family: Family, table: IptablesTable): Array<[string, Chain]> {
    const chains = this.iptables[family][table];
    const builtins = BUILTIN_CHAINS[table].map((n): [string, Chain] => [n, chains.get(n)!]);
    const user = [...chains].filter(([, c]) => !c.builtin).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return [...builtins, ...user];
  }

  private saveText(family: Family, tool: string, tables: readonly IptablesTable[], counters: boolean): string {
    const out: string[] = [];
    for (const table of tables) {
      const chains = this.orderedChains(family, table);
      out.push(`# Generated by ${tool} ${IPTABLES_VERSION} (fake kernel)`, `*${table}`);
      for (const [name, c] of chains) out.push(`:${name} ${c.builtin ? c.policy : '-'} [0:0]`);
      for (const [name, c] of chains)
        for (const r of c.rules) out.push(`${counters ? `[${r.packets}:${r.bytes}] ` : ''}-A ${name}${r.text ? ` ${r.text}` : ''}`);
      out.push('COMMIT', `# Completed by ${tool} (fake kernel)`);
    }
    return out.join('\n') + '\n';
  }

  private iptablesSaveCmd(family: Family, tool: string, args: string[]): string {
    let tables: IptablesTable[] = TABLES;
    let counters = false;
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      if (a === '-t' || a === '--table') {
        const t = args[++i] ?? '';
        if (!TABLES.includes(t as IptablesTable)) throw new ToolFailure(`Table \`${t}' does not exist`);
        tables = [t as IptablesTable];
      } else if (a === '-c' || a === '--counters') counters = true;
      else throw new ToolFailure(`${tool}: unrecognized option '${a}'`);
    }
    return this.saveText(family, tool, tables, counters);
  }

  private iptablesRestore(family: Family, tool: string, args: string[], input: string): string {
    let noflush = false;
    let counters = false;
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      if (a === '--noflush' || a === '-n') noflush = true;
      else if (a === '--counters' || a === '-c') counters = true;
      else if (a === '--verbose' || a === '-v') continue;
      else if (a === '--wait' || a === '-w' || a === '--wait-interval' || a === '-W') {
        if (/^\d+$/.test(args[i + 1] ?? '')) i++;
      } else throw new ToolFailure(`${tool}: unrecognized option '${a}'`);
    }
    if (!noflush) {
      throw new ToolFailure(`fake kernel: ${tool} without --noflush flushes every table it is given; Felix never runs it that way`);
    }
    const usage = `Try \`${tool} -h' or '${tool} --help' for more information.`;
    const fail: RestoreFailures = {
      paramFail: (n, msg, bare = false) => new ToolFailure(`${bare ? '' : `${tool} ${IPTABLES_VERSION}: `}${msg}\nError occurred at line: ${n}\n${usage}`),
      lineFail: (n, msg) => new ToolFailure(`${tool}: line ${n} failed${msg ? `: ${msg}` : ''}`),
      kernelFail: (n, msg) => new ToolFailure(`${tool} ${IPTABLES_VERSION}: \nline ${n}: ${msg}`),
    };
    const { paramFail, lineFail } = fail;

    const lines = input.split('\n');
    let tx: { table: IptablesTable; tx: TableTx } | null = null;
    for (let i = 0; i < lines.length; i++) {
      const n = i + 1;
      const line = lines[i]!.trim();
      if (line === '' || line.startsWith('#')) continue;
      if (line.startsWith('*')) {
        if (tx) throw lineFail(n);
        const table = line.slice(1).trim();
        if (!TABLES.includes(table as IptablesTable)) {
          throw paramFail(n, ['mangle', 'security'].includes(table) ? `fake kernel: table '${table}' is not modelled` : `table '${table}' does not exist`);
        }
        tx = { table: table as IptablesTable, tx: new TableTx(this.iptables[family][table as IptablesTable]) };
        continue;
      }
      if (!tx) throw lineFail(n);
      if (line === 'COMMIT') {
        this.commit(family, tx.table, tx.tx, n, fail);
        tx = null;
        continue;
      }
      if (line.startsWith(':')) {
        this.declareChain(tx.tx, tx.table, line, n, fail);
        continue;
      }
      // A `[packets:bytes]` prefix sets the new rule's counters with --counters, and is ignored without (checked against v1.8.9).
      const given = /^\[(\d+):(\d+)\]\s*/.exec(line);
      const start = counters && given ? { packets: Number(given[1]), bytes: Number(given[2]) } : { packets: 0, bytes: 0 };
      this.restoreCommand(family, tx.table, tx.tx, given ? line.slice(given[0].length) : line, n, fail, start);
    }
    if (tx) throw new ToolFailure(`${tool}: COMMIT expected at line ${lines.length}`);
    return '';
  }

  private declareChain(tx: TableTx, table: IptablesTable, line: string, n: number, fail: RestoreFailures): void {
    const [name = '', policy = '-'] = line.slice(1).trim().split(/\s+/);
    const existing = tx.chains.get(name);
    if (existing?.builtin) {
      // A built-in chain's declaration sets its policy and, under --noflush, keeps its rules.
      if (!POLICIES.has(policy)) throw fail.lineFail(n, `Can't set policy \`${policy}' on \`${name}'`);
      tx.mutable(name).policy = policy;
      return;
    }
    if (BUILTIN_CHAINS[table].includes(name)) throw fail.lineFail(n);
    if (name === '' || name.length > MAX_CHAIN_NAME) throw fail.paramFail(n, `chain name \`${name}' too long (must be under ${MAX_CHAIN_NAME + 1} chars)`);
    if (policy !== '-') throw fail.lineFail(n, `fake kernel: user-defined chain ${name} declared with policy ${policy}`);
    if (existing)
      tx.mutable(name).rules = []; // --noflush: declaring an existing chain flushes it
    else tx.create(name);
  }

  private restoreCommand(
    family: Family,
    table: IptablesTable,
    tx: TableTx,
    line: string,
    n: number,
    fail: RestoreFailures,
    start: { packets: number; bytes: number },
  ): void {
    const { tokens } = tokenize(line);
    const LONG: Record<string, string> = {
      '--append': '-A',
      '--insert': '-I',
      '--delete': '-D',
      '--replace': '-R',
      '--flush': '-F',
      '--delete-chain': '-X',
      '--new-chain': '-N',
      '--policy': '-P',
      '--zero': '-Z',
    };
    const cmd = LONG[tokens[0]!] ?? tokens[0]!;
    const chainName = tokens[1];
    const noChain = (): ToolFailure => fail.lineFail(n, 'No chain/target/match by that name.');

    switch (cmd) {
      case '-A':
      case '-I':
      case '-R':
      case '-D': {
        if (chainName === undefined) throw fail.paramFail(n, `option "${cmd}" requires an argument`);
        let idx = 2;
        let pos: number | null = null;
        if (cmd !== '-A' && /^\d+$/.test(tokens[2] ?? '')) {
          pos = Number(tokens[2]);
          idx = 3;
        }
        if (cmd === '-R' && pos === null) throw fail.paramFail(n, '-R requires a rule number');
        const chain = tx.chains.get(chainName);
        if (!chain) throw noChain();
        if (cmd === '-D' && pos !== null && idx === tokens.length) {
          if (pos < 1 || pos > chain.rules.length) throw fail.lineFail(n, 'Index of deletion too big.');
          tx.mutable(chainName).rules.splice(pos - 1, 1);
          return;
        }
        const verb = { '-A': 'RULE_APPEND', '-I': 'RULE_INSERT', '-R': 'RULE_REPLACE', '-D': 'RULE_DELETE' }[cmd];
        const rule = { ...this.checkRule(family, table, tx, chainName, tokens.slice(idx).join(' '), n, verb, fail), ...start };
        const rules = tx.mutable(chainName).rules;
        if (cmd === '-A') rules.push(rule);
        else if (cmd === '-I') {
          const at = pos ?? 1;
          if (at < 1 || at > rules.length + 1) throw fail.lineFail(n, 'Index of insertion too big.');
          rules.splice(at - 1, 0, rule);
        } else if (cmd === '-R') {
          if (pos! < 1 || pos! > rules.length) throw fail.lineFail(n, 'Index of replacement too big.');
          rules[pos! - 1] = rule;
        } else {
          const at = rules.findIndex((r) => r.text === rule.text);
          if (at < 0) throw fail.lineFail(n, 'Bad rule (does a matching rule exist in that chain?).');
          rules.splice(at, 1);
        }
        return;
      }
      case '-F': {
        if (chainName === undefined) {
          for (const name of [...tx.chains.keys()]) tx.mutable(name).rules = [];
          return;
        }
        if (!tx.chains.has(chainName)) throw noChain();
        tx.mutable(chainName).rules = [];
        return;
      }
      case '-X': {
        const names = chainName === undefined ? [...tx.chains].filter(([, c]) => !c.builtin).map(([name]) => name) : [chainName];
        for (const name of names) {
          const chain = tx.chains.get(name);
          if (!chain) throw noChain();
          // Built-in or not empty: the kernel answers EBUSY (references are checked at COMMIT, against the table as it will be).
          if (chain.builtin || chain.rules.length > 0) throw fail.kernelFail(n, `CHAIN_DEL failed (Device or resource busy): chain ${name}`);
          tx.delete(name, n);
        }
        return;
      }
      case '-N': {
        if (chainName === undefined) throw fail.paramFail(n, `option "-N" requires an argument`);
        if (tx.chains.has(chainName)) throw fail.lineFail(n, 'Chain already exists.');
        if (chainName.length > MAX_CHAIN_NAME) throw fail.paramFail(n, `chain name \`${chainName}' too long (must be under ${MAX_CHAIN_NAME + 1} chars)`);
        tx.create(chainName);
        return;
      }
      case '-P': {
        const chain = chainName === undefined ? undefined : tx.chains.get(chainName);
        if (!chain?.builtin) throw fail.lineFail(n, 'Bad built-in chain name.');
        if (!POLICIES.has(tokens[2] ?? '')) throw fail.lineFail(n, 'Bad policy name.');
        tx.mutable(chainName!).policy = tokens[2]!;
        return;
      }
      case '-Z': {
        // Zeroes the counters of a chain's rules (of every chain without a name).
        if (chainName !== undefined && !tx.chains.has(chainName)) throw noChain();
        for (const name of chainName === undefined ? [...tx.chains.keys()] : [chainName]) {
          const c = tx.mutable(name);
          c.rules = c.rules.map((r) => ({ ...r, packets: 0, bytes: 0 }));
        }
        return;
      }
      default:
        throw fail.paramFail(n, `unknown option "${tokens[0]}"`);
    }
  }

  /** A rule as the line states it, refused as iptables would refuse it at that line. */
  private checkRule(
    family: Family,
    table: IptablesTable,
    tx: TableTx,
    chain: string,
    text: string,
    n: number,
    verb: string,
    fail: RestoreFailures,
  ): ParsedRule {
    const rule = parseRule(text, family);
    if (rule.invalid !== null) throw fail.paramFail(n, rule.invalid, true);
    for (const s of rule.sets) {
      const set = this.setsByName.get(s);
      if (!set) throw fail.paramFail(n, `Set ${s} doesn't exist.\n`);
      if (set.family !== family) throw fail.paramFail(n, `The protocol family of set ${s} is IPv${set.family}, which is not applicable.\n`);
    }
    const invalid = (): ToolFailure => fail.kernelFail(n, `${verb} failed (Invalid argument): rule in chain ${chain}`);
    for (const m of rule.matches) if (MATCH_TABLES[m] && !MATCH_TABLES[m].includes(table)) throw invalid();
    if (rule.target) {
      const { kind, name } = rule.target;
      const target = tx.chains.get(name);
      if (target?.builtin) throw fail.kernelFail(n, `${verb} failed (Operation not supported): rule in chain ${chain}`);
      if (!target) {
        // nf_tables looks the chain up at this line but reports it at COMMIT.
        if (kind === 'goto' || !isBuiltinTarget(name)) tx.missingChain ??= `Chain '${name}' does not exist`;
        if (TARGET_TABLES[name] && !TARGET_TABLES[name].includes(table)) throw invalid();
      }
    }
    return rule;
  }

  private commit(family: Family, table: IptablesTable, tx: TableTx, n: number, fail: RestoreFailures): void {
    const kernelFail = fail.kernelFail;
    if (tx.missingChain !== null) throw fail.paramFail(n, tx.missingChain);
    for (const [name, line] of tx.deleted) {
      if (tx.chains.has(name)) continue;
      for (const c of tx.chains.values()) {
        if (c.rules.some((r) => r.target?.name === name)) throw kernelFail(line, `CHAIN_DEL failed (Device or resource busy): chain ${name}`);
      }
    }
    const loop = findLoop(tx.chains);
    if (loop) throw kernelFail(n, `RULE_APPEND failed (Too many links): rule in chain ${loop}`);
    this.iptables[family][table] = tx.chains;
    this.setRefs.set(`${family}/${table}`, countSetRefs(tx.chains));
  }

  // ---- ipset ----

  private ipset(args: string[], input: string): string {
    let exist = false;
    let mode: 'full' | 'names' | 'terse' | 'save' = 'full';
    const words: string[] = [];
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!.replace(/^--/, '-');
      if (a === '-exist' || a === '-!') exist = true;
      else if (a === '-n' || a === '-name') mode = 'names';
      else if (a === '-t' || a === '-terse') mode = 'terse';
      else if (a === '-o' || a === '-output') {
        if (args[++i] === 'save') mode = 'save';
      } else if (['-s', '-sorted', '-q', '-quiet', '-r', '-resolve'].includes(a)) continue;
      else words.push(args[i]!);
    }
    const [command, ...rest] = words;
    if (command === 'restore') return this.ipsetRestore(input, exist);
    if (command === 'list') return this.ipsetList(rest[0], mode);
    if (command === 'save') return this.ipsetList(rest[0], 'save');
    if (command === 'version') return `${IPSET_BANNER}, protocol version: 7\n`;
    if (command === undefined) throw new ToolFailure(`${IPSET_BANNER}: No command specified.`);
    try {
      return this.ipsetCommand(words, exist);
    } catch (e) {
      if (e instanceof IpsetError) throw new ToolFailure(`${IPSET_BANNER}: ${e.message}`);
      throw e;
    }
  }

  /**
   * Like the real one, not transactional: it runs line by line and stops at
   * the first error, and consecutive `add` (or `del`) lines for one set are
   * sent to the kernel together when another command or set comes (or the
   * input ends). So an error the kernel finds (already added, hash full, a
   * missing set in destroy/rename/swap…) keeps every line before it, but an
   * error found while reading a line (bad element, missing set in add/del,
   * unknown type) also drops the batch of add/del lines still waiting before
   * it. (The real one also sends a batch when its 8 KiB buffer fills, about
   * 125 entries, so on long runs it drops fewer lines than this.)
   */
  private ipsetRestore(input: string, exist: boolean): string {
    const lines = input.split('\n');
    type Batch = { cmd: 'add' | 'del'; set: string; items: Array<{ line: number; op: IpsetOp }> };
    const pending: { batch: Batch | null } = { batch: null };
    const fail = (line: number, e: unknown): unknown => (e instanceof IpsetError ? new ToolFailure(`${IPSET_BANNER}: Error in line ${line}: ${e.message}`) : e);
    const send = (): void => {
      const items = pending.batch?.items ?? [];
      pending.batch = null;
      for (const { line, op } of items) {
        try {
          this.applyIpset(op, exist);
        } catch (e) {
          throw fail(line, e);
        }
      }
    };
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.trim();
      if (line === '' || line.startsWith('#')) continue;
      const tokens = line.split(/\s+/);
      if (!IPSET_COMMANDS.has(tokens[0]!)) {
        throw new ToolFailure(`${IPSET_BANNER}: No command specified: unknown argument ${tokens[0]}\nTry \`ipset help' for more information.`);
      }
      let op: IpsetOp;
      try {
        op = this.parseIpset(tokens);
      } catch (e) {
        throw fail(i + 1, e);
      }
      if (op.cmd === 'add' || op.cmd === 'del') {
        if (pending.batch && (pending.batch.cmd !== op.cmd || pending.batch.set !== op.set)) send();
        pending.batch ??= { cmd: op.cmd, set: op.set, items: [] };
        pending.batch.items.push({ line: i + 1, op });
        continue;
      }
      send();
      try {
        this.applyIpset(op, exist);
      } catch (e) {
        throw fail(i + 1, e);
      }
    }
    send();
    return '';
  }

  private ipsetCommand(tokens: string[], exist: boolean): string {
    this.applyIpset(this.parseIpset(tokens), exist);
    return '';
  }

  /** Reads one command as the ipset tool does before it talks to the kernel: errors here are syntax errors and missing sets of add/del/test. */
  private parseIpset(tokens: string[]): IpsetOp {
    const [cmd, name, ...rest] = tokens;
    const named = (): string => {
      if (name === undefined) throw new IpsetError(`Syntax error: Missing setname for ${cmd}`);
      checkSetName(name);
      return name;
    };
    switch (cmd) {
      case 'create':
        return { cmd, spec: this.parseCreate(named(), rest) };
      case 'add':
      case 'del':
      case 'test': {
        const s = this.setsByName.get(named());
        if (!s) throw new IpsetError('The set with the given name does not exist');
        const element = rest[0];
        if (element === undefined) throw new IpsetError(`Syntax error: Missing element for ${cmd}`);
        if (cmd === 'add') checkElementOptions(s, rest.slice(1));
        try {
          return { cmd, set: s.name, element, entries: ipsetEntries(element, s.type, s.family) };
        } catch (e) {
          if (e instanceof IpsetSyntaxError) throw new IpsetError(e.message);
          throw e;
        }
      }
      case 'flush':
      case 'destroy':
        return name === undefined ? { cmd } : { cmd, set: named() };
      case 'rename': {
        const to = rest[0];
        if (to === undefined) throw new IpsetError('Syntax error: Missing new setname');
        checkSetName(to);
        return { cmd, set: named(), to };
      }
      case 'swap': {
        const other = rest[0];
        if (other === undefined) throw new IpsetError('Syntax error: Missing second setname');
        checkSetName(other);
        return { cmd, set: named(), other };
      }
      default:
        throw new IpsetError(`fake kernel: ipset ${cmd} is not modelled`);
    }
  }

  /** What the kernel does with one command; errors here are the kernel's. */
  private applyIpset(op: IpsetOp, exist: boolean): void {
    const find = (setName: string | undefined): IpSetState => {
      const s = setName === undefined ? undefined : this.setsByName.get(setName);
      if (!s) throw new IpsetError('The set with the given name does not exist');
      return s;
    };
    switch (op.cmd) {
      case 'create': {
        const existing = this.setsByName.get(op.spec.name);
        if (existing) {
          // The kernel's "same set" test (ip_set_create with IPSET_FLAG_EXIST): type, maxelem, timeout, extensions.
          // Not the family and not hashsize: `-exist create` of an inet6 set over an inet one succeeds and keeps the inet set.
          const s = op.spec;
          const same =
            existing.type === s.type && existing.maxelem === s.maxelem && existing.timeout === s.timeout && existing.extensions.join() === s.extensions.join();
          if (exist && same) return;
          throw new IpsetError('Set cannot be created: set with the same name already exists');
        }
        const spec = { ...op.spec, members: new Set<string>() };
        const free = this.setSlots.indexOf(null);
        if (free >= 0) this.setSlots[free] = spec;
        else this.setSlots.push(spec);
        this.setsByName.set(spec.name, spec);
        return;
      }
      case 'add': {
        const s = find(op.set);
        for (const e of op.entries) {
          if (s.members.has(e)) {
            if (!exist) throw new IpsetError("Element cannot be added to the set: it's already added");
            continue;
          }
          if (s.members.size >= s.maxelem) throw new IpsetError('Hash is full, cannot add more elements');
          s.members.add(e);
        }
        return;
      }
      case 'del': {
        const s = find(op.set);
        for (const e of op.entries) {
          if (!s.members.delete(e) && !exist) throw new IpsetError("Element cannot be deleted from the set: it's not added");
        }
        return;
      }
      case 'test': {
        const s = find(op.set);
        if (!op.entries.every((e) => s.members.has(e))) throw new IpsetError(`${op.element} is NOT in set ${op.set}.`);
        return;
      }
      case 'flush':
        if (op.set === undefined) for (const s of this.setsByName.values()) s.members.clear();
        else find(op.set).members.clear();
        return;
      case 'destroy': {
        if (op.set === undefined) {
          if ([...this.setsByName.keys()].some((n) => this.references(n) > 0))
            throw new IpsetError('Set cannot be destroyed: it is in use by a kernel component');
          this.setSlots.fill(null);
          this.setsByName.clear();
          return;
        }
        const s = this.setsByName.get(op.set);
        if (!s) {
          if (exist) return;
          throw new IpsetError('The set with the given name does not exist');
        }
        if (this.references(op.set) > 0) throw new IpsetError('Set cannot be destroyed: it is in use by a kernel component');
        this.setSlots[this.setSlots.indexOf(s)] = null;
        this.setsByName.delete(op.set);
        return;
      }
      case 'rename': {
        const s = find(op.set);
        if (this.references(s.name) > 0) throw new IpsetError('Set cannot be renamed: it is in use by another system');
        if (this.setsByName.has(op.to)) throw new IpsetError('Set cannot be renamed: a set with the new name already exists');
        this.setsByName.delete(s.name);
        s.name = op.to;
        this.setsByName.set(op.to, s);
        return;
      }
      case 'swap': {
        const a = find(op.set);
        const b = this.setsByName.get(op.other);
        if (!b) throw new IpsetError('Sets cannot be swapped: the second set does not exist');
        if (a.type !== b.type || a.family !== b.family) throw new IpsetError('The sets cannot be swapped: their type does not match');
        // The kernel swaps the sets' places and names: rules keep referring to the name (the place), which now holds the other contents.
        const ia = this.setSlots.indexOf(a);
        const ib = this.setSlots.indexOf(b);
        this.setSlots[ia] = b;
        this.setSlots[ib] = a;
        [a.name, b.name] = [b.name, a.name];
        this.setsByName.set(a.name, a);
        this.setsByName.set(b.name, b);
        return;
      }
    }
  }

  private parseCreate(name: string, rest: string[]): IpSetState {
    const [type, ...opts] = rest;
    if (type === undefined) throw new IpsetError('Syntax error: Missing settype');
    if (SET_TYPE_REVISIONS[type] === undefined) throw new IpsetError(`Syntax error: typename '${type}' is unknown`);
    const spec: IpSetState = { name, type, family: 4, hashsize: DEFAULT_HASHSIZE, maxelem: DEFAULT_MAXELEM, timeout: null, extensions: [], members: new Set() };
    for (let i = 0; i < opts.length; i++) {
      const o = opts[i]!;
      const value = (): string => {
        const v = opts[++i];
        if (v === undefined) throw new IpsetError(`Syntax error: Missing mandatory value to option ${o}`);
        return v;
      };
      const num = (): number => {
        const v = value();
        if (!/^\d+$/.test(v)) throw new IpsetError(`Syntax error: '${v}' is invalid as number`);
        return Number(v);
      };
      if (o === 'family') {
        const f = value();
        if (f !== 'inet' && f !== 'inet6') throw new IpsetError(`Syntax error: unknown family ${f}`);
        spec.family = f === 'inet' ? 4 : 6;
      } else if (o === 'hashsize') spec.hashsize = num();
      else if (o === 'maxelem') spec.maxelem = num();
      else if (o === 'timeout') spec.timeout = num();
      else if (o === 'bucketsize' || o === 'initval') value();
      else if (['counters', 'comment', 'skbinfo', 'forceadd'].includes(o)) spec.extensions = [...new Set([...spec.extensions, o])].sort();
      else throw new IpsetError(`Syntax error: Unknown argument: '${o}'`);
    }
    return spec;
  }

  private ipsetHeader(s: IpSetState): string {
    const timeout = s.timeout === null ? '' : ` timeout ${s.timeout}`;
    const ext = s.extensions.map((e) => ` ${e}`).join('');
    return `family ${familyWord(s.family)} hashsize ${s.hashsize} maxelem ${s.maxelem}${timeout}${ext} bucketsize 12 initval 0x00000000`;
  }

  private ipsetList(name: string | undefined, mode: 'full' | 'names' | 'terse' | 'save'): string {
    let sets: IpSetState[];
    if (name === undefined) sets = this.setSlots.filter((s): s is IpSetState => s !== null);
    else {
      const s = this.setsByName.get(name);
      if (!s) throw new ToolFailure(`${IPSET_BANNER}: The set with the given name does not exist`);
      sets = [s];
    }
    if (mode === 'names') return sets.map((s) => `${s.name}\n`).join('');
    if (mode === 'save') {
      return sets
        .map((s) => [`create ${s.name} ${s.type} ${this.ipsetHeader(s)}`, ...[...s.members].map((m) => `add ${s.name} ${m}`)].join('\n') + '\n')
        .join('');
    }
    return sets
      .map(
        (s) =>
          [
            `Name: ${s.name}`,
            `Type: ${s.type}`,
            `Revision: ${SET_TYPE_REVISIONS[s.type]}`,
            `Header: ${this.ipsetHeader(s)}`,
            'Size in memory: 0',
            `References: ${this.references(s.name)}`,
            `Number of entries: ${s.members.size}`,
            ...(mode === 'full' ? ['Members:', ...s.members] : []),
          ].join('\n') + '\n',
      )
      .join('\n');
  }

  // ---- conntrack ----

  private conntrack(args: string[], input: string): string {
    if (args.length === 2 && (args[0] === '-R' || args[0] === '--load-file'))
      return this.conntrackLoadFile(args[1] === '-' ? input : readFileSync(args[1]!, 'utf8'));
    return this.conntrackCommand(args, false);
  }

  /** `conntrack --load-file FILE`, as v1.4.7 (the tool reads the file, so it is read here too): one command per line, only -D/-I/-U; a line matching nothing is no failure. */
  private conntrackLoadFile(input: string): string {
    const commands = input
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => l.trim().split(/\s+/));
    for (const c of commands) {
      if (c[0] !== '-D' && c[0] !== '--delete')
        throw new ToolFailure(
          `${CONNTRACK_BANNER}: Cannot use command \`${c[0]}' with --load-file\nTry \`conntrack -h' or 'conntrack --help' for more information.`,
        );
    }
    return commands.map((c) => this.conntrackCommand(c, true)).join('');
  }

  private conntrackCommand(args: string[], loadingFile: boolean): string {
    let op: 'delete' | 'list' | null = null;
    let family: Family | null = null;
    const match: { src?: { family: Family; text: string }; dst?: { family: Family; text: string } } = {};
    const usage = (msg: string): ToolFailure => new ToolFailure(`${CONNTRACK_BANNER}: ${msg}\nTry \`conntrack -h' or 'conntrack --help' for more information.`);
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      if (a === '-D' || a === '--delete') op = 'delete';
      else if (a === '-L' || a === '--dump') op = 'list';
      else if (['-s', '--src', '--orig-src', '-d', '--dst', '--orig-dst'].includes(a)) {
        const v = args[++i] ?? '';
        const addr = parseAddress(v);
        if (!addr) throw usage(`Bad parameter \`${v}'`);
        match[a.startsWith('-s') || a.includes('src') ? 'src' : 'dst'] = addr;
      } else if (a === '-f' || a === '--family') {
        const v = args[++i];
        if (v !== 'ipv4' && v !== 'ipv6') throw usage(`\`${v}' unsupported protocol`);
        family = v === 'ipv4' ? 4 : 6;
      } else throw usage(`fake kernel: option ${a} is not modelled`);
    }
    if (op === null) throw usage('no command specified');
    for (const m of [match.src, match.dst]) {
      if (!m) continue;
      if (family !== null && m.family !== family) throw usage('mismatched address family');
      family = m.family;
    }
    const hit = (f: Flow): boolean =>
      (family === null || f.family === family) && (!match.src || f.src === match.src.text) && (!match.dst || f.dst === match.dst.text);
    const hits = this.flowList.filter(hit);
    const stdout = hits.map((f) => `unknown  ${f.family === 4 ? 2 : 10} 0 src=${f.src} dst=${f.dst} src=${f.dst} dst=${f.src} mark=0 use=1\n`).join('');
    if (op === 'list') return stdout;
    this.flowList = this.flowList.filter((f) => !hit(f));
    // Exactly as the real tool: deleting nothing is exit status 1.
    if (hits.length === 0 && !loadingFile) throw new ToolFailure(`${CONNTRACK_BANNER}: 0 flow entries have been deleted.`);
    return stdout;
  }
}

const IPSET_COMMANDS = new Set(['create', 'add', 'del', 'test', 'flush', 'destroy', 'rename', 'swap']);

function checkSetName(name: string): void {
  if (name.length > MAX_SET_NAME) throw new IpsetError(`Syntax error: setname '${name}' is longer than ${MAX_SET_NAME} characters`);
}

function isBuiltinTarget(name: string): boolean {
  return BUILTIN_TARGETS.has(name) || /^[A-Z][A-Z0-9_]*$/.test(name);
}

function checkElementOptions(s: IpSetState, opts: string[]): void {
  for (let i = 0; i < opts.length; i += 2) {
    const o = opts[i]!;
    if (o === 'timeout' && s.timeout === null) throw new IpsetError('Timeout cannot be used: set was created without timeout support');
    if ((o === 'packets' || o === 'bytes') && !s.extensions.includes('counters'))
      throw new IpsetError('Packet/byte counters cannot be used: set was created without counter support');
    if (o === 'comment' && !s.extensions.includes('comment')) throw new IpsetError('Comment cannot be used: set was created without comment support');
    if (!['timeout', 'packets', 'bytes', 'comment'].includes(o)) throw new IpsetError(`Syntax error: Unknown argument: '${o}'`);
  }
}
