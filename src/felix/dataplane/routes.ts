/**
 * Routes, permanent neighbour entries and sysctls of endpoint interfaces
 * (SPEC §6 "Per endpoint"): one route and one neighbour dump per apply, then
 * per interface only the difference. Never touches an interface without the
 * endpoint prefix.
 */
import type { Logger } from 'pino';
import type { HostRoute, LinkState, NeighbourEntry, Netlink } from './drivers/netlink.js';
import type { Sysctl } from './drivers/sysctl.js';
import { FAMILIES, Family } from './render/names.js';

/** What one endpoint wants on its interface. */
export interface EndpointRoutes {
  id: string;
  ifname: string;
  mac: string;
  addrs: Record<Family, string[]>;
  enabled: boolean;
}

const CONCURRENCY = 64;

/** Runs `fn` over `items`, at most `limit` at a time. */
async function forEachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function groupBy<T, K>(items: T[], key: (t: T) => K): Map<K, T[]> {
  const m = new Map<K, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = m.get(k);
    if (list) list.push(item);
    else m.set(k, [item]);
  }
  return m;
}

export class RouteManager {
  /** Interface name → the ifindex whose sysctls were set, so a re-created interface gets them again. */
  private readonly sysctlIfindex = new Map<string, number>();

  constructor(private readonly netlink: Netlink, private readonly sysctl: Sysctl, private readonly log: Logger) {}

  /**
   * Brings each endpoint's interface to its wanted routes and neighbours
   * (none while disabled or down), and clears interfaces no endpoint owns
   * any more. Returns the endpoints that failed, with their errors.
   */
  async apply(work: { ep: EndpointRoutes; link: LinkState | undefined }[], cleared: LinkState[]): Promise<Map<string, Error>> {
    const failed = new Map<string, Error>();
    if (work.length === 0 && cleared.length === 0) return failed;
    let routes: HostRoute[];
    let neighbours: NeighbourEntry[];
    try {
      [routes, neighbours] = await Promise.all([this.netlink.hostRoutes(), this.netlink.neighbours()]);
    } catch (err) {
      for (const { ep } of work) failed.set(ep.id, err as Error);
      return failed;
    }
    const routesByIf = groupBy(routes, (r) => r.ifindex);
    const neighByIf = groupBy(neighbours, (n) => n.ifindex);
    await forEachLimited(work, CONCURRENCY, async ({ ep, link }) => {
      try {
        if (link) await this.reconcile(ep, link, routesByIf.get(link.index) ?? [], neighByIf.get(link.index) ?? []);
      } catch (err) {
        failed.set(ep.id, err as Error);
      }
    });
    for (const link of cleared) {
      try {
        await this.clear(link, routesByIf.get(link.index) ?? [], neighByIf.get(link.index) ?? []);
      } catch (err) {
        this.log.error({ err, interface: link.name }, 'deleting routes of a removed endpoint failed');
      }
    }
    return failed;
  }

  /** The addresses routed to an interface now (for conntrack cleanup of interfaces nobody owns). */
  async routedTo(links: LinkState[]): Promise<string[]> {
    const indexes = new Set(links.map((l) => l.index));
    return (await this.netlink.hostRoutes()).filter((r) => indexes.has(r.ifindex)).map((r) => r.dst);
  }

  forget(ifname: string): void {
    this.sysctlIfindex.delete(ifname);
  }

  private async reconcile(ep: EndpointRoutes, link: LinkState, routes: HostRoute[], neighbours: NeighbourEntry[]): Promise<void> {
    const active = ep.enabled && link.up;
    const wanted = active ? FAMILIES.flatMap((family) => ep.addrs[family].map((dst) => ({ family, dst }))) : [];
    const wantedRoutes = new Set(wanted.map((w) => w.dst));
    const wantedNeigh = new Set(active ? ep.addrs[4] : []);
    if (this.sysctlIfindex.get(ep.ifname) !== link.index && link.up) {
      await this.sysctl.ensure(`net/ipv4/conf/${ep.ifname}/proxy_arp`, '1');
      await this.sysctl.ensure(`net/ipv4/conf/${ep.ifname}/route_localnet`, '1');
      // Answer the container's ARP at once instead of after the default 0.8 s proxy delay.
      await this.sysctl.ensure(`net/ipv4/neigh/${ep.ifname}/proxy_delay`, '0');
      this.sysctlIfindex.set(ep.ifname, link.index);
    }
    let changes = 0;
    for (const r of routes) if (!wantedRoutes.has(r.dst)) (await this.netlink.deleteRoute(r), changes++);
    const present = new Set(routes.map((r) => r.dst));
    for (const { family, dst } of wanted) if (!present.has(dst)) (await this.netlink.addRoute({ family, dst, ifindex: link.index }), changes++);
    const mac = ep.mac.toLowerCase();
    for (const n of neighbours) if (!wantedNeigh.has(n.dst)) (await this.netlink.deleteNeighbour(n), changes++);
    const neighNow = new Map(neighbours.map((n) => [n.dst, n.mac]));
    for (const dst of wantedNeigh) if (neighNow.get(dst) !== mac) (await this.netlink.setNeighbour({ dst, ifindex: link.index, mac }), changes++);
    if (changes) this.log.info({ endpoint: ep.id, interface: ep.ifname, changes }, 'routes and neighbours programmed');
  }

  private async clear(link: LinkState, routes: HostRoute[], neighbours: NeighbourEntry[]): Promise<void> {
    for (const r of routes) await this.netlink.deleteRoute(r);
    for (const n of neighbours) await this.netlink.deleteNeighbour(n);
    this.sysctlIfindex.delete(link.name);
    if (routes.length + neighbours.length) this.log.info({ interface: link.name, routes: routes.length }, 'routes of a removed endpoint deleted');
  }
}
