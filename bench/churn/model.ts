/**
 * The churn benchmark's data: N endpoint slots on one host, each present or
 * not, each present one in one of G groups; a seeded random edit stream over
 * them (an absent endpoint appears, a present one vanishes or changes group),
 * written to the plugin's data directory one file per endpoint the way an
 * orchestrator would; and the kernel state Felix must reach for it.
 * Self-contained apart from the naming rule (src/common/endpoint-names.ts)
 * and the tests' seeded generator.
 */
import fs from 'node:fs';
import path from 'node:path';
import { defaultInterfaceName, endpointSuffix } from '../../src/common/endpoint-names.js';
import { formatEndpointSection } from '../../src/plugin/data.js';
import { seededRandom } from '../../test/support/fuzz.js';

export const HOST = 'churn-host';

export interface Slot {
  id: string;
  suffix: string;
  ifname: string;
  addr: string;
  mac: string;
}

export function slot(i: number): Slot {
  // The first 11 characters name the chains and interface (SPEC §3): unique per slot.
  const id = `ep-${String(i).padStart(6, '0')}-churn`;
  const hex = (i + 1).toString(16).padStart(4, '0');
  return {
    id,
    suffix: endpointSuffix(id),
    ifname: defaultInterfaceName('tap', id),
    addr: `192.168.${10 + Math.floor(i / 250)}.${1 + (i % 250)}`,
    mac: `ee:00:00:00:${hex.slice(0, 2)}:${hex.slice(2)}`,
  };
}

export type EditKind = 'appear' | 'vanish' | 'move';

export class ChurnModel {
  readonly slots: Slot[];
  /** slot index → its group (1..G), or undefined when absent. */
  private readonly groupOf: Array<number | undefined>;
  private readonly random: () => number;
  private readonly stagingDir: string;
  readonly counts: Record<EditKind, number> = { appear: 0, vanish: 0, move: 0 };
  /** ACLUPDATEs publishing every intermediate state would have sent, and the endpoints whose ACLs changed at least once. */
  intermediate = 0;
  readonly changed = new Set<number>();

  constructor(
    readonly n: number,
    readonly groups: number,
    private readonly dataDir: string,
    seed: number,
    /** Share of the slots present at the start. */
    presentShare = 0.8,
  ) {
    this.stagingDir = `${dataDir}.staging`;
    fs.mkdirSync(this.stagingDir, { recursive: true });
    this.random = seededRandom(seed);
    this.slots = Array.from({ length: n }, (_, i) => slot(i));
    this.groupOf = this.slots.map(() => (this.random() < presentShare ? this.randomGroup() : undefined));
  }

  /** Writes felix.txt and every present endpoint's file. */
  writeAll(): void {
    fs.writeFileSync(path.join(this.dataDir, 'felix.txt'), `[felix ${HOST}]\nip=127.0.0.1\nhost=${HOST}\n`);
    this.groupOf.forEach((g, i) => g !== undefined && this.writeEndpoint(i, g));
  }

  /** One random edit, applied to the model and the data directory. */
  edit(): EditKind {
    const i = Math.floor(this.random() * this.n);
    const old = this.groupOf[i];
    let kind: EditKind;
    let next: number | undefined;
    if (old === undefined) {
      kind = 'appear';
      next = this.randomGroup();
    } else if (this.random() < 0.5) {
      kind = 'vanish';
    } else {
      kind = 'move';
      next = 1 + ((old + Math.floor(this.random() * (this.groups - 1))) % this.groups);
    }
    this.groupOf[i] = next;
    if (next === undefined) fs.rmSync(this.file(i), { force: true });
    else this.writeEndpoint(i, next);
    // Whose ACLs this changes: every member of each group whose membership changed, and one that left every group (deny all).
    const affected = new Set<number>();
    for (const g of [old, next]) if (g !== undefined) for (const m of this.membersOf(g)) affected.add(m);
    if (next === undefined) affected.add(i);
    this.intermediate += affected.size;
    for (const m of affected) this.changed.add(m);
    this.counts[kind]++;
    return kind;
  }

  present(): Array<{ slot: Slot; group: number }> {
    return this.groupOf.flatMap((g, i) => (g === undefined ? [] : [{ slot: this.slots[i]!, group: g }]));
  }

  membersOf(group: number): number[] {
    return this.groupOf.flatMap((g, i) => (g === group ? [i] : []));
  }

  private randomGroup(): number {
    return 1 + Math.floor(this.random() * this.groups);
  }

  private file(i: number): string {
    return path.join(this.dataDir, `${this.slots[i]!.id}.txt`);
  }

  /** Written aside (outside the data directory, so the plugin never sees a temp file), then renamed in. */
  private writeEndpoint(i: number, group: number): void {
    const s = this.slots[i]!;
    const tmp = path.join(this.stagingDir, `${s.id}.txt`);
    fs.writeFileSync(tmp, formatEndpointSection({ id: s.id, ip: s.addr, mac: s.mac, host: HOST, group: `group${group}` }));
    fs.renameSync(tmp, this.file(i));
  }
}
