/**
 * Links, host routes, permanent neighbour entries and IPv6 addresses through
 * rtnetlink (the `netlink` package), acting on the network namespace the
 * process runs in; link events through `ip monitor` (see link-monitor.ts).
 */
import ipaddr from 'ipaddr.js';
import netlink from 'netlink';
import type { Family } from '../render/names.js';
import { LinkMonitor } from './link-monitor.js';

export interface LinkState {
  index: number;
  name: string;
  up: boolean;
}

/** A host route (`addr/32` or `addr/128`) in the main table. */
export interface HostRoute {
  family: Family;
  dst: string;
  ifindex: number;
}

/** A permanent neighbour entry; IPv4 or IPv6, by the address. */
export interface NeighbourEntry {
  dst: string;
  ifindex: number;
  mac: string;
}

/** An IPv6 address of an interface (Felix's own: the endpoints' gateway `fe80::1/64`). */
export interface LinkAddress {
  addr: string;
  prefixLen: number;
  ifindex: number;
}

/** The kernel's routing decision for one address (what `ip route get` prints). */
export interface RouteDecision {
  /** The address is the host's own. */
  local: boolean;
  ifindex: number;
  viaGateway: boolean;
}

export type LinkEvent = { kind: 'up-or-changed'; link: LinkState } | { kind: 'removed'; index: number; name: string };

/** What the dataplane needs from rtnetlink; a fake can stand in for it. */
export interface Netlink {
  links(): Promise<LinkState[]>;
  /** One link by name, or null if there is none. */
  link(name: string): Promise<LinkState | null>;
  hostRoutes(): Promise<HostRoute[]>;
  /** How the kernel would route to `addr`, or null if it cannot. */
  routeTo(addr: string): Promise<RouteDecision | null>;
  /** Creates the route, or replaces one to the same destination. */
  setRoute(r: HostRoute): Promise<void>;
  deleteRoute(r: HostRoute): Promise<void>;
  /** Permanent neighbour entries, IPv4 and IPv6. */
  neighbours(): Promise<NeighbourEntry[]>;
  /** Every neighbour entry of this namespace, in any state (learned, permanent, failed…), counted per family. */
  neighbourCounts(): Promise<Record<Family, number>>;
  setNeighbour(n: NeighbourEntry): Promise<void>;
  deleteNeighbour(n: NeighbourEntry): Promise<void>;
  /** The IPv6 addresses of every interface. */
  ipv6Addresses(): Promise<LinkAddress[]>;
  /** Adds an IPv6 address without duplicate address detection (`nodad`): usable at once. */
  addIpv6Address(a: LinkAddress): Promise<void>;
  deleteIpv6Address(a: LinkAddress): Promise<void>;
  onLinkEvent(listener: (e: LinkEvent) => void): void;
  /**
   * Told when link events may have been lost: the kernel dropped some because
   * the socket's buffer was full (`overflow`: ENOBUFS, a burst of events), or
   * the event source (re)started (`started`). What they said must be read again.
   */
  onEventsLost(listener: (why: 'overflow' | 'started') => void): void;
  close(): void;
}

const AF = { 4: 2, 6: 10 } as const;
const MAIN_TABLE = 254;
const NLM_F_CREATE_REPLACE = 0x500;
const TIMEOUT_MS = 5000;
/** Dumps of thousands of entries are parsed in JavaScript: give them time. */
const DUMP_TIMEOUT_MS = 60000;
/** Room for big dumps. */
const SOCKET_OPTIONS = { ref: false, recvBufferSize: 4 << 20, sendBufferSize: 1 << 20 };

const addrBytes = (a: string): Buffer => Buffer.from(ipaddr.parse(a).toByteArray());
const addrText = (b: Buffer): string => ipaddr.fromByteArray([...b]).toString();
const familyOf = (a: string): Family => (ipaddr.parse(a).kind() === 'ipv6' ? 6 : 4);
const macBytes = (m: string): Buffer => Buffer.from(m.replace(/:/g, ''), 'hex');
const macText = (b: Buffer): string => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');

function toLink(m: netlink.rt.LinkMessage): LinkState {
  return { index: m.data.index ?? 0, name: m.attrs.ifname ?? '', up: m.data.flags?.up === true };
}

/**
 * The real thing: one socket for requests, one subscribed to link
 * notifications, and a fresh socket for each dump. A socket runs one dump
 * at a time (the kernel answers another with EBUSY), and a dump of
 * thousands of routes can outlast a timeout: on its own socket it can
 * neither block nor be blocked by anything else.
 */
export class RtNetlink implements Netlink {
  private readonly requests = netlink.createRtNetlink(SOCKET_OPTIONS);
  private readonly monitors: LinkMonitor[] = [];
  private readonly lostListeners: Array<(why: 'overflow' | 'started') => void> = [];

  /** `eventBufferBytes`: the link monitor's socket buffer (tests make it small to overflow it). */
  constructor(private readonly opts: { eventBufferBytes?: number } = {}) {
    // A socket error the requests do not see (they time out instead) must not become an uncaught 'error' event.
    this.requests.socket.on('error', () => {});
  }

  private async dump<T>(fn: (socket: netlink.RtNetlinkSocket) => Promise<T>): Promise<T> {
    const socket = netlink.createRtNetlink(SOCKET_OPTIONS);
    socket.socket.on('error', () => {});
    try {
      return await fn(socket);
    } finally {
      socket.socket.close();
    }
  }

  async links(): Promise<LinkState[]> {
    return (await this.dump((s) => s.getLinks(undefined, undefined, { timeout: DUMP_TIMEOUT_MS }))).map(toLink);
  }

  async link(name: string): Promise<LinkState | null> {
    try {
      const [found] = await this.requests.getLink({}, { ifname: name }, { timeout: TIMEOUT_MS });
      return found ? toLink(found) : null;
    } catch (err) {
      if (/ENODEV/.test((err as Error).message)) return null;
      throw err;
    }
  }

  async hostRoutes(): Promise<HostRoute[]> {
    const out: HostRoute[] = [];
    for (const family of [4, 6] as const) {
      const routes = await this.dump((s) => s.getRoutes({ family: AF[family] }, undefined, { timeout: DUMP_TIMEOUT_MS }));
      for (const r of routes) {
        const table = r.attrs.table ?? r.data.table;
        if (table !== MAIN_TABLE || r.data.dstLen !== (family === 4 ? 32 : 128) || !r.attrs.dst || r.attrs.oif === undefined) continue;
        out.push({ family, dst: addrText(r.attrs.dst), ifindex: r.attrs.oif });
      }
    }
    return out;
  }

  async routeTo(addr: string): Promise<RouteDecision | null> {
    const family = familyOf(addr);
    try {
      const [r] = await this.requests.getRoute({ family: AF[family], dstLen: family === 4 ? 32 : 128 }, { dst: addrBytes(addr) }, { timeout: TIMEOUT_MS });
      if (!r) return null;
      return { local: String(r.data.type) === 'LOCAL', ifindex: r.attrs.oif ?? 0, viaGateway: r.attrs.gateway !== undefined };
    } catch (err) {
      if (/UNREACH|ENETDOWN|EINVAL/.test((err as Error).message)) return null;
      throw err;
    }
  }

  private routeMessage(r: HostRoute): [netlink.rt.Route, netlink.rt.RouteAttrs] {
    return [
      { family: AF[r.family], dstLen: r.family === 4 ? 32 : 128, table: MAIN_TABLE, protocol: 'BOOT', scope: 'LINK', type: 'UNICAST' },
      { dst: addrBytes(r.dst), oif: r.ifindex, table: MAIN_TABLE },
    ];
  }

  async setRoute(r: HostRoute): Promise<void> {
    const [data, attrs] = this.routeMessage(r);
    await this.requests.newRoute(data, attrs, { flags: NLM_F_CREATE_REPLACE, timeout: TIMEOUT_MS });
  }

  async deleteRoute(r: HostRoute): Promise<void> {
    const [data, attrs] = this.routeMessage(r);
    await this.requests.delRoute({ ...data, scope: 'NOWHERE' }, attrs, { timeout: TIMEOUT_MS });
  }

  /** Every neighbour entry of one family, in any state. */
  private neighbourDump(family: Family): Promise<netlink.rt.NeighborMessage[]> {
    return this.dump((s) => s.getNeighbors({ family: AF[family] }, undefined, { timeout: DUMP_TIMEOUT_MS }));
  }

  async neighbours(): Promise<NeighbourEntry[]> {
    const out: NeighbourEntry[] = [];
    for (const family of [4, 6] as const) {
      for (const n of await this.neighbourDump(family)) {
        if (n.data.state?.permanent && n.attrs.dst && n.attrs.lladdr)
          out.push({ dst: addrText(n.attrs.dst), ifindex: n.data.ifindex ?? 0, mac: macText(n.attrs.lladdr) });
      }
    }
    return out;
  }

  async neighbourCounts(): Promise<Record<Family, number>> {
    return { 4: (await this.neighbourDump(4)).length, 6: (await this.neighbourDump(6)).length };
  }

  async setNeighbour(n: NeighbourEntry): Promise<void> {
    await this.requests.newNeighbor(
      { family: AF[familyOf(n.dst)], ifindex: n.ifindex, state: { permanent: true } },
      { dst: addrBytes(n.dst), lladdr: macBytes(n.mac) },
      { flags: NLM_F_CREATE_REPLACE, timeout: TIMEOUT_MS },
    );
  }

  async deleteNeighbour(n: NeighbourEntry): Promise<void> {
    await this.requests.delNeighbor({ family: AF[familyOf(n.dst)], ifindex: n.ifindex }, { dst: addrBytes(n.dst) }, { timeout: TIMEOUT_MS });
  }

  async ipv6Addresses(): Promise<LinkAddress[]> {
    const all = await this.dump((s) => s.getAddresses({ family: AF[6] }, undefined, { timeout: DUMP_TIMEOUT_MS }));
    return all
      .filter((a) => a.attrs.address)
      .map((a) => ({ addr: addrText(a.attrs.address!), prefixLen: a.data.prefixlen ?? 128, ifindex: a.data.index ?? 0 }));
  }

  private addressMessage(a: LinkAddress): [netlink.rt.Address, netlink.rt.AddressAttrs] {
    return [
      { family: AF[6], prefixlen: a.prefixLen, index: a.ifindex },
      { address: addrBytes(a.addr), local: addrBytes(a.addr) },
    ];
  }

  async addIpv6Address(a: LinkAddress): Promise<void> {
    const [data, attrs] = this.addressMessage(a);
    await this.requests.newAddress(data, { ...attrs, flags: { nodad: true } }, { flags: NLM_F_CREATE_REPLACE, timeout: TIMEOUT_MS });
  }

  async deleteIpv6Address(a: LinkAddress): Promise<void> {
    const [data, attrs] = this.addressMessage(a);
    await this.requests.delAddress(data, attrs, { timeout: TIMEOUT_MS });
  }

  onLinkEvent(listener: (e: LinkEvent) => void): void {
    const monitor = new LinkMonitor(
      listener,
      (why) => {
        for (const l of this.lostListeners) l(why);
      },
      this.opts.eventBufferBytes,
    );
    monitor.start();
    this.monitors.push(monitor);
  }

  onEventsLost(listener: (why: 'overflow' | 'started') => void): void {
    this.lostListeners.push(listener);
  }

  close(): void {
    this.requests.socket.close();
    for (const m of this.monitors) m.close();
  }
}
