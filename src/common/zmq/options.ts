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
