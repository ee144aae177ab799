/** felix.cfg (SPEC §7), plus port overrides. */
import os from 'node:os';
import { ConfigOf, host, int, loadConfig, logSection, orNone, port, str } from '../common/config.js';
import { metricsSection } from '../common/metrics.js';

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
    InterfacePrefix: { default: 'tap', parse: (raw: string) => {
      if (!/^[A-Za-z0-9_-]{1,4}$/.test(raw)) throw new Error('expected 1-4 letters or digits');
      return raw;
    } },
    PluginPort: port(9901),
    LocalPort: port(9902),
    ACLPort: port(9905),
    ACLPublishPort: port(9906),
  },
  log: logSection('/var/log/calico/felix.log'),
  connection: {
    ConnectionTimeoutMillis: int(40000, 100),
    ConnectionKeepaliveIntervalMillis: int(5000, 50),
  },
  metrics: metricsSection(),
};

export type FelixConfig = ConfigOf<typeof felixSchema>;

export function loadFelixConfig(file: string): { config: FelixConfig; warnings: string[] } {
  return loadConfig(file, felixSchema);
}
