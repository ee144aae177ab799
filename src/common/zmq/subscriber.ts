/**
 * A SUB socket that delivers a message only to a topic subscribed to
 * exactly: ZeroMQ matches by prefix, so `abc` would otherwise also receive
 * `abcd`'s messages (SPEC §2). `recreate()` builds a fresh socket with every
 * subscription restored. A connection that libzmq drops for good (it does
 * not reconnect after a protocol error, e.g. a message over the size limit)
 * is replaced by a fresh socket after {@link REVIVE_MS}.
 */
import * as zmq from 'zeromq';
import type { Logger } from '../logging.js';
import type { Decoded } from '../wire/codec.js';
import { SocketOptions, applySocketOptions } from './options.js';
import type { SocketStats } from './stats.js';

/** May be async: a rejection is logged like a throw, never left unhandled. */
export type TopicHandler = (topic: string, body: Buffer) => void;

export interface DecodingSubscriberOptions<T> {
  /** The API's decoder for what arrives on this socket. */
  decode: (body: Buffer) => Decoded<T>;
  log: Logger;
  /** Counts every publication: its `type`, or `ERROR` with the rc of why it was refused. */
  stats: SocketStats;
  /** The warning a bad publication is logged with (its topic and the decoder's error alongside). */
  badMessage: string;
}

/**
 * The usual handler of an API's SUB socket, as `decodingHandler` (reply-server.ts) is of
 * its server socket: decodes each publication, counts it, logs a bad one (and
 * drops it), and hands every good one, HEARTBEAT included, to `handle`, which
 * checks the topic against the type. Decoding happens here, at the edge
 * (STYLE: socket → decode → state).
 */
export function decodingSubscriber<T extends { type: string }>(opts: DecodingSubscriberOptions<T>, handle: (topic: string, msg: T) => void): TopicHandler {
  return (topic, body) => {
    const decoded = opts.decode(body);
    opts.stats.record(decoded.ok ? decoded.msg.type : 'ERROR', decoded.ok ? '' : decoded.error.rc);
    if (!decoded.ok) {
      opts.log.warn({ topic, ...decoded.error }, opts.badMessage);
      return;
    }
    handle(topic, decoded.msg);
  };
}

/** A disconnected socket that has not completed a handshake again within this is replaced. */
export const REVIVE_MS = 1000;

export class Subscriber {
  private socket: zmq.Subscriber;
  private readonly topics = new Set<string>();
  private closed = false;
  private handshaken = false;
  private waiters: Array<() => void> = [];
  /** The socket was replaced after losing its connection: its first handshake is a reconnection. */
  private revived = false;
  private reviveTimer: NodeJS.Timeout | undefined;
  private paused = false;
  /** Messages still to read while paused: a queue's worth past the last resume (or the start). */
  private allowance: number;
  /** Readers waiting for {@link resume} (or for their socket to be replaced or closed). */
  private gateWaiters: Array<() => void> = [];
  /** Called when the socket completes a handshake again after losing its publisher (e.g. it restarted). */
  onReconnect: (() => void) | undefined;

  constructor(
    private readonly address: string,
    // Typed to return unknown: a TopicHandler may be an async function whose promise is caught below.
    private readonly onMessage: (topic: string, body: Buffer) => unknown,
    private readonly log: Logger,
    private readonly options: SocketOptions = {},
    /** Messages (and bytes in the kernel) queued before the publisher must hold back; libzmq's defaults if absent. */
    private readonly queue: { messages?: number; bytes?: number } = {},
  ) {
    this.allowance = queue.messages ?? Infinity;
    this.socket = this.open();
  }

  subscribe(topic: string): void {
    if (this.topics.has(topic)) return;
    this.topics.add(topic);
    this.socket.subscribe(topic);
  }

  unsubscribe(topic: string): void {
    if (!this.topics.delete(topic)) return;
    this.socket.unsubscribe(topic);
  }

  /**
   * Resolves once the current socket has completed a handshake with the
   * publisher, i.e. its subscriptions are on their way: a peer that asks for
   * a full publication (GETGROUPS) waits for this so it does not miss it.
   */
  connected(): Promise<void> {
    if (this.handshaken) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Closes the socket and opens a new one with the same subscriptions. */
  recreate(): void {
    if (this.closed) return;
    const old = this.socket;
    this.handshaken = false;
    this.socket = this.open();
    old.close();
    // The old socket's reader, if waiting to read, sees its socket closed and ends.
    this.openGates();
  }

  close(): void {
    this.closed = true;
    this.openGates();
    clearTimeout(this.reviveTimer);
    this.socket.close();
  }

  private open(): zmq.Subscriber {
    const socket = new zmq.Subscriber();
    applySocketOptions(socket, this.options, this.address, 'client');
    socket.linger = 0;
    if (this.queue.messages !== undefined) socket.receiveHighWaterMark = this.queue.messages;
    if (this.queue.bytes !== undefined) socket.receiveBufferSize = this.queue.bytes;
    socket.events.on('handshake', () => {
      if (socket !== this.socket) return;
      clearTimeout(this.reviveTimer);
      const again = this.handshaken || this.revived;
      this.handshaken = true;
      this.revived = false;
      for (const w of this.waiters.splice(0)) w();
      // Last: the callback may recreate the socket.
      if (again) this.onReconnect?.();
    });
    socket.events.on('disconnect', () => {
      if (socket !== this.socket || this.closed) return;
      clearTimeout(this.reviveTimer);
      this.reviveTimer = setTimeout(() => {
        if (socket !== this.socket || this.closed) return;
        this.log.warn({ address: this.address }, 'publisher connection lost and not re-established; recreating the socket');
        this.recreate();
        this.revived = true;
      }, REVIVE_MS);
      this.reviveTimer.unref();
    });
    socket.connect(this.address);
    for (const t of this.topics) socket.subscribe(t);
    void this.loop(socket);
    return socket;
  }

  /**
   * Until {@link resume}, reads no more than what the socket queue holds
   * (`queue.messages`) past the last resume: the rest waits in the socket
   * and, once it is full, at the publisher, so a publisher that keeps only
   * the latest message per topic sends this subscriber what it takes.
   */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.allowance = this.queue.messages ?? Infinity;
    this.openGates();
  }

  private openGates(): void {
    for (const open of this.gateWaiters.splice(0)) open();
  }

  private async loop(socket: zmq.Subscriber): Promise<void> {
    try {
      for (;;) {
        if (this.paused && this.allowance <= 0) await new Promise<void>((resolve) => this.gateWaiters.push(resolve));
        // Not `socket !== this.socket`: the first pass runs inside open(), before the socket is assigned.
        if (this.closed || socket.closed) return;
        this.allowance--;
        const frames = await socket.receive();
        const topic = frames[0]?.toString('utf8') ?? '';
        if (!this.topics.has(topic)) continue;
        if (frames.length !== 2) {
          this.log.warn({ topic, frames: frames.length }, 'publication with wrong frame count ignored');
          continue;
        }
        const failed = (err: unknown) => this.log.error({ err, topic }, 'publication handler failed');
        try {
          // Not awaited, so a slow handler does not hold up the socket.
          const pending: unknown = this.onMessage(topic, frames[1]!);
          if (pending instanceof Promise) pending.catch(failed);
        } catch (err) {
          failed(err);
        }
      }
    } catch (err) {
      if (!this.closed && socket === this.socket) this.log.error({ err }, 'subscriber socket failed');
    }
  }
}
