/**
 * A PUB socket sending `[topic, json]` (SPEC §2). zeromq.js allows one send
 * in progress per socket, so sends are chained.
 */
import * as zmq from 'zeromq';
import type { Logger } from '../logging.js';
import { encode } from '../wire/codec.js';
import { SocketOptions, bindSocket } from './options.js';

export class Publisher {
  private chain: Promise<void> = Promise.resolve();
  /** Messages sent so far. */
  sent = 0;

  private constructor(
    private readonly socket: zmq.Publisher,
    private readonly log: Logger,
  ) {}

  static async bind(address: string, log: Logger, options: SocketOptions = {}): Promise<Publisher> {
    // A resync publishes one message per endpoint at once; ZeroMQ's default of 1000 queued
    // messages per subscriber would drop some of a large burst.
    const socket = await bindSocket(new zmq.Publisher({ sendHighWaterMark: 100000 }), address, options, log);
    log.info({ address, kind: 'pub' }, 'publishing');
    return new Publisher(socket, log);
  }

  publish(topic: string, msg: object): Promise<void> {
    const body = encode(msg);
    this.chain = this.chain
      .then(() => this.socket.send([topic, body]))
      .then(() => {
        this.sent++;
      })
      .catch((err: Error) => this.log.error({ err, topic }, 'publish failed'));
    return this.chain;
  }

  async close(): Promise<void> {
    await this.chain;
    this.socket.close();
  }
}
