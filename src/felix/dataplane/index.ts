/** The Felix dataplane library: what the agent drives (SPEC §6). */
export { Dataplane } from './dataplane.js';
export type { DataplaneOptions, EndpointStatus } from './dataplane.js';
export type { EndpointSpec } from './render/endpoint.js';
export type { Acls } from '../../common/wire/acl-api.js';
export type { CommandRunner } from './drivers/commands.js';
export { execaRunner, CommandError } from './drivers/commands.js';
export type { Netlink, LinkState, LinkEvent, HostRoute, NeighbourEntry } from './drivers/netlink.js';
export { RtNetlink } from './drivers/netlink.js';
export type { Sysctl } from './drivers/sysctl.js';
