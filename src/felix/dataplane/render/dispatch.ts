/**
 * The dispatch chains as a tree keyed by interface name (SPEC §6, "Dispatch
 * (v2)"). Pure data: no I/O, no drivers. Rules are written exactly as
 * `iptables-save` prints them, without the leading `-A <chain>`.
 *
 * Why a tree: felix-FROM-ENDPOINT / felix-TO-ENDPOINT with one rule per
 * endpoint make a packet walk up to N rules. Splitting the interfaces by their
 * next character once a chain would hold more than DISPATCH_LEAF_MAX of them
 * keeps every chain short and a packet's walk O(log N).
 */
import { CHAIN_FROM_ENDPOINT, CHAIN_TO_ENDPOINT } from './names.js';

/** What one interface's dispatch leads to: its endpoint chains. */
export interface DispatchTarget {
  from: string;
  to: string;
}

/** A chain lists its interfaces one by one while it has at most this many below it. */
export const DISPATCH_LEAF_MAX = 16;

/**
 * The chain names for a subtree whose interfaces all start with `path`.
 * A subtree gets a chain only when two distinct interface names (≤ 15
 * characters, Linux's limit) lie below it, so `path` has at most 14
 * characters and the name at most 14 + 14 = 28, iptables' limit.
 */
export function dispatchChainNames(path: string): { from: string; to: string } {
  return { from: `felix-FROM-IF-${path}`, to: `felix-TO-IF-${path}` };
}

/** One trie node: the interfaces whose names start with `path`. */
class Node {
  readonly children = new Map<string, Node>();
  /** The interface named exactly `path`, if any. */
  target: DispatchTarget | null = null;
  /** Interfaces at or below this node. */
  count = 0;
  /** Something at or below changed since the last flush. */
  dirty = false;
  /** The rules of the last flush, or null if the node was not a chain then. */
  from: string[] | null = null;
  to: string[] | null = null;

  constructor(readonly path: string) {}

  sortedChildren(): Node[] {
    return [...this.children.keys()].sort().map((c) => this.children.get(c)!);
  }
}

interface Rendered {
  from: string[];
  to: string[];
  /** True if the node's children with two or more interfaces are chains of their own. */
  split: boolean;
}

const LEAF_RE = /^(?:-i (\S+) -g (felix-from-\S+)|-o (\S+) -g (felix-to-\S+))$/;

/**
 * The dispatch chains of one family as a trie over interface names, updated
 * one interface at a time and rendered incrementally.
 *
 * Use: `set()` each interface's target (or null to remove it) as endpoints
 * change, then `flush()` to get only the chains that changed since the last
 * flush (write those, delete the null ones); `chains()` renders the whole tree.
 * The root chains (felix-FROM-ENDPOINT / felix-TO-ENDPOINT) always exist.
 *
 * Not for: I/O or ordering the writes. Whoever writes the chains must create
 * a new child chain before (or in the same commit as) the rule that jumps to
 * it, and delete a chain only after the rule jumping to it is gone — both are
 * among the chains one flush() returns.
 */
export class DispatchTree {
  private readonly root: Node;

  /** @param interfacePrefix every interface name starts with it (e.g. 'tap'); callers guarantee it. */
  constructor(private readonly interfacePrefix: string) {
    this.root = new Node(interfacePrefix);
    this.root.dirty = true; // so the first flush writes the (empty) root chains
  }

  /** Adds, changes (target: object) or removes (null) one interface's entry. O(name length). */
  set(ifname: string, target: DispatchTarget | null): void {
    if (!ifname.startsWith(this.interfacePrefix)) {
      throw new Error(`dispatch: interface ${ifname} lacks the prefix ${this.interfacePrefix}`);
    }
    const path: Node[] = [this.root];
    let node = this.root;
    for (let i = this.interfacePrefix.length; i < ifname.length; i++) {
      const next = ifname[i]!;
      let child = node.children.get(next);
      if (!child) {
        if (!target) return; // removing a name that is not there
        child = new Node(ifname.slice(0, i + 1));
        node.children.set(next, child);
      }
      path.push(child);
      node = child;
    }
    const old = node.target;
    if (old === target || (old && target && old.from === target.from && old.to === target.to)) return;
    node.target = target;
    const delta = !old ? 1 : !target ? -1 : 0;
    for (const n of path) {
      n.count += delta;
      n.dirty = true;
    }
    // Nodes left empty stay until the next flush, which deletes their chains and prunes them.
  }

  get size(): number {
    return this.root.count;
  }

  /** Every interface the tree holds. */
  interfaces(): string[] {
    const out: string[] = [];
    const walk = (n: Node): void => {
      if (n.target) out.push(n.path);
      for (const c of n.children.values()) walk(c);
    };
    walk(this.root);
    return out;
  }

  /**
   * The chains that changed since the last flush: name → rules (write it) or
   * null (delete it). Root chains are never deleted (an empty tree renders
   * them as just `-j DROP`). Visits only dirty nodes and nodes whose being a
   * chain changed, so the cost follows what was set, not the tree's size.
   */
  flush(): Map<string, string[] | null> {
    const out = new Map<string, string[] | null>();
    this.update(this.root, true, out);
    return out;
  }

  /** The whole tree as chains (for tests and for full re-reads): name → rules. */
  chains(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    const walk = (node: Node): void => {
      const r = this.render(node);
      const names = this.names(node);
      out.set(names.from, r.from);
      out.set(names.to, r.to);
      if (r.split) for (const child of node.sortedChildren()) if (child.count >= 2) walk(child);
    };
    walk(this.root);
    return out;
  }

  /**
   * Parses a dispatch leaf rule back (as read from iptables-save):
   * `-i tapX -g felix-from-S` → { ifname: 'tapX', direction: 'from', target: 'felix-from-S' };
   * null for anything else (tree rules such as `-i tapa+ -g felix-FROM-IF-tapa`, `-j DROP`).
   */
  static parseLeafRule(rule: string): { ifname: string; direction: 'from' | 'to'; target: string } | null {
    const m = LEAF_RE.exec(rule);
    if (!m) return null;
    const [ifname, direction, target] = m[1] !== undefined ? [m[1], 'from' as const, m[2]!] : [m[3]!, 'to' as const, m[4]!];
    return ifname.endsWith('+') ? null : { ifname, direction, target };
  }

  private names(node: Node): { from: string; to: string } {
    return node === this.root ? { from: CHAIN_FROM_ENDPOINT, to: CHAIN_TO_ENDPOINT } : dispatchChainNames(node.path);
  }

  /**
   * Brings `node`'s subtree up to date, recording changed chains in `out`.
   * `isChain`: whether the node should be a chain now (decided by its parent).
   */
  private update(node: Node, isChain: boolean, out: Map<string, string[] | null>): void {
    // Nothing below changed and the node is still (not) a chain: its chains and its children's are as flushed.
    if (!node.dirty && isChain === (node.from !== null)) return;
    const names = this.names(node);
    let split = false;
    if (isChain) {
      const r = this.render(node);
      split = r.split;
      if (!sameRules(node.from, r.from)) out.set(names.from, r.from);
      if (!sameRules(node.to, r.to)) out.set(names.to, r.to);
      node.from = r.from;
      node.to = r.to;
    } else if (node.from !== null) {
      out.set(names.from, null);
      out.set(names.to, null);
      node.from = node.to = null;
    }
    // A child is a chain only below a split chain and with two or more interfaces;
    // a non-chain node's descendants are not chains either.
    for (const [c, child] of node.children) {
      this.update(child, split && child.count >= 2, out);
      if (child.count === 0) node.children.delete(c);
    }
    node.dirty = false;
  }

  /** The rules of the chain for `node` (see SPEC §6 and the module comment). */
  private render(node: Node): Rendered {
    const from: string[] = [];
    const to: string[] = [];
    const leaf = (ifname: string, t: DispatchTarget): void => {
      from.push(`-i ${ifname} -g ${t.from}`);
      to.push(`-o ${ifname} -g ${t.to}`);
    };
    const split = node.count > DISPATCH_LEAF_MAX;
    if (!split) {
      // Pre-order over sorted children lists the names in sorted order (a prefix sorts first).
      const all = (n: Node): void => {
        if (n.target) leaf(n.path, n.target);
        for (const child of n.sortedChildren()) if (child.count > 0) all(child);
      };
      all(node);
    } else {
      // The exact name first: the wildcards after it must not catch it.
      if (node.target) leaf(node.path, node.target);
      for (const child of node.sortedChildren()) {
        if (child.count === 1) {
          const only = single(child);
          leaf(only.path, only.target!);
        } else if (child.count >= 2) {
          const names = dispatchChainNames(child.path);
          from.push(`-i ${child.path}+ -g ${names.from}`);
          to.push(`-o ${child.path}+ -g ${names.to}`);
        }
      }
    }
    from.push('-j DROP');
    to.push('-j DROP');
    return { from, to, split };
  }
}

/** The node holding the one interface below `node` (node.count === 1). */
function single(node: Node): Node {
  let n = node;
  while (!n.target) n = [...n.children.values()].find((c) => c.count > 0)!;
  return n;
}

function sameRules(a: string[] | null, b: string[]): boolean {
  return a !== null && a.length === b.length && a.every((r, i) => r === b[i]);
}
