/**
 * A REP or ROUTER socket that answers every request. The handler maps one
 * request body to one reply object; anything that goes wrong (extra frames,
 * a throwing handler) still gets an answer, so a peer's REQ socket is never
 * left waiting and the loop never dies on input.
 */
import * as zmq from 'zeromq';
import type { Logger } from '../logging.js';
import { Rc, encode } from '../wire/codec.js';
import { SocketOptions, bindSocket } from './options.js';
import { SocketStats, replyKind } from './stats.js';

export type RequestHandler = (body: Buffer) => object | Promise<object>;

export class ReplyServer {
  private closed = false;
  private readonly done: Promise<void>;

  private constructor(
    private readonly socket: zmq.Reply | zmq.Router,
    private readonly handler: RequestHandler,
    private readonly log: Logger,
    private readonly stats: SocketStats | undefined,
  ) {
    this.done = this.loop();
  }

  /**
   * Binds `address` ("tcp://host:port") with a REP (`rep`) or ROUTER (`router`) socket and starts serving;
   * `options.stats` counts requests by the type and rc of their reply (a reply echoes its request's type).
   */
  static async bind(kind: 'rep' | 'router', address: string, handler: RequestHandler, log: Logger, options: SocketOptions & { stats?: SocketStats } = {}): Promise<ReplyServer> {
    const socket = await bindSocket<zmq.Reply | zmq.Router>(kind === 'rep' ? new zmq.Reply() : new zmq.Router(), address, options);
    log.info({ address, kind }, 'listening');
    return new ReplyServer(socket, handler, log, options.stats);
  }

  private async loop(): Promise<void> {
    const router = this.socket instanceof zmq.Router;
    try {
      for await (const frames of this.socket) {
        // ROUTER: [peer identity, empty delimiter (from REQ), body]; REP: [body].
        const head = router ? frames.slice(0, 2) : [];
        const parts = router ? frames.slice(2) : frames;
        const reply = parts.length === 1 ? await this.answer(parts[0]!) : encode({ type: 'ERROR', rc: Rc.INVALID, message: `expected one frame, got ${parts.length}` });
        if (parts.length !== 1) {
          this.log.warn({ frames: parts.length }, 'request with wrong frame count');
          this.stats?.record('ERROR', Rc.INVALID);
        }
        await this.socket.send([...head, reply]);
      }
    } catch (err) {
      if (!this.closed) this.log.error({ err }, 'reply socket failed');
    }
  }

  /** The encoded reply; encoding is inside the guard so a reply that cannot be encoded still gets an answer. */
  private async answer(body: Buffer): Promise<string> {
    try {
      const reply = await this.handler(body);
      if (this.stats) {
        const { type, rc } = replyKind(reply);
        this.stats.record(type, rc);
      }
      return encode(reply);
    } catch (err) {
      this.log.error({ err }, 'request handler failed');
      this.stats?.record('ERROR', Rc.FAILURE);
      return encode({ type: 'ERROR', rc: Rc.FAILURE, message: `internal error: ${(err as Error).message}` });
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.socket.close();
    await this.done;
  }
}
