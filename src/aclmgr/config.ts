/**
 * acl_manager.cfg (SPEC §7): where the plugin is, what to bind, the ports of
 * SPEC §2 (overridable), and the timings of plugin-loss detection.
 */
import { ConfigOf, host, int, loadConfig, logSection, orNone, port } from '../common/config.js';
import { metricsSection } from '../common/metrics.js';

export const ACL_MANAGER_SCHEMA = {
  global: {
    PluginAddress: host(undefined, true),
    /** Where the plugin publishes; by default PluginAddress with PluginPublishPort (set it when PluginAddress is a whole ZeroMQ endpoint). */
    PluginPublishAddress: { ...orNone(host()), default: null },
    LocalAddress: host('*'),
    /** Where ACLs are published; by default LocalAddress with AclPublishPort. */
    AclPublishAddress: { ...orNone(host()), default: null },
    PluginGroupsPort: port(9903),
    PluginPublishPort: port(9904),
    AclRequestPort: port(9905),
    AclPublishPort: port(9906),
    /** `aclheartbeat` interval; SPEC §5 wants one at least every 30 s. */
    AclHeartbeatIntervalMillis: int(30000, 10, 30000),
  },
  log: logSection('/var/log/calico/acl_manager.log'),
  connection: {
    /** A GETGROUPS or HEARTBEAT to the plugin unanswered this long: the REQ socket is recreated and a resync starts. */
    ConnectionTimeoutMillis: int(40000, 10),
    ConnectionKeepaliveIntervalMillis: int(5000, 10),
    /** Nothing (heartbeat or group) on the plugin's PUB socket this long: the plugin is taken as lost. 3 × its 30 s heartbeat. */
    PluginTimeoutMillis: int(90000, 10),
    /** After GETGROUPS, a quiet period this long with no GROUPUPDATE ends the resync; groups not re-announced are dropped. */
    ResyncSettleMillis: int(2000, 10, 600000),
  },
  metrics: metricsSection(),
};

export type AclManagerConfig = ConfigOf<typeof ACL_MANAGER_SCHEMA>;

export function loadAclManagerConfig(file: string): { config: AclManagerConfig; warnings: string[] } {
  return loadConfig(file, ACL_MANAGER_SCHEMA);
}
