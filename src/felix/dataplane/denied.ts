/**
 * Denied-packet counts (issue #16), from the kernel's rule counters as
 * `iptables-save -c` prints them: per endpoint, direction and family, the
 * packets of the DROP rules of its chains (`felix-to-S`: inbound, traffic
 * to the endpoint; `felix-from-S`: outbound, its anti-spoofing DROP
 * included), and under endpoint `""` the DROPs of the dispatch chains
 * (traffic from or to a tap interface that no endpoint owns; the FROM tree
 * is outbound, the TO tree inbound). Pure: readings in, totals out.
 *
 * The table manager edits chains in place, so a DROP rule keeps its counter
 * while its chain exists. A chain that goes (an endpoint that loses its last
 * address of a family, a failure that takes its chains out, a dispatch
 * child chain the tree no longer needs) or is reset takes its count with it;
 * what it had counted at the last reading is carried over, so a total only
 * ever grows while its endpoint exists. Packets counted between the last
 * reading and such a loss are not seen.
 */
import type { CountedRule } from './render/restore.js';
import { isDropRule } from './render/restore.js';
import { CHAIN_FROM_ENDPOINT, CHAIN_TO_ENDPOINT, FAMILIES, Family } from './render/names.js';
import { dispatchChainNames } from './render/dispatch.js';

/** `inbound`: traffic to the endpoint (felix-to-S); `outbound`: traffic from it (felix-from-S). */
export type DeniedDirection = 'inbound' | 'outbound';

/** Packets the DROP rules of one endpoint's chains (endpoint `""`: the dispatch chains) denied in one direction and family. */
export interface DeniedCount {
  endpoint: string;
  direction: DeniedDirection;
  family: Family;
  packets: number;
}

/** One family's filter table as read: chain → its rules with their counters. */
export type ChainCounters = ReadonlyMap<string, readonly CountedRule[]>;

const FROM_TREE = dispatchChainNames('').from;
const TO_TREE = dispatchChainNames('').to;

/**
 * Whose denied packets a chain's DROPs count: an endpoint's chains by their
 * suffix (`endpoints`: suffix → endpoint id), the dispatch chains as
 * endpoint `""`; null for any other chain (host chains, a stale endpoint's).
 */
export function deniedOwner(chain: string, endpoints: ReadonlyMap<string, string>): { endpoint: string; direction: DeniedDirection } | null {
  if (chain === CHAIN_FROM_ENDPOINT || chain.startsWith(FROM_TREE)) return { endpoint: '', direction: 'outbound' };
  if (chain === CHAIN_TO_ENDPOINT || chain.startsWith(TO_TREE)) return { endpoint: '', direction: 'inbound' };
  const m = /^felix-(to|from)-(.+)$/.exec(chain);
  const endpoint = m ? endpoints.get(m[2]!) : undefined;
  return endpoint === undefined ? null : { endpoint, direction: m![1] === 'to' ? 'inbound' : 'outbound' };
}

/** The packets of a chain's DROP rules. */
export const droppedBy = (rules: readonly CountedRule[]): number => rules.reduce((n, r) => (isDropRule(r.rule) ? n + r.packets : n), 0);

const ownerKey = (endpoint: string, direction: DeniedDirection): string => `${direction} ${endpoint}`;
const parseKey = (key: string): { endpoint: string; direction: DeniedDirection } => {
  const space = key.indexOf(' ');
  return { direction: key.slice(0, space) as DeniedDirection, endpoint: key.slice(space + 1) };
};

/**
 * Totals that only grow, reading after reading (see the file comment).
 * Feed it every reading in order with {@link update}; {@link forget} an
 * endpoint when it goes, so one of the same id later starts from 0.
 */
export class DeniedTotals {
  /** Per family: chain → its owner and what its DROPs had counted at the last reading. */
  private readonly last: Record<Family, Map<string, { owner: string; packets: number }>> = { 4: new Map(), 6: new Map() };
  /** Per family: owner → what its chains that went (or were reset) had counted. */
  private readonly carried: Record<Family, Map<string, number>> = { 4: new Map(), 6: new Map() };

  /**
   * One reading of both families' filter tables; `endpoints` maps the chain
   * suffix of every endpoint that exists now to its id. Returns a count for
   * each endpoint (and direction) that has chains in a family or counted in
   * it before, and always the dispatch chains' (`""`), sorted.
   */
  update(readings: Record<Family, ChainCounters>, endpoints: ReadonlyMap<string, string>): DeniedCount[] {
    const live = new Set(endpoints.values()).add('');
    const out: DeniedCount[] = [];
    for (const family of FAMILIES) {
      const seen = new Map<string, { owner: string; packets: number }>();
      for (const [chain, rules] of readings[family]) {
        const owner = deniedOwner(chain, endpoints);
        if (owner) seen.set(chain, { owner: ownerKey(owner.endpoint, owner.direction), packets: droppedBy(rules) });
      }
      const carried = this.carried[family];
      for (const [chain, before] of this.last[family]) {
        const now = seen.get(chain);
        // Gone, reset, or now another endpoint's: what it had counted stays its owner's.
        if (!now || now.owner !== before.owner || now.packets < before.packets) carried.set(before.owner, (carried.get(before.owner) ?? 0) + before.packets);
      }
      for (const key of carried.keys()) if (!live.has(parseKey(key).endpoint)) carried.delete(key);
      this.last[family] = seen;
      const totals = new Map<string, number>([[ownerKey('', 'inbound'), 0], [ownerKey('', 'outbound'), 0], ...carried]);
      for (const s of seen.values()) totals.set(s.owner, (totals.get(s.owner) ?? 0) + s.packets);
      for (const [key, packets] of totals) out.push({ ...parseKey(key), family, packets });
    }
    return out.sort((a, b) =>
      a.endpoint < b.endpoint ? -1 : a.endpoint > b.endpoint ? 1 : a.direction < b.direction ? -1 : a.direction > b.direction ? 1 : a.family - b.family,
    );
  }

  /** The endpoint is gone: nothing it counted is carried any more. */
  forget(endpoint: string): void {
    for (const family of FAMILIES) {
      for (const [chain, s] of this.last[family]) if (parseKey(s.owner).endpoint === endpoint) this.last[family].delete(chain);
      for (const key of this.carried[family].keys()) if (parseKey(key).endpoint === endpoint) this.carried[family].delete(key);
    }
  }
}

/** Per endpoint, both families summed: what /status and calico-status show. */
export function deniedByEndpoint(counts: readonly DeniedCount[]): Map<string, { inbound: number; outbound: number }> {
  const out = new Map<string, { inbound: number; outbound: number }>();
  for (const c of counts) {
    const row = out.get(c.endpoint) ?? { inbound: 0, outbound: 0 };
    row[c.direction] += c.packets;
    out.set(c.endpoint, row);
  }
  return out;
}
