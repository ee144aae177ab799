/**
 * The Felix dataplane library: what the agent drives (SPEC §6).
 *
 * ```ts
 * const dp = new Dataplane({ log, interfacePrefix: 'tap', metadata: { addr: '127.0.0.1', port: 9697 }, retryMs: 500 });
 * await dp.start();                       // forwarding, host chains, link events; flushes nothing
 * dp.upsertEndpoint({ id, ifname, mac, addrs, enabled: true });  // cheap: marks dirty
 * dp.setAcls(id, acls);                   // until the first call the endpoint is deny-all
 * dp.cleanupStale();                      // after a completed resync only
 * dp.status(id);                          // { programmed, interfaceUp, error? }
 * await dp.deniedPackets();               // [{ endpoint, direction, family, packets }] from the kernel's counters
 * ```
 * The process must run inside the network namespace it is meant to program.
 */
export { Dataplane } from './dataplane.js';
export type { DataplaneOptions, EndpointStatus } from './dataplane.js';
export { realClock } from '../../common/clock.js';
export type { Clock } from '../../common/clock.js';
export type { EndpointSpec } from './render/endpoint.js';
export type { DeniedCount, DeniedDirection } from './denied.js';
export type { Acls } from '../../common/wire/acl-api.js';
export type { CommandRunner } from './drivers/commands.js';
export { execaRunner, CommandError } from './drivers/commands.js';
export type { Conntrack } from './drivers/conntrack.js';
export type { Netlink, LinkState, LinkEvent, HostRoute, NeighbourEntry } from './drivers/netlink.js';
export { RtNetlink } from './drivers/netlink.js';
export type { Sysctl } from './drivers/sysctl.js';
export { readProtocolNames } from './drivers/protocols.js';
