/**
 * The kernel's neighbour tables and the lab (issue #15). The tables and their
 * limits (`gc_thresh3`) are one per kernel, shared by every network
 * namespace and settable only in the root namespace, so a lab of many
 * namespaces meets the machine's limit long before any one host would: a
 * container whose IPv4 default route is on-link keeps an entry for every
 * peer it talks to, and every host one per fabric peer. Past the limit new
 * entries fail (`sendmsg: No buffer space available`) and pairs that the
 * policy allows cannot talk. The lab never changes the root namespace; it
 * refuses to grow past the limit and says which command raises it.
 */
import { neighbourSysctl } from '../felix/dataplane/drivers/kernel-tables.js';
import { Sysctl, procSysctl } from '../felix/dataplane/drivers/sysctl.js';

export interface LabSize {
  hosts: number;
  /** Containers with an IPv4 address, and with an IPv6 address (a dual-stack one counts in both). */
  ipv4Containers: number;
  ipv6Containers: number;
}

/**
 * Dynamic neighbour entries the lab may hold at once, per family, when every
 * pair talks (the matrix, `status`): hosts learn each fabric peer; an IPv4
 * container (default route `dev eth0`, proxy ARP on the host) learns every
 * peer, and its host learns it; an IPv6 container (default via `fe80::1`)
 * learns only its gateway, and its host its link-local address. Felix's
 * permanent entries are exempt from the limits (Linux ≥ 4.19) and not counted.
 */
export function labNeighbourEntries(size: LabSize): Record<4 | 6, number> {
  const fabric = size.hosts * Math.max(0, size.hosts - 1);
  return {
    4: fabric + size.ipv4Containers * Math.max(0, size.ipv4Containers - 1) + size.ipv4Containers,
    6: fabric + 2 * size.ipv6Containers,
  };
}

/** gc_thresh3 per family, as the root namespace shows it; null where it cannot be read (the lab itself runs in a namespace). */
export type NeighbourLimits = Record<4 | 6, number | null>;

/** Read through Felix's sysctl reader: the lab runs where Felix would (root namespace, or a namespace of its own). */
export async function readNeighbourLimits(sysctl: Pick<Sysctl, 'read'> = procSysctl): Promise<NeighbourLimits> {
  const one = async (family: 4 | 6): Promise<number | null> => {
    const v = Number(await sysctl.read(neighbourSysctl(family, 3)).catch(() => null));
    return Number.isInteger(v) && v > 0 ? v : null;
  };
  return { 4: await one(4), 6: await one(6) };
}

/** A limit with room for twice what is needed, in steps of 1024. */
const roomFor = (need: number): number => Math.ceil((2 * need) / 1024) * 1024;

/**
 * Why a lab of `size` does not fit the machine's limits, as one line ending
 * in the command that makes it fit; null when it fits (or the limits are not
 * visible).
 */
export function neighbourLimitProblem(size: LabSize, limits: NeighbourLimits): string | null {
  const need = labNeighbourEntries(size);
  const short = ([4, 6] as const).filter((f) => limits[f] !== null && need[f] > limits[f]);
  if (short.length === 0) return null;
  const what = short.map((f) => `about ${need[f]} IPv${f} neighbour entries (net.ipv${f}.neigh.default.gc_thresh3 = ${limits[f]})`).join(' and ');
  const settings = short.flatMap((f) => [
    `net.ipv${f}.neigh.default.gc_thresh2=${roomFor(need[f]) / 2}`,
    `net.ipv${f}.neigh.default.gc_thresh3=${roomFor(need[f])}`,
  ]);
  return (
    `a lab of ${size.hosts} hosts, ${size.ipv4Containers} IPv4 and ${size.ipv6Containers} IPv6 containers needs ${what}, more than this kernel allows ` +
    `(the table is one per kernel, shared by every namespace; the lab does not change the machine's settings): run  sysctl -w ${settings.join(' ')}`
  );
}
