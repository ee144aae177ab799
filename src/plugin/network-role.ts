/**
 * `plugin network`: the Network API's orchestrator side (SPEC §4). Answers
 * GETGROUPS on its REP socket, publishing every group afterwards; publishes
 * each group whose members change (an emptied group with `members: {}`),
 * a heartbeat, and a periodic full republication as a safety net.
 */
import type { Logger } from '../common/logging.js';
import { heartbeat, success } from '../common/wire/codec.js';
import { GETGROUPS, Members, TOPIC_GROUPS, TOPIC_NETWORK_HEARTBEAT, decodeNetworkRequest } from '../common/wire/network-api.js';
import { ReplyServer, decodingHandler } from '../common/zmq/reply-server.js';
import { Publisher } from '../common/zmq/publisher.js';
import { SocketStats } from '../common/zmq/stats.js';
import type { Connection } from '../common/metrics.js';
import type { SocketOptions } from '../common/zmq/options.js';
import { PluginData } from './data.js';
import { changedGroups, groupUpdate, groupsOf } from './changes.js';

export interface NetworkRoleOptions {
  log: Logger;
  repAddress: string;
  pubAddress: string;
  heartbeatMs: number;
  republishMs: number;
  /** For both sockets: size limit and the plugin's own CURVE keys. */
  socketOptions?: SocketOptions;
}

export class NetworkRole {
  private groups: Map<string, Members>;
  private server: ReplyServer | undefined;
  private publisher: Publisher | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly serverStats = new SocketStats();
  /** GROUPUPDATEs published (heartbeats not counted). */
  groupUpdatesPublished = 0;

  private constructor(
    private readonly opts: NetworkRoleOptions,
    data: PluginData,
  ) {
    this.groups = groupsOf(data);
  }

  static async start(opts: NetworkRoleOptions, data: PluginData): Promise<NetworkRole> {
    const role = new NetworkRole(opts, data);
    role.publisher = await Publisher.bind(opts.pubAddress, opts.log, opts.socketOptions);
    role.server = await ReplyServer.bind('rep', opts.repAddress, decodingHandler(decodeNetworkRequest, opts.log, () => role.getGroups()), opts.log, { ...opts.socketOptions, stats: role.serverStats });
    role.timers.push(setInterval(() => void role.publisher!.publish(TOPIC_NETWORK_HEARTBEAT, heartbeat()), opts.heartbeatMs));
    role.timers.push(setInterval(() => role.publishAll('periodic'), opts.republishMs));
    return role;
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    await this.server?.close();
    await this.publisher?.close();
  }

  connections(): Connection[] {
    return [{ name: 'aclmgr-requests', api: 'network', kind: 'rep', address: this.opts.repAddress, stats: this.serverStats }];
  }

  update(data: PluginData): void {
    const next = groupsOf(data);
    const changed = changedGroups(this.groups, next);
    this.groups = next;
    for (const g of changed) this.publish(g, 'changed');
  }

  private getGroups(): object {
    // Published after the reply is on its way, so the ACL manager is ready for them.
    setImmediate(() => this.publishAll('requested'));
    return success(GETGROUPS);
  }

  private publishAll(reason: string): void {
    this.opts.log.info({ groups: this.groups.size, reason }, 'publishing all groups');
    for (const g of [...this.groups.keys()].sort()) this.publish(g, reason, false);
  }

  private publish(group: string, reason: string, log = true): void {
    const members = this.groups.get(group) ?? {};
    if (log) this.opts.log.info({ group, members: Object.keys(members).length, reason }, 'publishing group');
    this.groupUpdatesPublished++;
    void this.publisher!.publish(TOPIC_GROUPS, groupUpdate(group, members));
  }
}
