/**
 * A PUB (or XPUB) socket sending `[topic, json]` (SPEC §2). zeromq.js allows
 * one send in progress per socket, so sends are chained.
 *
 * As an XPUB (SPEC §5 "No lost first ACLs"): verbose, so every subscription
 * (duplicates too) is reported to `onSubscription`, and XPUB_NODROP, so a send
 * at the high-water mark fails with EAGAIN instead of being dropped silently:
 * the publisher backs off briefly and retries until the socket accepts it.
 */
import * as zmq from 'zeromq';
import type { Logger } from '../logging.js';
import { Backoff } from '../backoff.js';
import { encode } from '../wire/codec.js';
import { SocketOptions, bindSocket } from './options.js';

export interface XpubOptions {
  /** Called for every subscription (`subscribe` true) or unsubscription frame received. */
  onSubscription: (topic: string, subscribe: boolean) => void;
  /** Messages queued per subscriber before sends are refused (EAGAIN) and retried; default 100000. */
  sendHighWaterMark?: number;
  /** Kernel send buffer per connection (SO_SNDBUF); the OS default if absent. */
  sendBufferBytes?: number;
  /** ZMTP heartbeats to every subscriber, and how long one may stay silent before it is disconnected; 0/absent: none. */
  heartbeatMs?: number;
  heartbeatTimeoutMs?: number;
}

/** Back-off between retries of a send refused at the high-water mark. */
const RETRY_MIN_MS = 1;
const RETRY_MAX_MS = 50;

export class Publisher {
  private chain: Promise<void> = Promise.resolve();
  private closed = false;
  /** Messages sent so far. */
  sent = 0;
  /** Sends refused at the high-water mark (XPUB only) and retried. */
  retries = 0;

  private constructor(
    private readonly socket: zmq.Publisher | zmq.XPublisher,
    private readonly log: Logger,
  ) {}

  static async bind(address: string, log: Logger, options: SocketOptions = {}, xpub?: XpubOptions): Promise<Publisher> {
    if (!xpub) {
      // A resync publishes one message per endpoint at once; ZeroMQ's default of 1000 queued
      // messages per subscriber would drop some of a large burst.
      const socket = await bindSocket(new zmq.Publisher({ sendHighWaterMark: 100000 }), address, options, log);
      log.info({ address, kind: 'pub' }, 'publishing');
      return new Publisher(socket, log);
    }
    // sendTimeout 0: a send at the high-water mark fails at once (EAGAIN) and is retried after a
    // short back-off, rather than blocking inside zeromq.js.
    // zeromq.js names ZMQ_XPUB_VERBOSE `verbosity: 'allSubs'` (a setter, not a constructor option).
    const raw = new zmq.XPublisher({
      sendHighWaterMark: xpub.sendHighWaterMark ?? 100000,
      noDrop: true,
      sendTimeout: 0,
      heartbeatInterval: xpub.heartbeatMs ?? 0,
      heartbeatTimeout: xpub.heartbeatTimeoutMs ?? 0,
      ...(xpub.sendBufferBytes !== undefined ? { sendBufferSize: xpub.sendBufferBytes } : {}),
    });
    raw.verbosity = 'allSubs';
    const socket = await bindSocket(raw, address, options, log);
    log.info({ address, kind: 'xpub' }, 'publishing');
    const self = new Publisher(socket, log);
    void self.readSubscriptions(socket, xpub);
    return self;
  }

  publish(topic: string, msg: object): Promise<void> {
    return this.publishEncoded(topic, encode(msg));
  }

  /** Sends a body already encoded (e.g. built around a part serialised once for many topics). */
  publishEncoded(topic: string, body: string): Promise<void> {
    this.chain = this.chain
      .then(() => this.sendPaced([topic, body]))
      .then((sent) => {
        if (sent) this.sent++;
      })
      .catch((err: unknown) => this.log.error({ err, topic }, 'publish failed'));
    return this.chain;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.chain;
    this.socket.close();
  }

  /** Sends, retrying with back-off while the socket refuses at the high-water mark; false if closed first. */
  private async sendPaced(frames: Array<string | Buffer>): Promise<boolean> {
    // Made on the first refusal only: nearly every send goes through at once.
    let backoff: Backoff | undefined;
    for (;;) {
      if (this.closed && this.socket instanceof zmq.XPublisher) return false;
      try {
        await this.socket.send(frames);
        return true;
      } catch (err) {
        if ((err as { code?: string }).code !== 'EAGAIN') throw err;
        this.retries++;
        const wait = (backoff ??= new Backoff(RETRY_MIN_MS, RETRY_MAX_MS)).next();
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  private async readSubscriptions(socket: zmq.XPublisher, xpub: XpubOptions): Promise<void> {
    try {
      for await (const [msg] of socket) {
        if (!msg || msg.length === 0) continue;
        const kind = msg[0];
        if (kind !== 0 && kind !== 1) continue;
        try {
          xpub.onSubscription(msg.subarray(1).toString('utf8'), kind === 1);
        } catch (err) {
          this.log.error({ err }, 'subscription handler failed');
        }
      }
    } catch (err) {
      if (!this.closed && !socket.closed) this.log.error({ err }, 'reading subscriptions failed');
    }
  }
}
