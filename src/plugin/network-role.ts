/**
 * `plugin network`: the Network API's orchestrator side (SPEC §4). Answers
 * GETGROUPS on its REP socket, publishing every group afterwards; publishes
 * each group whose members change (an emptied group with `members: {}`),
 * a heartbeat, and a periodic full republication as a safety net. 9904 is
 * an XPUB: a subscription matching `groups` (a subscriber that connected or
 * reconnected) gets every group too, as the 2014 ACL manager asks GETGROUPS
 * only once, at its own start (SPEC §4 v2).
 */
import type { Logger } from '../common/logging.js';
import { heartbeat, success } from '../common/wire/codec.js';
import { GETGROUPS, Members, TOPIC_GROUPS, TOPIC_NETWORK_HEARTBEAT, decodeNetworkRequest } from '../common/wire/network-api.js';
import { PLUGIN_HEARTBEAT_REPLY, ReplyServer, decodingHandler } from '../common/zmq/reply-server.js';
import { Publisher } from '../common/zmq/publisher.js';
import { SocketStats } from '../common/zmq/stats.js';
import type { Connection } from '../common/metrics.js';
import type { SocketOptions } from '../common/zmq/options.js';
import { PluginData } from './data.js';
import { changedGroups, groupUpdate, groupsOf } from './changes.js';

/** How long a deleted group is still republished with `members: {}`. */
const TOMBSTONE_MS = 3600_000;

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
  /** Groups deleted, and when: republished as tombstones for an hour. */
  private readonly deletedAt = new Map<string, number>();
  private subscriptionPending = false;

  private constructor(
    private readonly opts: NetworkRoleOptions,
    data: PluginData,
  ) {
    this.groups = groupsOf(data);
  }

  static async start(opts: NetworkRoleOptions, data: PluginData): Promise<NetworkRole> {
    const role = new NetworkRole(opts, data);
    role.publisher = await Publisher.bind(opts.pubAddress, opts.log, opts.socketOptions, {
      onSubscription: (topic, subscribe) => role.onSubscription(topic, subscribe),
    });
    role.server = await ReplyServer.bind(
      'rep',
      opts.repAddress,
      decodingHandler(decodeNetworkRequest, opts.log, () => role.getGroups(), PLUGIN_HEARTBEAT_REPLY),
      opts.log,
      { ...opts.socketOptions, stats: role.serverStats },
    );
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
    for (const g of changed) {
      if (next.has(g)) this.deletedAt.delete(g);
      else this.deletedAt.set(g, Date.now());
      this.publish(g, 'changed');
    }
  }

  /** A subscriber whose subscription covers `groups` gets every group (once per burst of subscriptions). */
  private onSubscription(topic: string, subscribe: boolean): void {
    if (!subscribe || !TOPIC_GROUPS.startsWith(topic) || this.subscriptionPending) return;
    this.subscriptionPending = true;
    setImmediate(() => {
      this.subscriptionPending = false;
      this.publishAll('subscribed');
    });
  }

  private getGroups(): object {
    // Published after the reply is on its way, so the ACL manager is ready for them.
    setImmediate(() => this.publishAll('requested'));
    return success(GETGROUPS);
  }

  /** Every group, and a tombstone (`members: {}`) for each deleted in the last hour, so a lost deletion heals. */
  private publishAll(reason: string): void {
    const since = Date.now() - TOMBSTONE_MS;
    for (const [g, at] of this.deletedAt) if (at < since || this.groups.has(g)) this.deletedAt.delete(g);
    this.opts.log.info({ groups: this.groups.size, tombstones: this.deletedAt.size, reason }, 'publishing all groups');
    for (const g of [...this.groups.keys(), ...this.deletedAt.keys()].sort()) this.publish(g, reason, false);
  }

  private publish(group: string, reason: string, log = true): void {
    const members = this.groups.get(group) ?? {};
    if (log) this.opts.log.info({ group, members: Object.keys(members).length, reason }, 'publishing group');
    this.groupUpdatesPublished++;
    void this.publisher!.publish(TOPIC_GROUPS, groupUpdate(group, members));
  }
}
