/**
 * Independent protocol peers for integration tests, built directly on
 * zeromq sockets (not on src/common/zmq), so that a daemon is checked
 * against the wire format rather than against our own plumbing.
 */
import * as zmq from 'zeromq';

type Json = Record<string, unknown>;

/** Extra zeromq socket options for a peer (CurveZMQ keys, size limit). */
export interface PeerOptions {
  curveServer?: boolean;
  curvePublicKey?: string;
  curveSecretKey?: string;
  curveServerKey?: string;
  maxMessageSize?: number;
  /** Milliseconds before reconnecting after a lost connection or a failed handshake. */
  reconnectInterval?: number;
}

/** Options making a peer a CURVE server with `pair`. */
export const curveServer = (pair: { secretKey: string }): PeerOptions => ({ curveServer: true, curveSecretKey: pair.secretKey });

/** Options making a peer a CURVE client with its own `pair`, talking to the server whose public key is `serverKey`. */
export const curveClient = (pair: { publicKey: string; secretKey: string }, serverKey: string): PeerOptions => ({
  curvePublicKey: pair.publicKey,
  curveSecretKey: pair.secretKey,
  curveServerKey: serverKey,
});

/** Collects messages and lets a test wait for one that matches. */
export class Inbox {
  readonly messages: Json[] = [];
  private waiters: Array<() => void> = [];

  push(m: Json): void {
    this.messages.push(m);
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves with the first not-yet-taken message matching `pred`; fails after `timeoutMs`. */
  async take(pred: (m: Json) => boolean, what: string, timeoutMs = 5000): Promise<Json> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.messages.findIndex(pred);
      if (i >= 0) return this.messages.splice(i, 1)[0]!;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${timeoutMs} ms; have: ${JSON.stringify(this.messages).slice(0, 600)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Asserts nothing matching arrives within `ms`. */
  async none(pred: (m: Json) => boolean, ms: number): Promise<void> {
    await new Promise((r) => setTimeout(r, ms));
    const m = this.messages.find(pred);
    if (m) throw new Error(`unexpected message ${JSON.stringify(m)}`);
  }
}

/** A REP socket answering every request with `reply(request)` and recording the requests. */
export class ReplyPeer {
  readonly inbox = new Inbox();
  private readonly socket: zmq.Reply;

  constructor(
    private readonly reply: (req: Json) => Json | Promise<Json> = (req) => ({ type: req['type'], rc: 'SUCCESS', message: '' }),
    options: PeerOptions = {},
  ) {
    this.socket = new zmq.Reply({ linger: 0, ...options });
  }

  async bind(address: string): Promise<this> {
    await this.socket.bind(address);
    void (async () => {
      try {
        for await (const [body] of this.socket) {
          const req = JSON.parse(body!.toString()) as Json;
          this.inbox.push(req);
          await this.socket.send(JSON.stringify(await this.reply(req)));
        }
      } catch {
        /* closed */
      }
    })();
    return this;
  }

  close(): void {
    this.socket.close();
  }
}

/** A REQ socket sending raw frames and returning the parsed reply (or throwing after `timeoutMs`). */
export class RequestPeer {
  private socket: zmq.Request;

  constructor(
    private readonly address: string,
    private readonly timeoutMs = 5000,
    private readonly options: PeerOptions = {},
  ) {
    this.socket = this.open();
  }

  private open(): zmq.Request {
    const s = new zmq.Request({ linger: 0, receiveTimeout: this.timeoutMs, sendTimeout: this.timeoutMs, ...this.options });
    s.connect(this.address);
    return s;
  }

  async raw(...frames: Array<string | Buffer>): Promise<Json> {
    try {
      await this.socket.send(frames);
      const [reply] = await this.socket.receive();
      return JSON.parse(reply!.toString()) as Json;
    } catch (err) {
      // A REQ socket is stuck after a lost reply: start again for the next call.
      this.socket.close();
      this.socket = this.open();
      throw err;
    }
  }

  request(msg: Json): Promise<Json> {
    return this.raw(JSON.stringify(msg));
  }

  close(): void {
    this.socket.close();
  }
}

/** A SUB socket recording `[topic, json]` publications as `{topic, ...json}`. */
export class SubscribePeer {
  readonly inbox = new Inbox();
  private readonly socket: zmq.Subscriber;

  constructor(address: string, topics: string[], options: PeerOptions = {}) {
    const socket = (this.socket = new zmq.Subscriber({ linger: 0, ...options }));
    socket.connect(address);
    for (const t of topics) socket.subscribe(t);
    void (async () => {
      try {
        for await (const [topic, body] of socket) this.inbox.push({ topic: topic!.toString(), ...(JSON.parse(body!.toString()) as Json) });
      } catch {
        /* closed */
      }
    })();
  }

  close(): void {
    this.socket.close();
  }
}

/** A PUB socket sending `[topic, json]` (or raw frames). */
export class PublishPeer {
  private readonly socket: zmq.Publisher | zmq.XPublisher;
  private chain: Promise<void> = Promise.resolve();

  /** With `onSubscribe`, an XPUB (verbose) calling it for every subscription, as the v2 ACL manager does. */
  constructor(
    options: PeerOptions = {},
    private readonly onSubscribe?: (topic: string) => void,
  ) {
    if (onSubscribe) {
      const x = new zmq.XPublisher({ linger: 0, ...options });
      x.verbosity = 'allSubs';
      this.socket = x;
    } else this.socket = new zmq.Publisher({ linger: 0, ...options });
  }

  async bind(address: string): Promise<this> {
    await this.socket.bind(address);
    const socket = this.socket;
    const onSubscribe = this.onSubscribe;
    if (onSubscribe && socket instanceof zmq.XPublisher) {
      void (async () => {
        try {
          for await (const [msg] of socket) if (msg && msg[0] === 1) onSubscribe(msg.subarray(1).toString());
        } catch {
          /* closed */
        }
      })();
    }
    return this;
  }

  publish(topic: string, msg: Json): Promise<void> {
    return this.raw(topic, JSON.stringify(msg));
  }

  raw(...frames: Array<string | Buffer>): Promise<void> {
    this.chain = this.chain.then(() => this.socket.send(frames));
    return this.chain;
  }

  close(): void {
    this.socket.close();
  }
}
