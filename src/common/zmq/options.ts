/** Socket options every daemon may set (SPEC §2; hardening knobs of issue 7). */
import type * as zmq from 'zeromq';
import type { Logger } from '../logging.js';
import { watchRefusedHandshakes } from './refusals.js';

/** A CurveZMQ key pair, Z85 text (40 characters each), as zeromq's `curveKeyPair()` makes them. */
export interface CurveKeyPair {
  publicKey: string;
  secretKey: string;
}

export interface SocketOptions {
  /** Refuse messages larger than this many bytes (ZMQ_MAXMSGSIZE); -1 = no limit. */
  maxMessageSize?: number;
  /**
   * CurveZMQ: this daemon's own key pair. A bound socket becomes a CURVE
   * server with it; a connecting socket also needs {@link curveServerKey}.
   * Absent: no security mechanism, the 2014 wire.
   */
  curve?: CurveKeyPair;
  /** The public key of the server a connecting socket talks to (with {@link curve}). */
  curveServerKey?: string;
}

/** The options for a socket connecting to a server whose public key is `serverKey` (null when security is off). */
export function clientOptions(options: SocketOptions, serverKey: string | null): SocketOptions {
  return serverKey === null ? options : { ...options, curveServerKey: serverKey };
}

/**
 * Applies `options` to a socket that binds (`server`) or connects (`client`),
 * and enables IPv6 when `address` names an IPv6 host (ZeroMQ sockets are
 * IPv4-only unless told otherwise).
 */
export function applySocketOptions(socket: zmq.Socket, options: SocketOptions, address: string, side: 'server' | 'client'): void {
  if (/^tcp:\/\/\[/.test(address)) socket.ipv6 = true;
  if (options.maxMessageSize !== undefined) socket.maxMessageSize = options.maxMessageSize;
  if (!options.curve) return;
  if (side === 'server') {
    socket.curveServer = true;
    socket.curveSecretKey = options.curve.secretKey;
    return;
  }
  // Connecting without the server's key would fall back to no security at all: refuse instead.
  if (!options.curveServerKey) throw new Error(`no CURVE server key for ${address}`);
  socket.curvePublicKey = options.curve.publicKey;
  socket.curveSecretKey = options.curve.secretKey;
  socket.curveServerKey = options.curveServerKey;
}

/**
 * Binds a new server-side socket: options applied, linger 0, refused CURVE
 * handshakes counted (and logged, rate-limited, to `log`), and a bind failure
 * closes it and names the address.
 */
export async function bindSocket<S extends zmq.Socket & { bind(address: string): Promise<void> }>(
  socket: S,
  address: string,
  options: SocketOptions,
  log: Logger,
): Promise<S> {
  applySocketOptions(socket, options, address, 'server');
  socket.linger = 0;
  if (options.curve) watchRefusedHandshakes(socket, address, log);
  try {
    await socket.bind(address);
  } catch (err) {
    socket.close();
    throw new Error(`cannot bind ${address}: ${(err as Error).message}`);
  }
  return socket;
}
