/**
 * One endpoint's desired programming, as data: per address family its chains
 * and sets; its routes and neighbour entries. Pure.
 */
import { canonicalIp, ipFamily } from '../../../common/wire/codec.js';
import type { Acls } from '../../../common/wire/acl-api.js';
import { AclSetMembers, InvalidRule, aclSetMembers } from './acl.js';
import { Chain, IpSet, renderEndpointChains, renderEndpointSets } from './chains.js';
import { FAMILIES, Family, endpointSuffix } from './names.js';

export interface EndpointSpec {
  id: string;
  ifname: string;
  mac: string;
  addrs: string[];
  enabled: boolean;
}

export interface FamilyProgram {
  chains: Chain[];
  sets: IpSet[];
}

/** Addresses of one family, canonical and sorted. */
export function addrsOf(spec: EndpointSpec, family: Family): string[] {
  return [...new Set(spec.addrs.filter((a) => ipFamily(a) === family).map(canonicalIp))].sort();
}

/** ACLs as set members per family, plus the rules that had to be skipped. */
export function aclMembers(acls: Acls | null): { members: Record<Family, AclSetMembers>; invalid: (InvalidRule & { family: Family })[] } {
  const members = { 4: aclSetMembers(acls?.v4 ?? null, 4), 6: aclSetMembers(acls?.v6 ?? null, 6) };
  const invalid = FAMILIES.flatMap((f) => members[f].invalid.map((r) => ({ ...r, family: f })));
  return { members, invalid };
}

/**
 * Chains and sets per family the endpoint has an address in. Until its ACLs
 * arrive (`members` null), and while it is disabled, the sets are empty: deny all.
 */
export function renderEndpointFilter(spec: EndpointSpec, members: Record<Family, AclSetMembers> | null): Map<Family, FamilyProgram> {
  const suffix = endpointSuffix(spec.id);
  const out = new Map<Family, FamilyProgram>();
  for (const family of FAMILIES) {
    const addrs = addrsOf(spec, family);
    if (addrs.length === 0) continue;
    const m = spec.enabled && members ? members[family] : aclSetMembers(null, family);
    out.set(family, {
      chains: renderEndpointChains({ suffix, mac: spec.mac, addrs }, family),
      sets: renderEndpointSets(suffix, family, m),
    });
  }
  return out;
}
