/**
 * The hardening settings every daemon shares (issue 7): the largest message
 * a socket accepts, and optional CurveZMQ keys (`[security]`). With no keys
 * set the wire is exactly the 2014 one.
 */
import { ConfigError, KeySpec, int } from './config.js';
import { keyFile, keyListFile, resolveCurve, secretKeyFile } from './curve.js';
import type { SocketOptions } from './zmq/options.js';

/** 10 MiB: a GROUPUPDATE or ACLUPDATE of 10 000 members is under 1 MiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 10 * 1024 * 1024;

/** `MaxMessageBytes`: a peer sending more is disconnected by ZeroMQ (ZMQ_MAXMSGSIZE). */
export const maxMessageBytes = (): KeySpec<number> => int(DEFAULT_MAX_MESSAGE_BYTES, 1024, 2 ** 31 - 1);

const OWN_SECRET = 'CurveSecretKeyFile';
const OWN_PUBLIC = 'CurvePublicKeyFile';
const CLIENT_KEYS = 'CurveClientKeysFile';

/**
 * The `[security]` section: this daemon's key files, the public key file of
 * each server it connects to, and optionally the file of client public keys
 * its own sockets admit (unset: any client that knows its public key).
 */
export function securitySection<P extends string>(
  peers: readonly P[],
): Record<typeof OWN_SECRET | typeof OWN_PUBLIC | P, KeySpec<string | null>> & Record<typeof CLIENT_KEYS, KeySpec<string[] | null>> {
  const section: Record<string, KeySpec<unknown>> = { [OWN_SECRET]: secretKeyFile(), [OWN_PUBLIC]: keyFile(), [CLIENT_KEYS]: keyListFile() };
  for (const p of peers) section[p] = keyFile();
  return section as Record<typeof OWN_SECRET | typeof OWN_PUBLIC | P, KeySpec<string | null>> & Record<typeof CLIENT_KEYS, KeySpec<string[] | null>>;
}

/**
 * A daemon's socket options from its loaded config; the `[security]` keys
 * must be all set or all unset. Throws a one-line {@link ConfigError}
 * naming the file, section and key.
 */
export function daemonSocketOptions(file: string, maxMessageSize: number, security: Record<string, string | string[] | null>): SocketOptions {
  const named = (name: string) => ({ name: `[security] ${name}`, key: (security[name] as string | null | undefined) ?? null });
  const peers = Object.keys(security).filter((k) => k !== OWN_SECRET && k !== OWN_PUBLIC && k !== CLIENT_KEYS);
  try {
    const curve = resolveCurve(named(OWN_SECRET), named(OWN_PUBLIC), peers.map(named), [
      { name: `[security] ${CLIENT_KEYS}`, set: security[CLIENT_KEYS] != null },
    ]);
    return curve ? { maxMessageSize, curve } : { maxMessageSize };
  } catch (err) {
    throw new ConfigError(`${file}: ${(err as Error).message}`);
  }
}
