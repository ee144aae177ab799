/** Socket options every daemon may set (SPEC §2; hardening knobs of issue 7 land here). */
import type * as zmq from 'zeromq';

export interface SocketOptions {
  /** Refuse messages larger than this many bytes (ZMQ_MAXMSGSIZE); -1 = no limit. */
  maxMessageSize?: number;
}

/**
 * Applies `options`, and enables IPv6 when `address` names an IPv6 host
 * (ZeroMQ sockets are IPv4-only unless told otherwise).
 */
export function applySocketOptions(socket: zmq.Socket, options: SocketOptions, address: string): void {
  if (/^tcp:\/\/\[/.test(address)) socket.ipv6 = true;
  if (options.maxMessageSize !== undefined) socket.maxMessageSize = options.maxMessageSize;
}

/** Binds a new server-side socket: options applied, linger 0, and a bind failure closes it and names the address. */
export async function bindSocket<S extends zmq.Socket & { bind(address: string): Promise<void> }>(socket: S, address: string, options: SocketOptions): Promise<S> {
  applySocketOptions(socket, options, address);
  socket.linger = 0;
  try {
    await socket.bind(address);
  } catch (err) {
    socket.close();
    throw new Error(`cannot bind ${address}: ${(err as Error).message}`);
  }
  return socket;
}
