/**
 * The ACL manager daemon wired together: Network API in → calculator →
 * ACL API out (SPEC §4, §5).
 */
import { zmqAddress } from '../common/config.js';
import type { Logger } from '../common/logging.js';
import type { GroupUpdate } from '../common/wire/network-api.js';
import { SocketOptions, clientOptions } from '../common/zmq/options.js';
import { AclServer } from './acl-server.js';
import { AclCalculator, AclChange } from './calculator.js';
import type { AclManagerConfig } from './config.js';
import { NetworkClient } from './network-client.js';
import { DaemonProbe, StatusQueryError, queryParam } from '../common/metrics.js';

/** One running ACL manager; {@link stop} closes every socket and timer. */
export class AclManager {
  private network: NetworkClient | undefined;

  private constructor(
    private readonly log: Logger,
    private readonly calculator: AclCalculator,
    private readonly server: AclServer,
  ) {}

  /** `socketOptions`: size limit and the manager's own CURVE keys, for every socket. */
  static async start(config: AclManagerConfig, log: Logger, socketOptions: SocketOptions = {}): Promise<AclManager> {
    const { global: g, connection: c } = config;
    const calculator = new AclCalculator();
    const server = await AclServer.start({
      log: log.child({ api: 'acl' }),
      routerAddress: zmqAddress(g.LocalAddress, g.AclRequestPort),
      publishAddress: zmqAddress(g.AclPublishAddress ?? g.LocalAddress, g.AclPublishPort),
      heartbeatMs: g.AclHeartbeatIntervalMillis,
      aclsFor: (endpoint) => calculator.aclsFor(endpoint),
      socketOptions,
    });
    const manager = new AclManager(log, calculator, server);
    manager.network = new NetworkClient({
      log: log.child({ api: 'network' }),
      requestAddress: zmqAddress(g.PluginAddress, g.PluginGroupsPort),
      publishAddress: zmqAddress(g.PluginPublishAddress ?? g.PluginAddress, g.PluginPublishPort),
      timeoutMs: c.ConnectionTimeoutMillis,
      keepaliveMs: c.ConnectionKeepaliveIntervalMillis,
      pluginTimeoutMs: c.PluginTimeoutMillis,
      settleMs: c.ResyncSettleMillis,
      onGroupUpdate: (u) => manager.onGroupUpdate(u),
      onResynced: (seen) => manager.onResynced(seen),
      socketOptions: clientOptions(socketOptions, config.security.PluginPublicKeyFile),
    });
    return manager;
  }

  /** Status and metrics: the sockets, groups and endpoints known, ACLs published; ready after the first group sync. */
  probe(config: AclManagerConfig): DaemonProbe {
    const g = config.global;
    const network = () => this.network!;
    return {
      component: 'calico-acl-manager',
      connections: () => [
        { name: 'plugin', api: 'network', kind: 'req', address: zmqAddress(g.PluginAddress, g.PluginGroupsPort), stats: network().stats.requests },
        {
          name: 'plugin-groups',
          api: 'network',
          kind: 'sub',
          address: zmqAddress(g.PluginPublishAddress ?? g.PluginAddress, g.PluginPublishPort),
          stats: network().stats.publications,
        },
        { name: 'felix-requests', api: 'acl', kind: 'router', address: zmqAddress(g.LocalAddress, g.AclRequestPort), stats: this.server.stats },
      ],
      waitingFor: () => (network().resyncs > 0 ? [] : ['first group sync with the plugin']),
      views: {
        endpoint: (q) => {
          const id = queryParam(q, 'id');
          const view = this.calculator.explain(id);
          if (!view) throw new StatusQueryError(404, `endpoint ${id} is in no group the ACL manager knows`);
          return view;
        },
      },
      facts: [
        { name: 'groups', metric: 'calico_aclmgr_groups', help: 'Security groups known', kind: 'gauge', value: () => this.calculator.groupIds().length },
        { name: 'endpoints', metric: 'calico_aclmgr_endpoints', help: 'Endpoints with ACLs', kind: 'gauge', value: () => this.calculator.endpointIds().length },
        {
          name: 'aclUpdatesPublished',
          metric: 'calico_aclmgr_acl_updates_published_total',
          help: 'ACLUPDATEs published',
          kind: 'counter',
          value: () => this.server.updatesPublished,
        },
        {
          name: 'resyncsStarted',
          metric: 'calico_aclmgr_resyncs_started_total',
          help: 'Group resyncs with the plugin started',
          kind: 'counter',
          value: () => network().resyncsStarted,
        },
        {
          name: 'resyncsCompleted',
          metric: 'calico_aclmgr_resyncs_completed_total',
          help: 'Group resyncs with the plugin completed',
          kind: 'counter',
          value: () => network().resyncs,
        },
        {
          name: 'subscriptions',
          metric: 'calico_aclmgr_subscriptions_total',
          help: 'Subscriptions received on the ACL publish socket (XPUB, duplicates included)',
          kind: 'counter',
          value: () => this.server.subscriptions,
        },
        {
          name: 'aclChangesSuperseded',
          metric: 'calico_aclmgr_acl_changes_superseded_total',
          help: 'ACL changes replaced by a newer one for the same endpoint before they were published',
          kind: 'counter',
          value: () => this.server.changesSuperseded,
        },
        {
          name: 'aclUpdatesOnSubscription',
          metric: 'calico_aclmgr_acl_updates_on_subscription_total',
          help: 'ACLUPDATEs published because their topic was subscribed to',
          kind: 'counter',
          value: () => this.server.publishedOnSubscription,
        },
      ],
    };
  }

  async stop(): Promise<void> {
    this.network?.stop();
    await this.server.stop();
  }

  private onGroupUpdate(update: GroupUpdate): void {
    const { changes, invalidRules } = this.calculator.applyGroupUpdate(update);
    for (const reason of invalidRules) this.log.warn({ group: update.group, reason }, 'rule dropped');
    const members = Object.keys(update.members).length;
    this.log.info({ group: update.group, members, changed: changes.length }, members === 0 ? 'group deleted' : 'group updated');
    this.publish(changes);
  }

  private onResynced(seen: ReadonlySet<string>): void {
    const { dropped, changes } = this.calculator.retainGroups(seen);
    for (const group of dropped) this.log.info({ group }, 'group gone from the plugin after resync; dropped');
    this.publish(changes);
  }

  private publish(changes: AclChange[]): void {
    for (const { endpoint, acls } of changes) this.server.publishChange(endpoint, acls);
  }
}
