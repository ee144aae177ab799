/**
 * The hardening settings every daemon shares (issue 7): the largest message
 * a socket accepts, and optional CurveZMQ keys (`[security]`). With no keys
 * set the wire is exactly the 2014 one.
 */
import { ConfigError, KeySpec, int } from './config.js';
import { keyFile, resolveCurve } from './curve.js';
import type { SocketOptions } from './zmq/options.js';

/** 10 MiB: a GROUPUPDATE or ACLUPDATE of 10 000 members is under 1 MiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 10 * 1024 * 1024;

/** `MaxMessageBytes`: a peer sending more is disconnected by ZeroMQ (ZMQ_MAXMSGSIZE). */
export const maxMessageBytes = (): KeySpec<number> => int(DEFAULT_MAX_MESSAGE_BYTES, 1024, 2 ** 31 - 1);

const OWN_SECRET = 'CurveSecretKeyFile';
const OWN_PUBLIC = 'CurvePublicKeyFile';

/** The `[security]` section: this daemon's key files, and the public key file of each server it connects to. */
export function securitySection<P extends string>(peers: readonly P[]): Record<typeof OWN_SECRET | typeof OWN_PUBLIC | P, KeySpec<string | null>> {
  const section: Record<string, KeySpec<string | null>> = { [OWN_SECRET]: keyFile(), [OWN_PUBLIC]: keyFile() };
  for (const p of peers) section[p] = keyFile();
  return section as Record<typeof OWN_SECRET | typeof OWN_PUBLIC | P, KeySpec<string | null>>;
}

/**
 * A daemon's socket options from its loaded config; the `[security]` keys
 * must be all set or all unset. Throws a one-line {@link ConfigError}
 * naming the file, section and key.
 */
export function daemonSocketOptions(file: string, maxMessageSize: number, security: Record<string, string | null>): SocketOptions {
  const named = (name: string) => ({ name: `[security] ${name}`, key: security[name] ?? null });
  const peers = Object.keys(security).filter((k) => k !== OWN_SECRET && k !== OWN_PUBLIC);
  try {
    const curve = resolveCurve(named(OWN_SECRET), named(OWN_PUBLIC), peers.map(named));
    return curve ? { maxMessageSize, curve } : { maxMessageSize };
  } catch (err) {
    throw new ConfigError(`${file}: ${(err as Error).message}`);
  }
}
