/**
 * What Felix shows on /status and /metrics: its connections, resyncs and
 * endpoints, each joined with what the dataplane has programmed for it and
 * the packets its chains denied (read from the kernel's rule counters when
 * scraped, issue #16).
 */
import { DaemonProbe, EndpointStatus, StatusQueryError, queryParam } from '../common/metrics.js';
import type { FelixEndpointView, RouteView } from '../common/status-api.js';
import { canonicalIp, isIp } from '../common/wire/codec.js';
import type { RouteLookupResult } from './dataplane/drivers/route-lookup.js';
import type { Dataplane, DeniedCount, EndpointStatus as DataplaneStatus } from './dataplane/index.js';
import { deniedByEndpoint } from './dataplane/denied.js';
import type { FelixAgent } from './agent.js';
import type { FelixEndpoint } from './endpoints.js';
import type { KernelTableMonitor } from './kernel-tables.js';

/**
 * One row per endpoint, sorted by id; an endpoint the dataplane does not know
 * is shown as not programmed. `denied`: the kernel's denied counts (null:
 * not read, or the read failed); an endpoint without chains has denied 0.
 */
export function endpointStatuses(
  endpoints: Iterable<FelixEndpoint>,
  dataplane: (id: string) => DataplaneStatus | undefined,
  now: number,
  denied: readonly DeniedCount[] | null = null,
): EndpointStatus[] {
  const byEndpoint = denied && deniedByEndpoint(denied);
  return [...endpoints]
    .map((ep) => {
      const dp = dataplane(ep.id);
      return {
        id: ep.id,
        ifname: ep.ifname,
        addrs: [...ep.addrs],
        mac: ep.mac,
        enabled: ep.enabled,
        interfaceUp: dp?.interfaceUp ?? false,
        routesProgrammed: dp?.routesProgrammed ?? false,
        chainsProgrammed: dp?.filterProgrammed ?? false,
        programmed: dp?.programmed ?? false,
        error: dp?.error ?? null,
        aclAgeSeconds: ep.aclsAt === null ? null : Math.max(0, Math.round(now - ep.aclsAt) / 1000),
        deniedPackets: byEndpoint ? (byEndpoint.get(ep.id) ?? { inbound: 0, outbound: 0 }) : null,
      };
    })
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** What Felix's probe reads; `agent` is undefined until the agent has started, `tables` until the first reading. */
export interface FelixParts {
  agent?: FelixAgent;
  dataplane: Pick<Dataplane, 'status' | 'inForce'> & Partial<Pick<Dataplane, 'deniedPackets'>>;
  tables?: Pick<KernelTableMonitor, 'usages' | 'warnings'>;
}

/** Felix's probe: `host` is FelixHostname; `routes` answers /status/route from the kernel. */
export function felixProbe(parts: () => FelixParts, host: string, routes: { lookup(dst: string): Promise<RouteLookupResult> }): DaemonProbe {
  const rows = (denied: readonly DeniedCount[] | null = null) => {
    const { agent, dataplane } = parts();
    return agent ? endpointStatuses(agent.manager.endpoints.values(), (id) => dataplane.status(id), Date.now(), denied) : [];
  };
  /** The kernel's denied counts, or null if they cannot be read (the rows say so; the metric is left out). */
  const denied = async (): Promise<DeniedCount[] | null> => {
    const { dataplane } = parts();
    return dataplane.deniedPackets ? dataplane.deniedPackets().catch(() => null) : null;
  };
  const endpointView = async (id: string): Promise<FelixEndpointView> => {
    const { agent, dataplane } = parts();
    const ep = agent?.manager.endpoints.get(id);
    if (!ep) throw new StatusQueryError(404, `endpoint ${id} is not on this host`);
    const inForce = dataplane.inForce(id);
    return {
      host,
      endpoint: endpointStatuses([ep], (i) => dataplane.status(i), Date.now(), await denied())[0]!,
      acls: inForce?.acls ?? ep.acls,
      skipped: inForce?.skipped ?? [],
      chains: inForce?.chains ?? [],
    };
  };
  const routeView = async (dst: string): Promise<RouteView> => {
    if (!isIp(dst)) throw new StatusQueryError(400, `dst ${JSON.stringify(dst.slice(0, 64))} is not an IP address`);
    const route = await routes.lookup(canonicalIp(dst));
    const owner = route.dev === null ? undefined : [...(parts().agent?.manager.endpoints.values() ?? [])].find((e) => e.ifname === route.dev);
    return { host, dst: canonicalIp(dst), ...route, endpoint: owner?.id ?? null };
  };
  const count = (pred: (e: EndpointStatus) => boolean) => () => rows().filter(pred).length;
  return {
    component: 'calico-felix',
    host,
    views: {
      endpoint: (q) => endpointView(queryParam(q, 'id')),
      route: (q) => routeView(queryParam(q, 'dst')),
    },
    connections: () => parts().agent?.connections() ?? [],
    waitingFor: () => parts().agent?.waitingFor() ?? ['start-up (dataplane, sockets)'],
    endpoints: async () => rows(await denied()),
    kernelTables: () => parts().tables?.usages ?? [],
    warnings: () => parts().tables?.warnings ?? [],
    gauges: [
      {
        metric: 'calico_felix_kernel_table_entries',
        help: 'Entries in a kernel table Felix depends on; scope "kernel" counts every namespace, "namespace" only Felix\'s own',
        labelNames: ['table', 'scope'],
        samples: () => (parts().tables?.usages ?? []).map((u) => ({ labels: { table: u.table, scope: u.scope }, value: u.entries })),
      },
      {
        metric: 'calico_felix_kernel_table_limit',
        help: "The kernel's limit for the table (gc_thresh3, nf_conntrack_max); absent where the namespace cannot see it",
        labelNames: ['table'],
        samples: () => (parts().tables?.usages ?? []).filter((u) => u.limit !== null).map((u) => ({ labels: { table: u.table }, value: u.limit! })),
      },
    ],
    counters: [
      {
        metric: 'calico_felix_denied_packets_total',
        help: 'Packets dropped by the final DROP (and anti-spoofing DROP) of an endpoint\'s chains, by endpoint, direction (inbound: to it) and family; endpoint "" counts the dispatch chains\' DROP (traffic from or to a tap interface no endpoint owns)',
        labelNames: ['endpoint', 'direction', 'family'],
        samples: async () => {
          const counts = await denied();
          return (counts ?? []).map((c) => ({ labels: { endpoint: c.endpoint, direction: c.direction, family: `ipv${c.family}` }, value: c.packets }));
        },
      },
    ],
    facts: [
      { name: 'endpoints', metric: 'calico_felix_endpoints', help: 'Endpoints Felix knows', kind: 'gauge', value: count(() => true) },
      {
        name: 'endpointsProgrammed',
        metric: 'calico_felix_endpoints_programmed',
        help: 'Endpoints whose routes, chains and sets are all in place',
        kind: 'gauge',
        value: count((e) => e.programmed),
      },
      {
        name: 'endpointsWithoutAcls',
        metric: 'calico_felix_endpoints_without_acls',
        help: 'Endpoints still waiting for their first ACLUPDATE (denied meanwhile)',
        kind: 'gauge',
        value: count((e) => e.aclAgeSeconds === null),
      },
      {
        name: 'endpointsFailed',
        metric: 'calico_felix_endpoints_failed',
        help: 'Endpoints whose programming failed (denied, retried)',
        kind: 'gauge',
        value: count((e) => e.error !== null),
      },
      {
        name: 'resyncsStarted',
        metric: 'calico_felix_resyncs_started_total',
        help: 'Resyncs with the plugin started',
        kind: 'counter',
        value: () => parts().agent?.resyncsStarted ?? 0,
      },
      {
        name: 'resyncsCompleted',
        metric: 'calico_felix_resyncs_completed_total',
        help: 'Resyncs with the plugin completed',
        kind: 'counter',
        value: () => parts().agent?.manager.resyncsCompleted ?? 0,
      },
      {
        name: 'distinctAcls',
        metric: 'calico_felix_distinct_acls',
        help: 'Distinct ACLs held (endpoints with equal ACLs share one)',
        kind: 'gauge',
        value: () => parts().agent?.manager.acls.size ?? 0,
      },
      {
        name: 'aclUpdatesSuperseded',
        metric: 'calico_felix_acl_updates_superseded_total',
        help: 'ACLUPDATEs skipped undecoded: a newer one for the same endpoint arrived in the same burst',
        kind: 'counter',
        value: () => parts().agent?.aclUpdatesSuperseded ?? 0,
      },
    ],
  };
}
