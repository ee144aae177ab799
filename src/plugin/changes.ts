/**
 * Pure translation of the plugin's data into what its peers are told:
 * endpoint changes per host (Endpoint API) and groups (Network API).
 */
import { ENDPOINTCREATED, ENDPOINTDESTROYED, ENDPOINTUPDATED, EndpointCreated, EndpointDestroyed, EndpointUpdated } from '../common/wire/endpoint-api.js';
import { GROUPUPDATE, GroupUpdate, Members } from '../common/wire/network-api.js';
import { Rules } from '../common/wire/rules.js';
import { PluginData, PluginEndpoint } from './data.js';

export type EndpointChange = { kind: 'created' | 'updated' | 'destroyed'; host: string; endpoint: PluginEndpoint };

function sameWiring(a: PluginEndpoint, b: PluginEndpoint): boolean {
  return a.mac === b.mac && a.addrs.join(',') === b.addrs.join(',');
}

/** What each Felix must be told to get from `prev` to `next`. A host move is a destroy plus a create. */
export function endpointChanges(prev: PluginData, next: PluginData): EndpointChange[] {
  const out: EndpointChange[] = [];
  for (const [id, old] of prev.endpoints) {
    const now = next.endpoints.get(id);
    if (!now || now.host !== old.host) out.push({ kind: 'destroyed', host: old.host, endpoint: old });
  }
  for (const [id, now] of next.endpoints) {
    const old = prev.endpoints.get(id);
    if (!old || old.host !== now.host) out.push({ kind: 'created', host: now.host, endpoint: now });
    else if (!sameWiring(old, now)) out.push({ kind: 'updated', host: now.host, endpoint: now });
  }
  return out;
}

export function endpointsOfHost(data: PluginData, host: string): PluginEndpoint[] {
  return [...data.endpoints.values()].filter((e) => e.host === host);
}

const addrList = (e: PluginEndpoint) => e.addrs.map((addr) => ({ addr, properties: { gr: false } }));

export function endpointCreated(e: PluginEndpoint, resyncId: string | null): EndpointCreated {
  return { type: ENDPOINTCREATED, endpoint_id: e.id, mac: e.mac, addrs: addrList(e), state: 'enabled', resync_id: resyncId, issued: Date.now() };
}

export function endpointUpdated(e: PluginEndpoint): EndpointUpdated {
  return { type: ENDPOINTUPDATED, endpoint_id: e.id, mac: e.mac, addrs: addrList(e), state: 'enabled', issued: Date.now() };
}

export function endpointDestroyed(e: PluginEndpoint): EndpointDestroyed {
  return { type: ENDPOINTDESTROYED, endpoint_id: e.id, issued: Date.now() };
}

/** group id → its members, with members listed in id order. */
export function groupsOf(data: PluginData): Map<string, Members> {
  const groups = new Map<string, Array<[string, string[]]>>();
  const sorted = [...data.endpoints.values()].sort((a, b) => a.id.localeCompare(b.id));
  for (const e of sorted) {
    for (const g of e.groups) {
      if (!groups.has(g)) groups.set(g, []);
      groups.get(g)!.push([e.id, e.addrs]);
    }
  }
  // fromEntries defines own properties: an id such as `__proto__` stays a member (see Members).
  return new Map([...groups].map(([g, members]) => [g, Object.fromEntries(members)]));
}

/** Groups whose members differ between the two, including groups that vanished. */
export function changedGroups(prev: Map<string, Members>, next: Map<string, Members>): string[] {
  const ids = new Set([...prev.keys(), ...next.keys()]);
  return [...ids].filter((g) => JSON.stringify(prev.get(g) ?? {}) !== JSON.stringify(next.get(g) ?? {})).sort();
}

/**
 * The prototype gives every group one shape: members reach each other,
 * and may send anywhere; everything else is denied.
 */
export function prototypeRules(group: string): Rules {
  const fromGroup = { group, cidr: null, protocol: null, port: null };
  return {
    inbound: [fromGroup],
    outbound: [fromGroup, { group: null, cidr: '0.0.0.0/0', protocol: null, port: null }],
    inbound_default: 'deny',
    outbound_default: 'deny',
  };
}

export function groupUpdate(group: string, members: Members): GroupUpdate {
  return { type: GROUPUPDATE, group, members, rules: prototypeRules(group), issued: Date.now() };
}
