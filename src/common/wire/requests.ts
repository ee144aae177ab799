/**
 * Every request one of our REQ sockets may send (SPEC §2–§5), by the server
 * that receives it. `RequestClient<R>` takes one of these unions, so a
 * literal that is not a request message of that API does not compile:
 * strict in what we send.
 */
import type { AclRequest } from './acl-api.js';
import type { FelixRequest, PluginRequest } from './endpoint-api.js';
import type { NetworkRequest } from './network-api.js';

export type { AclRequest, FelixRequest, NetworkRequest, PluginRequest };

/**
 * Any API's request: plugin ep → Felix (FelixRequest), Felix → plugin ep
 * (PluginRequest), ACL manager → plugin network (NetworkRequest), Felix →
 * ACL manager (AclRequest). Each includes HEARTBEAT.
 */
export type WireRequest = FelixRequest | PluginRequest | NetworkRequest | AclRequest;
