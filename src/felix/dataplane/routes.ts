/**
 * Routes, permanent neighbour entries, the IPv6 gateway address and sysctls
 * of endpoint interfaces (SPEC §6 "Per endpoint"). Routes, neighbours and
 * addresses are dumped once (at start, on refresh, after a failure) and then
 * known from Felix's own writes and from link events (the kernel flushes an
 * interface's routes, neighbours and IPv6 addresses when it goes down, so
 * they are all put back when it comes up): a dump of thousands of routes
 * costs more than the work it guides. Never touches an interface without the
 * endpoint prefix.
 */
import type { Logger } from 'pino';
import type { HostRoute, LinkAddress, LinkState, NeighbourEntry, Netlink } from './drivers/netlink.js';
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

/**
 * The IPv6 gateway of every endpoint with an IPv6 address (the containers'
 * `default via fe80::1 dev eth0`): the host answers neighbour solicitations
 * for its own address as a router, so no proxy NDP is needed.
 */
export const IPV6_GATEWAY = { addr: 'fe80::1', prefixLen: 64 } as const;

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

/** What the kernel has on endpoint interfaces, by ifindex: read once, then kept from our own writes and link events. */
interface KernelRoutes {
  routes: Map<number, HostRoute[]>;
  neighbours: Map<number, NeighbourEntry[]>;
  /** Interfaces that have the IPv6 gateway address. */
  gateways: Set<number>;
}

/** The sysctls set on an interface: for its ifindex (a re-created interface gets them again), and whether the IPv6 one too. */
interface SysctlsSet {
  ifindex: number;
  ipv6: boolean;
}

export class RouteManager {
  private readonly sysctlsSet = new Map<string, SysctlsSet>();
  /** null: unknown, dumped before the next apply (at start, after a failure, on refresh). */
  private kernel: KernelRoutes | null = null;

  constructor(
    private readonly netlink: Netlink,
    private readonly sysctl: Sysctl,
    private readonly log: Logger,
  ) {}

  /** Dump routes and neighbours again before the next apply. */
  invalidate(): void {
    this.kernel = null;
  }

  /** The kernel flushed this interface's routes and neighbours (it went down or away). */
  interfaceFlushed(ifindex: number): void {
    this.kernel?.routes.delete(ifindex);
    this.kernel?.neighbours.delete(ifindex);
    this.kernel?.gateways.delete(ifindex);
  }

  /**
   * Brings each endpoint's interface to its wanted routes and neighbours
   * (none while disabled or down), and clears interfaces no endpoint owns
   * any more. Returns the endpoints that failed, with their errors.
   */
  async apply(work: { ep: EndpointRoutes; link: LinkState | undefined }[], cleared: LinkState[]): Promise<Map<string, Error>> {
    const failed = new Map<string, Error>();
    if (work.length === 0 && cleared.length === 0) return failed;
    let kernel: KernelRoutes;
    const started = performance.now();
    try {
      kernel = await this.read();
    } catch (err) {
      for (const { ep } of work) failed.set(ep.id, err as Error);
      return failed;
    }
    await forEachLimited(work, CONCURRENCY, async ({ ep, link }) => {
      try {
        if (link) await this.reconcile(ep, link, kernel);
      } catch (err) {
        failed.set(ep.id, err as Error);
      }
    });
    for (const link of cleared) {
      try {
        await this.clear(link, kernel);
      } catch (err) {
        failed.set(link.name, err as Error);
        this.log.error({ err, interface: link.name }, 'deleting routes of a removed endpoint failed');
      }
    }
    if (failed.size > 0) this.invalidate();
    this.log.debug({ endpoints: work.length, cleared: cleared.length, ms: Math.round(performance.now() - started) }, 'route apply timings');
    return failed;
  }

  /** The addresses routed to these interfaces now (for conntrack cleanup of interfaces nobody owns). */
  async routedTo(links: LinkState[]): Promise<string[]> {
    const kernel = await this.read();
    return links.flatMap((l) => (kernel.routes.get(l.index) ?? []).map((r) => r.dst));
  }

  forget(ifname: string): void {
    this.sysctlsSet.delete(ifname);
  }

  private async read(): Promise<KernelRoutes> {
    if (this.kernel) return this.kernel;
    const [routes, neighbours, addresses] = await Promise.all([this.netlink.hostRoutes(), this.netlink.neighbours(), this.netlink.ipv6Addresses()]);
    this.kernel = {
      routes: groupBy(routes, (r) => r.ifindex),
      neighbours: groupBy(neighbours, (n) => n.ifindex),
      gateways: new Set(addresses.filter(isGateway).map((a) => a.ifindex)),
    };
    return this.kernel;
  }

  /**
   * IPv4: answer the container's ARP for every address (its default route is
   * on-link). IPv6, once the endpoint has an IPv6 address: take no router
   * advertisement from the container. Set once per interface instance.
   */
  private async ensureSysctls(ep: EndpointRoutes, link: LinkState): Promise<void> {
    const done = this.sysctlsSet.get(ep.ifname);
    const ipv6 = ep.addrs[6].length > 0;
    if (done?.ifindex === link.index && (done.ipv6 || !ipv6)) return;
    if (done?.ifindex !== link.index) {
      await this.sysctl.ensure(`net/ipv4/conf/${ep.ifname}/proxy_arp`, '1');
      await this.sysctl.ensure(`net/ipv4/conf/${ep.ifname}/route_localnet`, '1');
      // Answer the container's ARP at once instead of after the default 0.8 s proxy delay.
      await this.sysctl.ensure(`net/ipv4/neigh/${ep.ifname}/proxy_delay`, '0');
    }
    if (ipv6) await this.sysctl.ensure(`net/ipv6/conf/${ep.ifname}/accept_ra`, '0');
    this.sysctlsSet.set(ep.ifname, { ifindex: link.index, ipv6 });
  }

  private async reconcile(ep: EndpointRoutes, link: LinkState, kernel: KernelRoutes): Promise<void> {
    const active = ep.enabled && link.up;
    const wanted = active ? FAMILIES.flatMap((family) => ep.addrs[family].map((dst) => ({ family, dst }))) : [];
    // One route and one permanent neighbour entry per address, in either family.
    const wantedAddrs = new Set(wanted.map((w) => w.dst));
    const mac = ep.mac.toLowerCase();
    if (link.up) await this.ensureSysctls(ep, link);
    const routes = kernel.routes.get(link.index) ?? [];
    const neighbours = kernel.neighbours.get(link.index) ?? [];
    let changes = 0;
    // The gateway before the routes: a container's first packet may follow at once.
    const wantGateway = active && ep.addrs[6].length > 0;
    if (wantGateway !== kernel.gateways.has(link.index)) {
      const gateway = { ...IPV6_GATEWAY, ifindex: link.index };
      if (wantGateway) {
        await this.netlink.addIpv6Address(gateway);
        kernel.gateways.add(link.index);
      } else {
        await this.netlink.deleteIpv6Address(gateway);
        kernel.gateways.delete(link.index);
      }
      changes++;
    }
    for (const r of [...routes]) {
      if (wantedAddrs.has(r.dst)) continue;
      await this.netlink.deleteRoute(r);
      remove(routes, r);
      changes++;
    }
    const present = new Set(routes.map((r) => r.dst));
    for (const { family, dst } of wanted) {
      if (present.has(dst)) continue;
      const r = { family, dst, ifindex: link.index };
      await this.netlink.setRoute(r);
      routes.push(r);
      changes++;
    }
    for (const n of [...neighbours]) {
      if (wantedAddrs.has(n.dst)) continue;
      await this.netlink.deleteNeighbour(n);
      remove(neighbours, n);
      changes++;
    }
    for (const dst of wantedAddrs) {
      const n = neighbours.find((x) => x.dst === dst);
      if (n?.mac === mac) continue;
      await this.netlink.setNeighbour({ dst, ifindex: link.index, mac });
      if (n) n.mac = mac;
      else neighbours.push({ dst, ifindex: link.index, mac });
      changes++;
    }
    kernel.routes.set(link.index, routes);
    kernel.neighbours.set(link.index, neighbours);
    if (changes) this.log.info({ endpoint: ep.id, interface: ep.ifname, changes }, 'routes and neighbours programmed');
  }

  private async clear(link: LinkState, kernel: KernelRoutes): Promise<void> {
    const routes = kernel.routes.get(link.index) ?? [];
    const neighbours = kernel.neighbours.get(link.index) ?? [];
    for (const r of routes) await this.netlink.deleteRoute(r);
    for (const n of neighbours) await this.netlink.deleteNeighbour(n);
    if (kernel.gateways.has(link.index)) await this.netlink.deleteIpv6Address({ ...IPV6_GATEWAY, ifindex: link.index });
    this.interfaceFlushed(link.index);
    this.sysctlsSet.delete(link.name);
    if (routes.length + neighbours.length) this.log.info({ interface: link.name, routes: routes.length }, 'routes of a removed endpoint deleted');
  }
}

const isGateway = (a: LinkAddress): boolean => a.addr === IPV6_GATEWAY.addr && a.prefixLen === IPV6_GATEWAY.prefixLen;

function remove<T>(list: T[], item: T): void {
  const i = list.indexOf(item);
  if (i >= 0) list.splice(i, 1);
}
