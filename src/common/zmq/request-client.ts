/**
 * A REQ socket with the discipline of SPEC §2: requests queue behind the one
 * in flight; after `keepaliveMs` of idleness a HEARTBEAT goes out; if a reply
 * does not come within `timeoutMs` the socket is closed and recreated (a REQ
 * socket cannot recover otherwise), every outstanding request fails with
 * {@link ConnectionResetError}, and `onReset` tells the owner to resync.
 */
import * as zmq from 'zeromq';
import type { Logger } from '../logging.js';
import { Clock, realClock } from '../clock.js';
import { encode, heartbeat } from '../wire/codec.js';
import type { WireRequest } from '../wire/requests.js';
import { SocketOptions, applySocketOptions } from './options.js';
import { SocketStats, replyKind } from './stats.js';

export class ConnectionResetError extends Error {
  readonly code = 'ECONNRESET';
}

export interface RequestClientOptions {
  address: string;
  timeoutMs: number;
  /** Send HEARTBEAT after this much idleness; 0 disables. */
  keepaliveMs: number;
  log: Logger;
  /**
   * Called after the socket was recreated; outstanding requests have failed.
   * May be async; a throw or rejection is logged, since it happens on a timer.
   */
  onReset?: (reason: string) => unknown;
  socketOptions?: SocketOptions;
  /** Counts replies (by type and rc) and resets; kept by the owner across clients. */
  stats?: SocketStats;
  /** Keepalive and timeout timers; real ones unless a test passes a fake. */
  clock?: Clock;
}

interface Pending {
  body: string;
  resolve: (reply: Buffer) => void;
  reject: (err: Error) => void;
}

/**
 * One REQ connection to one API's server (see the file comment). `R` is that
 * API's request union from wire/requests.ts (`AclRequest` for the ACL
 * manager, …): {@link request} takes only those messages, so a literal that
 * is not one fails to compile. Its timers run on `opts.clock`.
 */
export class RequestClient<R extends WireRequest = WireRequest> {
  private socket: zmq.Request;
  private readonly queue: Pending[] = [];
  private busy = false;
  private closed = false;
  private readonly clock: Clock;
  private lastActivity: number;
  private readonly keepaliveTimer: unknown;

  constructor(private readonly opts: RequestClientOptions) {
    this.clock = opts.clock ?? realClock;
    this.lastActivity = this.clock.now();
    this.socket = this.connect();
    if (opts.keepaliveMs > 0) {
      this.keepaliveTimer = this.clock.setInterval(() => this.keepalive(), Math.max(50, Math.floor(opts.keepaliveMs / 4)));
    }
  }

  get address(): string {
    return this.opts.address;
  }

  /** Requests waiting behind the one in flight. */
  get queued(): number {
    return this.queue.length;
  }

  /** A request (a HEARTBEAT too) has been handed to the socket and its reply is awaited. */
  get inFlight(): boolean {
    return this.busy;
  }

  /** Queues `msg`; resolves with the raw reply body. */
  request(msg: R): Promise<Buffer> {
    return this.enqueue(encode(msg));
  }

  private enqueue(body: string): Promise<Buffer> {
    if (this.closed) return Promise.reject(new Error('request client is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ body, resolve, reject });
      void this.pump();
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.keepaliveTimer !== undefined) this.clock.clearInterval(this.keepaliveTimer);
    this.failQueued(new Error('request client is closed'));
    this.socket.close();
  }

  private connect(): zmq.Request {
    const socket = new zmq.Request();
    applySocketOptions(socket, this.opts.socketOptions ?? {}, this.opts.address, 'client');
    socket.linger = 0;
    socket.connect(this.opts.address);
    return socket;
  }

  private async pump(): Promise<void> {
    if (this.busy || this.closed) return;
    const next = this.queue.shift();
    if (!next) return;
    this.busy = true;
    this.lastActivity = this.clock.now();
    const socket = this.socket;
    let timedOut = false as boolean; // set by the timer while the request is in flight
    const timer = this.clock.setTimeout(() => {
      timedOut = true;
      this.reset(`no reply from ${this.opts.address} within ${this.opts.timeoutMs} ms`);
    }, this.opts.timeoutMs);
    try {
      await socket.send(next.body);
      const [reply] = await socket.receive();
      if (this.opts.stats) {
        const { type, rc } = replyKind(reply ?? Buffer.alloc(0));
        this.opts.stats.record(type, rc);
      }
      next.resolve(reply ?? Buffer.alloc(0));
    } catch (err) {
      next.reject(timedOut ? new ConnectionResetError(`no reply from ${this.opts.address}`) : (err as Error));
    } finally {
      this.clock.clearTimeout(timer);
      this.lastActivity = this.clock.now();
      this.busy = false;
      void this.pump();
    }
  }

  private reset(reason: string): void {
    if (this.closed) return;
    if (this.opts.stats) this.opts.stats.resets++;
    this.opts.log.warn({ address: this.opts.address, reason }, 'request socket timed out; recreating it');
    this.socket.close();
    this.socket = this.connect();
    this.failQueued(new ConnectionResetError(reason));
    const failed = (err: unknown) => this.opts.log.error({ err, address: this.opts.address }, 'reset handler failed');
    try {
      const pending: unknown = this.opts.onReset?.(reason);
      if (pending instanceof Promise) pending.catch(failed);
    } catch (err) {
      failed(err);
    }
  }

  private failQueued(err: Error): void {
    for (const p of this.queue.splice(0)) p.reject(err);
  }

  private keepalive(): void {
    if (this.busy || this.queue.length > 0 || this.clock.now() - this.lastActivity < this.opts.keepaliveMs) return;
    this.enqueue(encode(heartbeat())).catch(() => {
      /* a lost heartbeat already triggered reset() */
    });
  }
}
