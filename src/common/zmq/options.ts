/** Socket options every daemon may set (SPEC §2; hardening knobs of issue 7 land here). */
import type * as zmq from 'zeromq';

export interface SocketOptions {
  /** Refuse messages larger than this many bytes (ZMQ_MAXMSGSIZE); -1 = no limit. */
  maxMessageSize?: number;
}

export function applySocketOptions(socket: zmq.Socket, options: SocketOptions): void {
  if (options.maxMessageSize !== undefined) socket.maxMessageSize = options.maxMessageSize;
}
