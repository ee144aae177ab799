/**
 * How an endpoint id becomes names in the kernel (SPEC §3 "Ids and names
 * (v2)"): the one place this rule is written. Ids may hold any printable
 * character, but chain, set and interface names may not, so an id whose first
 * 11 characters are not all `[A-Za-z0-9_.-]` is named by a hash instead.
 */
import { createHash } from 'node:crypto';

const PLAIN_RE = /^[A-Za-z0-9_.-]{1,11}/;

/** The chain suffix `S`: the id's first 11 characters, or `x` + 10 hex digits of its SHA-256. */
export function endpointSuffix(id: string): string {
  const head = id.slice(0, 11);
  if (PLAIN_RE.exec(head)?.[0] === head) return head;
  return 'x' + createHash('sha256').update(id).digest('hex').slice(0, 10);
}

/** The interface an endpoint gets when the plugin names none: prefix + suffix. */
export function defaultInterfaceName(interfacePrefix: string, id: string): string {
  return interfacePrefix + endpointSuffix(id);
}
