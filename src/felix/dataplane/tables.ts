/**
 * The iptables state of one address family, as today's Calico Felix keeps it
 * (its `iptables/table.go`): the chains Felix wants, what the kernel has,
 * and the chains that changed since the last apply. `apply()` writes only
 * changed chains, every table in one `iptables-restore --noflush` (each table
 * one transaction); after a failure the kernel's state is read again before
 * the next apply. A chain the kernel already has is edited in place by rule
 * number (`-R`, `-D`, `-I` on the middle between its longest common prefix
 * and suffix), never flushed, so the rules it keeps keep their packet
 * counters: an endpoint chain's or dispatch chain's final DROP counts denied
 * packets for as long as the chain exists (issue #16). It also counts which ipsets the kernel's rules reference,
 * so a set is destroyed only once no chain uses it.
 */
import type { Chain, Jump, Table } from './render/chains.js';
import type { Family } from './render/names.js';
import { CountedRule, IptablesState, TableChanges, chainEdits, renderIptablesRestore, setsReferenced } from './render/restore.js';
import type { IptablesDriver } from './drivers/iptables.js';

const TABLES: readonly Table[] = ['raw', 'nat', 'filter'];

const sameList = (a: readonly string[] | undefined, b: readonly string[]): boolean => a !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);

export class IptablesTables {
  /** What the kernel has; null: unknown, read before the next apply. */
  private actual: IptablesState | null = null;
  private readonly desired = new Map<Table, Map<string, string[]>>(TABLES.map((t) => [t, new Map()]));
  /** Chains whose desired state changed (written, or removed if no longer desired). */
  private readonly dirty = new Map<Table, Set<string>>(TABLES.map((t) => [t, new Set()]));
  private readonly jumps = new Map<string, { jump: Jump; wanted: boolean }>();
  private jumpsDirty = false;
  /** Set name → rules in the kernel that match on it. */
  private refs = new Map<string, number>();

  constructor(private readonly driver: IptablesDriver) {}

  get family(): Family {
    return this.driver.family;
  }

  setChain(table: Table, chain: Chain): void {
    const want = this.desired.get(table)!;
    if (sameList(want.get(chain.name), chain.rules)) return;
    want.set(chain.name, chain.rules);
    this.dirty.get(table)!.add(chain.name);
  }

  /** The chain goes on the next apply (if the kernel has it). */
  removeChain(table: Table, name: string): void {
    this.desired.get(table)!.delete(name);
    this.dirty.get(table)!.add(name);
  }

  /** Forgets a chain without touching the kernel: it is left as it is (a previous Felix's, kept until replaced). */
  leaveChain(table: Table, name: string): void {
    this.desired.get(table)!.delete(name);
    this.dirty.get(table)!.delete(name);
  }

  setJump(jump: Jump, wanted: boolean): void {
    const key = `${jump.table} ${jump.from} ${jump.rule}`;
    const known = this.jumps.get(key);
    if (known?.wanted === wanted) return;
    this.jumps.set(key, { jump, wanted });
    this.jumpsDirty = true;
  }

  /** The kernel's chains of a table, as last read or written (empty until the first read). */
  kernelChains(table: Table): ReadonlyMap<string, readonly string[]> {
    return this.actual?.get(table) ?? new Map();
  }

  isSetReferenced(name: string): boolean {
    return (this.refs.get(name) ?? 0) > 0;
  }

  /** The kernel's filter chains with their rule counters, read now (what is known of the kernel is neither used nor changed). */
  readCounters(): Promise<Map<string, CountedRule[]>> {
    return this.driver.readCounters();
  }

  /** Reads the kernel again before the next apply and compares every desired chain with it. */
  invalidate(): void {
    this.actual = null;
    for (const t of TABLES) for (const name of this.desired.get(t)!.keys()) this.dirty.get(t)!.add(name);
    this.jumpsDirty = true;
  }

  /** Reads the kernel if what is known of it was invalidated; after this, {@link apply} plans without waiting. */
  async readIfNeeded(): Promise<void> {
    if (this.actual === null) await this.read();
  }

  async read(): Promise<void> {
    this.actual = await this.driver.read();
    for (const t of TABLES) if (!this.actual.has(t)) this.actual.set(t, new Map());
    this.refs = new Map();
    for (const chains of this.actual.values()) for (const rules of chains.values()) this.count(rules, 1);
  }

  /** Writes what changed. Throws (and invalidates) on failure. */
  async apply(): Promise<void> {
    await this.readIfNeeded();
    const changes = TABLES.map((t) => this.plan(t));
    // Marked clean before the write: what changes while iptables-restore runs stays dirty for the next apply.
    for (const d of this.dirty.values()) d.clear();
    this.jumpsDirty = false;
    const text = renderIptablesRestore(changes);
    if (text !== '') {
      try {
        await this.driver.restore(text);
      } catch (err) {
        // Nothing was written: invalidate() marks every desired chain dirty; the planned removals it cannot know.
        for (const c of changes) for (const name of c.remove) this.dirty.get(c.table)!.add(name);
        this.invalidate();
        throw err;
      }
      for (const c of changes) this.record(c);
    }
  }

  private plan(table: Table): TableChanges {
    const have = this.actual!.get(table)!;
    const want = this.desired.get(table)!;
    const changes: TableChanges = { table, write: [], edit: [], remove: [], insertJumps: [], deleteJumps: [] };
    for (const name of this.dirty.get(table)!) {
      const rules = want.get(name);
      const kernel = have.get(name);
      if (rules) {
        // A chain the kernel has is edited in place (its final DROP, and that DROP's counter, stay); a new one is written whole.
        const edits = kernel ? chainEdits(name, kernel, rules) : null;
        if (edits) changes.edit.push(...edits);
        else changes.write.push({ name, rules });
      } else if (have.has(name)) {
        changes.remove.push(name);
      }
    }
    if (this.jumpsDirty) {
      for (const { jump, wanted } of this.jumps.values()) {
        if (jump.table !== table) continue;
        const count = (have.get(jump.from) ?? []).filter((r) => r === jump.rule).length;
        const target = wanted ? 1 : 0;
        if (count < target) changes.insertJumps.push(jump);
        for (let i = target; i < count; i++) changes.deleteJumps.push(jump);
      }
    }
    return changes;
  }

  /** Brings the cached kernel state (and set references) up to date with a committed change. */
  private record(c: TableChanges): void {
    const have = this.actual!.get(c.table)!;
    for (const chain of c.write) {
      this.count(have.get(chain.name) ?? [], -1);
      have.set(chain.name, [...chain.rules]);
      this.count(chain.rules, 1);
    }
    for (const e of c.edit) {
      const rules = have.get(e.chain)!;
      if (e.op !== 'insert') this.count([rules[e.index - 1]!], -1);
      if (e.op !== 'delete') this.count([e.rule], 1);
      if (e.op === 'replace') rules[e.index - 1] = e.rule;
      else if (e.op === 'delete') rules.splice(e.index - 1, 1);
      else rules.splice(e.index - 1, 0, e.rule);
    }
    for (const name of c.remove) {
      this.count(have.get(name) ?? [], -1);
      have.delete(name);
    }
    for (const j of c.deleteJumps) {
      const rules = have.get(j.from) ?? [];
      const i = rules.indexOf(j.rule);
      if (i >= 0) rules.splice(i, 1);
    }
    for (const j of c.insertJumps) have.set(j.from, [j.rule, ...(have.get(j.from) ?? [])]);
  }

  private count(rules: readonly string[], delta: number): void {
    for (const rule of rules) {
      if (!rule.includes('--match-set')) continue;
      for (const name of setsReferenced(rule)) {
        const n = (this.refs.get(name) ?? 0) + delta;
        if (n > 0) this.refs.set(name, n);
        else this.refs.delete(name);
      }
    }
  }
}
