/** What the plugin shows on /status and /metrics: the data it serves, and its connections. */
import type { Connection, DaemonProbe, Fact } from '../common/metrics.js';
import type { PluginData } from './data.js';
import { groupsOf } from './changes.js';

export interface PluginRoleProbe {
  connections(): Connection[];
  /** network role only */
  groupUpdatesPublished?: number;
}

export function pluginProbe(role: 'ep' | 'network', data: () => PluginData, server: () => PluginRoleProbe | undefined): DaemonProbe {
  const facts: Fact[] = [
    { name: 'felixes', metric: 'calico_plugin_felixes', help: 'Felix hosts in the data', kind: 'gauge', value: () => data().felixes.size },
    { name: 'endpoints', metric: 'calico_plugin_endpoints', help: 'Endpoints in the data', kind: 'gauge', value: () => data().endpoints.size },
    { name: 'groups', metric: 'calico_plugin_groups', help: 'Groups with at least one member', kind: 'gauge', value: () => groupsOf(data()).size },
  ];
  if (role === 'network')
    facts.push({
      name: 'groupUpdatesPublished',
      metric: 'calico_plugin_group_updates_published_total',
      help: 'GROUPUPDATEs published',
      kind: 'counter',
      value: () => server()?.groupUpdatesPublished ?? 0,
    });
  return {
    component: `plugin-${role}`,
    connections: () => server()?.connections() ?? [],
    waitingFor: () => (server() ? [] : ['sockets bound']),
    facts,
  };
}
