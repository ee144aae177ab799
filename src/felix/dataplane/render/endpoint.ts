/** One endpoint's desired state as Felix receives it, and its addresses per family. Pure. */
import { canonicalIp, ipFamily } from '../../../common/wire/codec.js';
import type { Family } from './names.js';

export interface EndpointSpec {
  id: string;
  ifname: string;
  mac: string;
  addrs: string[];
  enabled: boolean;
}

/** Addresses of one family, canonical and sorted. */
export function addrsOf(spec: EndpointSpec, family: Family): string[] {
  return [...new Set(spec.addrs.filter((a) => ipFamily(a) === family).map(canonicalIp))].sort();
}
