/**
 * A REP or ROUTER socket that answers every request. The handler maps one
 * request body to one reply object; anything that goes wrong (extra frames,
 * a throwing handler) still gets an answer, so a peer's REQ socket is never
 * left waiting and the loop never dies on input.
 */
import * as zmq from 'zeromq';
import type { Logger } from '../logging.js';
import { Decoded, HEARTBEAT, Heartbeat, Rc, encode, errorResponse, heartbeat } from '../wire/codec.js';
import { SocketOptions, bindSocket } from './options.js';
import { SocketStats, replyKind } from './stats.js';

export type RequestHandler = (body: Buffer) => object | Promise<object>;

/** The 2014 plugin answered HEARTBEAT with `rc: SUCCESS` (SPEC §11); peers written for it may look for that. */
export const PLUGIN_HEARTBEAT_REPLY = { ...heartbeat(), rc: Rc.SUCCESS, message: '' };

/**
 * The usual handler of an API's server socket: decodes with the API's
 * decoder, answers a bad request with its error rc (and logs it), answers
 * HEARTBEAT, and hands every other message to `handle`.
 */
export function decodingHandler<T extends { type: string }>(
  decode: (body: Buffer) => Decoded<T>,
  log: Logger,
  handle: (msg: Exclude<T, Heartbeat>) => object | Promise<object>,
  /** The answer to a HEARTBEAT: SPEC §3's echo unless a drop-in needs the original's (see {@link PLUGIN_HEARTBEAT_REPLY}). */
  heartbeatReply: object = heartbeat(),
): RequestHandler {
  return (body) => {
    const decoded = decode(body);
    if (!decoded.ok) {
      log.warn({ ...decoded.error }, 'bad request');
      return errorResponse(decoded.error);
    }
    if (decoded.msg.type === HEARTBEAT) return heartbeatReply;
    return handle(decoded.msg as Exclude<T, Heartbeat>);
  };
}

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
  static async bind(
    kind: 'rep' | 'router',
    address: string,
    handler: RequestHandler,
    log: Logger,
    options: SocketOptions & { stats?: SocketStats } = {},
  ): Promise<ReplyServer> {
    const socket = await bindSocket<zmq.Reply | zmq.Router>(kind === 'rep' ? new zmq.Reply() : new zmq.Router(), address, options, log);
    log.info({ address, kind }, 'listening');
    return new ReplyServer(socket, handler, log, options.stats);
  }

  private async loop(): Promise<void> {
    const router = this.socket instanceof zmq.Router;
    while (!this.closed) {
      let frames: Buffer[];
      try {
        frames = await this.socket.receive();
      } catch (err) {
        if (this.closed as boolean) return; // close() may have run while this awaited
        // A REP socket discards a request without an envelope (a DEALER that left out the empty
        // delimiter) after it was signalled readable; zeromq.js reports that as EAGAIN. Nothing to answer.
        if ((err as { code?: string }).code === 'EAGAIN') {
          this.log.warn('request without a valid envelope discarded');
          continue;
        }
        this.log.error({ err }, 'reply socket failed');
        return;
      }
      // ROUTER: [peer identity, empty delimiter (from REQ), body]; REP: [body].
      const head = router ? frames.slice(0, 2) : [];
      const parts = router ? frames.slice(2) : frames;
      const reply =
        parts.length === 1 ? await this.answer(parts[0]!) : encode({ type: 'ERROR', rc: Rc.INVALID, message: `expected one frame, got ${parts.length}` });
      if (parts.length !== 1) {
        this.log.warn({ frames: parts.length }, 'request with wrong frame count');
        this.stats?.record('ERROR', Rc.INVALID);
      }
      try {
        await this.socket.send([...head, reply]);
      } catch (err) {
        if (this.closed as boolean) return; // close() may have run while this awaited
        this.log.warn({ err }, 'reply could not be sent');
      }
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
