/**
 * Names of everything Felix programs (SPEC §6 v2). All carry the `felix-`
 * prefix: that prefix is how Felix recognises what it owns.
 */
import { createHash } from 'node:crypto';

export { endpointSuffix } from '../../../common/endpoint-names.js';

export type Family = 4 | 6;
export const FAMILIES: readonly Family[] = [4, 6];

export type Direction = 'to' | 'from';
export type SetKind = 'addr' | 'port' | 'icmp';
export type IpSetType = 'hash:net' | 'hash:net,port';

export const OWNED_PREFIX = 'felix-';
export const CHAIN_FORWARD = 'felix-FORWARD';
export const CHAIN_INPUT = 'felix-INPUT';
export const CHAIN_FROM_ENDPOINT = 'felix-FROM-ENDPOINT';
export const CHAIN_TO_ENDPOINT = 'felix-TO-ENDPOINT';
/** nat: the metadata DNAT. */
export const CHAIN_PREROUTING = 'felix-PREROUTING';
/** raw: the reverse-path source check. */
export const CHAIN_RPF = 'felix-RPF';
/** filter: the DHCP port check every endpoint's DHCP rule goes to (see renderDhcpChain). */
export const CHAIN_DHCP = 'felix-DHCP';

export function chainName(dir: Direction, suffix: string): string {
  return `felix-${dir}-${suffix}`;
}

const KIND_LETTER: Record<SetKind, string> = { addr: 'a', port: 'p', icmp: 'i' };

export function setType(kind: SetKind): IpSetType {
  return kind === 'port' ? 'hash:net,port' : 'hash:net';
}

/** The hash that names a set: its type and sorted members, as `ipset save` prints them. */
export function contentHash(type: string, sortedMembers: readonly string[]): string {
  const h = createHash('sha256').update(type);
  for (const m of sortedMembers) h.update('\n').update(m);
  return h.digest('hex').slice(0, 16);
}

/** Names by members list: the endpoints of a group share one rendering of their ACLs, so a set is hashed once, not per member. */
const namesByMembers = new WeakMap<readonly string[], string>();

/**
 * A content-named set: `felix-4a-0f3c…` (family, kind, 16 hex digits).
 * Members must be sorted, and the list is not changed once named (it is
 * remembered by identity).
 */
export function contentSetName(family: Family, kind: SetKind, sortedMembers: readonly string[]): string {
  const prefix = `felix-${family}${KIND_LETTER[kind]}-`;
  const known = namesByMembers.get(sortedMembers);
  if (known?.startsWith(prefix)) return known;
  const name = prefix + contentHash(setType(kind), sortedMembers);
  namesByMembers.set(sortedMembers, name);
  return name;
}

const CONTENT_SET_RE = /^felix-[46][api]-([0-9a-f]{16})$/;

/** The hash a content-named set's name carries, or null if the name is not one. */
export function contentSetHash(name: string): string | null {
  return CONTENT_SET_RE.exec(name)?.[1] ?? null;
}

/** Where a content set is filled before it is renamed to its name (`ipset restore` is not transactional). */
export function tempSetName(name: string): string {
  return `felix-tmp-${name.slice('felix-'.length)}`;
}
