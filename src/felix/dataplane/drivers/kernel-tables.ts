/**
 * The raw facts about the kernel tables Felix depends on (issue #15): how
 * full the neighbour tables (IPv4 ARP, IPv6 NDP) and the conntrack table are,
 * and their limits, as far as the namespace Felix runs in can see them.
 *
 * What Linux shows where (checked on 6.18):
 * * `/proc/net/stat/arp_cache` and `ndisc_cache` exist only in the initial
 *   (root) namespace; their `entries` column is the table's count over every
 *   namespace (the neighbour tables are kernel-wide). In a child namespace
 *   Felix counts its own namespace's entries with an rtnetlink dump instead.
 * * `net/ipv{4,6}/neigh/default/gc_thresh{1,2,3}` are kernel-wide and exist
 *   only in the root namespace.
 * * The `entries` of /proc/net/stat count permanent entries too (Felix's own,
 *   one per endpoint address), which current kernels exempt from gc_thresh3:
 *   the share of the limit shown is an upper bound, so a warning comes early
 *   rather than late.
 * * `net/netfilter/nf_conntrack_max` is kernel-wide (read-only in a child
 *   namespace); `nf_conntrack_count` is the namespace's own count, and the
 *   kernel compares each namespace's count with the max. Both are absent
 *   while nf_conntrack is not loaded.
 */
import fs from 'node:fs';
import type { Family } from '../render/names.js';
import type { Netlink } from './netlink.js';
import type { Sysctl } from './sysctl.js';

export interface NeighbourThresholds {
  thresh1: number;
  thresh2: number;
  thresh3: number;
}

/** One reading of the tables. */
export interface KernelTableFacts {
  /** The root namespace: neighbour counts are kernel-wide and the table-wide sysctls are here. */
  root: boolean;
  /**
   * Per family: the entry count, kernel-wide (`kernelWide`, from
   * /proc/net/stat) or of this namespace only (an rtnetlink dump), and
   * gc_thresh1-3 where visible.
   */
  neighbours: Record<Family, { entries: number; kernelWide: boolean; thresholds: NeighbourThresholds | null }>;
  /** This namespace's conntrack entries and the kernel's nf_conntrack_max; null while nf_conntrack is not loaded. */
  conntrack: { entries: number; max: number } | null;
}

/** Where the facts come from; a fake can stand in for it. */
export interface KernelTableReader {
  read(): Promise<KernelTableFacts>;
}

export const neighbourSysctl = (family: Family, n: 1 | 2 | 3): string => `net/ipv${family}/neigh/default/gc_thresh${n}`;
export const CONNTRACK_MAX = 'net/netfilter/nf_conntrack_max';
export const CONNTRACK_COUNT = 'net/netfilter/nf_conntrack_count';
const STAT_FILE: Record<Family, string> = { 4: 'arp_cache', 6: 'ndisc_cache' };

/**
 * The table's entry count from `/proc/net/stat/arp_cache` or `ndisc_cache`:
 * a header line naming the columns, then one row of hex numbers per CPU,
 * whose `entries` column is the table's count (the same in every row).
 * Throws on text it does not recognise.
 */
export function parseNeighbourStat(text: string): number {
  const [header, first] = text.split('\n').filter((l) => l.trim() !== '');
  const column = header?.trim().split(/\s+/).indexOf('entries') ?? -1;
  const cell = first?.trim().split(/\s+/)[column];
  if (column < 0 || cell === undefined || !/^[0-9a-f]+$/i.test(cell)) throw new Error(`unexpected neighbour statistics: ${JSON.stringify(text.slice(0, 80))}`);
  return parseInt(cell, 16);
}

const wholeNumber = (key: string, raw: string): number => {
  if (!/^\d+$/.test(raw)) throw new Error(`/proc/sys/${key}: expected a whole number, read ${JSON.stringify(raw)}`);
  return Number(raw);
};

/**
 * The real reader: /proc/net/stat (root namespace) or an rtnetlink dump
 * (child namespace) for neighbour counts, /proc/sys for the rest.
 */
export class ProcKernelTables implements KernelTableReader {
  constructor(
    private readonly sysctl: Sysctl,
    private readonly netlink: Netlink,
    /** The text of `/proc/net/stat/NAME`, or null if there is none (replaceable in tests). */
    private readonly readStat: (name: string) => string | null = readProcNetStat,
  ) {}

  async read(): Promise<KernelTableFacts> {
    const stats = { 4: this.readStat(STAT_FILE[4]), 6: this.readStat(STAT_FILE[6]) };
    // Only the root namespace has them (a kernel without IPv6 lacks ndisc_cache even there).
    const root = stats[4] !== null || stats[6] !== null;
    const counted = stats[4] !== null && stats[6] !== null ? null : await this.netlink.neighbourCounts();
    const neighbours = {} as KernelTableFacts['neighbours'];
    for (const family of [4, 6] as const) {
      const stat = stats[family];
      neighbours[family] = {
        entries: stat !== null ? parseNeighbourStat(stat) : counted![family],
        kernelWide: stat !== null,
        thresholds: await this.thresholds(family),
      };
    }
    const max = await this.number(CONNTRACK_MAX);
    const count = await this.number(CONNTRACK_COUNT);
    return { root, neighbours, conntrack: max === null || count === null ? null : { entries: count, max } };
  }

  private async number(key: string): Promise<number | null> {
    const raw = await this.sysctl.read(key);
    return raw === null ? null : wholeNumber(key, raw);
  }

  private async thresholds(family: Family): Promise<NeighbourThresholds | null> {
    const [thresh1, thresh2, thresh3] = await Promise.all(([1, 2, 3] as const).map((n) => this.number(neighbourSysctl(family, n))));
    return thresh1 == null || thresh2 == null || thresh3 == null ? null : { thresh1, thresh2, thresh3 };
  }
}

function readProcNetStat(name: string): string | null {
  try {
    return fs.readFileSync(`/proc/net/stat/${name}`, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}
