/**
 * The ipsets Felix owns (SPEC §6 "Shared sets (v2)"), as today's Calico
 * Felix keeps them (its `ipsets/ipsets.go`): sets are named by their
 * content, so endpoints with equal members share one, and a set never
 * changes once made. Users acquire and release sets; `applyCreates()` makes
 * the wanted sets that are missing (filled under a temporary name, then
 * renamed: `ipset restore` is not transactional), `applyDeletes()` destroys
 * the felix- sets nobody wants and no kernel rule references.
 */
import type { IpSet } from './render/chains.js';
import { OWNED_PREFIX, contentHash, contentSetHash } from './render/names.js';
import { SetWrite, ipsetErrorLine, renderIpsetRestore } from './render/restore.js';
import type { IpsetDriver } from './drivers/ipsets.js';

interface KernelSet {
  type: string;
  /** Its members hash to its name: what Felix made, reusable by name. */
  verified: boolean;
}

export class IpsetManager {
  private readonly wanted = new Map<string, { set: IpSet; users: number }>();
  /** What the kernel has (felix- sets only); null: unknown, read before the next apply. */
  private actual: Map<string, KernelSet> | null = null;
  /** Wanted sets that may not exist (verified) yet. */
  private readonly toCreate = new Set<string>();
  /** Kernel sets that may have lost their last user. */
  private readonly toDestroy = new Set<string>();

  constructor(private readonly driver: IpsetDriver) {}

  acquire(set: IpSet): void {
    const w = this.wanted.get(set.name);
    if (w) {
      w.users++;
      return;
    }
    this.wanted.set(set.name, { set, users: 1 });
    this.toCreate.add(set.name);
  }

  release(name: string): void {
    const w = this.wanted.get(name);
    if (!w) return;
    if (--w.users > 0) return;
    this.wanted.delete(name);
    this.toCreate.delete(name);
    this.toDestroy.add(name);
  }

  invalidate(): void {
    this.actual = null;
  }

  async read(): Promise<void> {
    const sets = await this.driver.read();
    this.actual = new Map();
    for (const [name, s] of sets) {
      if (!name.startsWith(OWNED_PREFIX)) continue;
      const hash = contentSetHash(name);
      const verified = hash !== null && hash === contentHash(s.type, [...s.members].sort());
      this.actual.set(name, { type: s.type, verified });
    }
    for (const name of this.wanted.keys()) if (!this.actual.get(name)?.verified) this.toCreate.add(name);
    for (const name of this.actual.keys()) if (!this.wanted.has(name)) this.toDestroy.add(name);
  }

  /**
   * Makes every wanted set that is missing or untrusted, in one `ipset
   * restore` (more only after a failure), which also destroys the sets an
   * earlier apply left unused (one process fewer per apply under churn).
   * Returns the sets that could not be made, with the reason; the others
   * are in place. A set that could not be destroyed stays for a later try.
   */
  async applyCreates(isReferenced: (name: string) => boolean): Promise<Map<string, string>> {
    if (this.actual === null) await this.read();
    const failed = new Map<string, string>();
    let pending = [...this.toCreate].filter((n) => !this.actual!.get(n)?.verified);
    this.toCreate.clear();
    let destroy = this.destroyable(isReferenced);
    let destroyFailed = false;
    while (pending.length > 0 || destroy.length > 0) {
      const writes: SetWrite[] = [];
      for (const name of pending) {
        const set = this.wanted.get(name)!.set;
        const found = this.actual!.get(name);
        if (found && found.type !== set.type) {
          // A set of another type squats the name (swap needs equal types): read again before retrying.
          failed.set(name, `a set named ${name} of type ${found.type} is in the way`);
          continue;
        }
        writes.push({ set, replace: found !== undefined });
      }
      const { text, lastLine } = renderIpsetRestore(writes, destroy);
      try {
        await this.driver.restore(text);
        for (const w of writes) this.actual!.set(w.set.name, { type: w.set.type, verified: true });
        this.destroyed(destroy);
        pending = [];
        destroy = [];
      } catch (err) {
        const line = ipsetErrorLine((err as Error).message);
        if (line === null) {
          // Nothing tells which line failed: trust nothing, read the kernel again next time.
          for (const w of writes) failed.set(w.set.name, (err as Error).message);
          this.invalidate();
          return failed;
        }
        pending = [];
        for (const w of writes) {
          const last = lastLine.get(w.set.name)!;
          const first = last - w.set.members.length - (w.replace ? 4 : 3) + 1;
          if (last < line) this.actual!.set(w.set.name, { type: w.set.type, verified: true });
          else if (first <= line) failed.set(w.set.name, (err as Error).message);
          else pending.push(w.set.name);
        }
        this.destroyed(destroy.filter((n) => lastLine.get(n)! < line));
        if (destroy.some((n) => lastLine.get(n) === line)) destroyFailed = true;
        destroy = destroy.filter((n) => lastLine.get(n)! > line);
      }
    }
    if (failed.size > 0 || destroyFailed) this.invalidate();
    return failed;
  }

  /** Destroys the felix- sets nobody wants and no kernel rule references; throws if the kernel refused. */
  async applyDeletes(isReferenced: (name: string) => boolean): Promise<void> {
    if (this.actual === null) return;
    const destroy = this.destroyable(isReferenced);
    if (destroy.length === 0) return;
    try {
      await this.driver.restore(renderIpsetRestore([], destroy).text);
    } catch (err) {
      this.invalidate();
      throw err;
    }
    this.destroyed(destroy);
  }

  /** The sets that lost their last user and that no kernel rule references any more. */
  private destroyable(isReferenced: (name: string) => boolean): string[] {
    const out: string[] = [];
    for (const name of this.toDestroy) {
      if (this.wanted.has(name) || !this.actual!.has(name)) this.toDestroy.delete(name);
      else if (!isReferenced(name)) out.push(name);
    }
    return out;
  }

  private destroyed(names: string[]): void {
    for (const name of names) {
      this.actual!.delete(name);
      this.toDestroy.delete(name);
    }
  }

  /** Sets left for later destruction (referenced by chains a previous run left). */
  get destroyPending(): number {
    return this.toDestroy.size;
  }
}
