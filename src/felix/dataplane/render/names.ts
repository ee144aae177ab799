/**
 * Names of everything Felix programs (SPEC §6). All carry the `felix-`
 * prefix: that prefix is how Felix recognises what it owns.
 */
export type Family = 4 | 6;
export const FAMILIES: readonly Family[] = [4, 6];

export type Direction = 'to' | 'from';
export type SetKind = 'addr' | 'port' | 'icmp';
export const SET_KINDS: readonly SetKind[] = ['addr', 'port', 'icmp'];

export const OWNED_PREFIX = 'felix-';
export const CHAIN_FORWARD = 'felix-FORWARD';
export const CHAIN_INPUT = 'felix-INPUT';
export const CHAIN_FROM_ENDPOINT = 'felix-FROM-ENDPOINT';
export const CHAIN_TO_ENDPOINT = 'felix-TO-ENDPOINT';
export const CHAIN_PREROUTING = 'felix-PREROUTING';
export const HOST_CHAINS: readonly string[] = [CHAIN_FORWARD, CHAIN_INPUT, CHAIN_FROM_ENDPOINT, CHAIN_TO_ENDPOINT, CHAIN_PREROUTING];

/** The 11-character suffix that names an endpoint's chains and sets. */
export function endpointSuffix(id: string): string {
  return id.slice(0, 11);
}

export function chainName(dir: Direction, suffix: string): string {
  return `felix-${dir}-${suffix}`;
}

export function setName(family: Family, dir: Direction, kind: SetKind, suffix: string): string {
  return family === 4 ? `felix-${dir}-${kind}-${suffix}` : `felix-6-${dir}-${kind}-${suffix}`;
}

/** Every set name an endpoint owns in one family. */
export function endpointSetNames(family: Family, suffix: string): string[] {
  return (['to', 'from'] as const).flatMap((dir) => SET_KINDS.map((kind) => setName(family, dir, kind, suffix)));
}

/** Temporary sets used to replace a set's contents atomically (fill, then swap). */
export function tempSetName(type: IpSetType, family: Family): string {
  return `felix-tmp-${type === 'hash:net' ? 'net' : 'netport'}-${family}`;
}

export type IpSetType = 'hash:net' | 'hash:net,port';

export function isTempSet(name: string): boolean {
  return name.startsWith('felix-tmp-');
}
