/**
 * How an endpoint id becomes names in the kernel (SPEC §3 "Ids and names
 * (v2)"), and what an interface name and prefix may be: the one place these
 * rules are written. Ids may hold any printable character, but chain, set
 * and interface names may not, so an id whose first 11 characters are not
 * all `[A-Za-z0-9_.-]` is named by a hash instead.
 */
import { createHash } from 'node:crypto';
import type { KeySpec } from './config.js';

const PLAIN_RE = /^[A-Za-z0-9_.-]{1,11}/;
/** Interface names go into iptables rules and /proc paths: Linux's 15 characters, nothing special. */
const INTERFACE_NAME_RE = /^[A-Za-z0-9_.-]{1,15}$/;
/** A prefix leaves room for the 11-character suffix within the 15. */
const INTERFACE_PREFIX_RE = /^[A-Za-z0-9_-]{1,4}$/;

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

/** At most 15 of `[A-Za-z0-9_.-]`: what Felix accepts as an endpoint's interface name. */
export function isInterfaceName(name: string): boolean {
  return INTERFACE_NAME_RE.test(name);
}

/** 1-4 of `[A-Za-z0-9_-]`. */
export function isInterfacePrefix(prefix: string): boolean {
  return INTERFACE_PREFIX_RE.test(prefix);
}

/** The `InterfacePrefix` config key (and the plugin's `--interface-prefix`). */
export const interfacePrefix = (dflt = 'tap'): KeySpec<string> => ({
  default: dflt,
  parse: (raw) => {
    if (!isInterfacePrefix(raw)) throw new Error('expected 1-4 letters or digits');
    return raw;
  },
});
