/** felix.cfg (SPEC §7), plus port overrides. */
import os from 'node:os';
import { ConfigOf, bool, host, int, loadConfig, logSection, orNone, port, str } from '../common/config.js';
import { interfacePrefix } from '../common/endpoint-names.js';
import { metricsSection } from '../common/metrics.js';
import { daemonSocketOptions, maxMessageBytes, securitySection } from '../common/security.js';
import type { SocketOptions } from '../common/zmq/options.js';

export const felixSchema = {
  global: {
    PluginAddress: host(undefined, true),
    ACLAddress: host(undefined, true),
    /** Where the ACL manager publishes; by default ACLAddress with ACLPublishPort. */
    ACLPublishAddress: { ...orNone(host()), default: null },
    LocalAddress: host('*'),
    FelixHostname: str(os.hostname()),
    ResyncIntervalSecs: int(1800, 1),
    EndpointRetryTimeMillis: int(500, 10),
    MetadataAddr: orNone(host('127.0.0.1')),
    MetadataPort: port(9697),
    InterfacePrefix: interfacePrefix('tap'),
    /** What a container may send to the host itself beyond DHCP, neighbour/router discovery and metadata (SPEC §6 v2). */
    EndpointToHostAction: {
      default: 'DROP' as 'DROP' | 'ACCEPT',
      parse: (raw: string): 'DROP' | 'ACCEPT' => {
        const v = raw.trim().toUpperCase();
        if (v !== 'DROP' && v !== 'ACCEPT') throw new Error('expected DROP or ACCEPT');
        return v;
      },
    },
    /**
     * In the root namespace, raise the neighbour tables' gc_thresh2/3 and
     * nf_conntrack_max to what the endpoints need (never lowering them; issue #15).
     */
    RaiseKernelLimits: bool(true),
    PluginPort: port(9901),
    LocalPort: port(9902),
    ACLPort: port(9905),
    ACLPublishPort: port(9906),
  },
  log: logSection('/var/log/calico/felix.log'),
  connection: {
    ConnectionTimeoutMillis: int(40000, 100),
    ConnectionKeepaliveIntervalMillis: int(5000, 50),
    MaxMessageBytes: maxMessageBytes(),
  },
  metrics: metricsSection(),
  /** Optional CurveZMQ: Felix's own key pair, and the plugin's and ACL manager's public keys. */
  security: securitySection(['PluginPublicKeyFile', 'AclManagerPublicKeyFile'] as const),
};

export type FelixConfig = ConfigOf<typeof felixSchema>;

/** Also checks `[security]`; `socketOptions` holds the size limit and Felix's own keys for every socket. */
export function loadFelixConfig(file: string): { config: FelixConfig; warnings: string[]; socketOptions: SocketOptions } {
  const loaded = loadConfig(file, felixSchema);
  return { ...loaded, socketOptions: daemonSocketOptions(file, loaded.config.connection.MaxMessageBytes, loaded.config.security) };
}
