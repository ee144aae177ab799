/**
 * The ACL API's manager side (SPEC §5): ROUTER 9905 answering GETACLSTATE and
 * HEARTBEAT, PUB 9906 carrying ACLUPDATE per endpoint topic and `aclheartbeat`.
 */
import type { Logger } from '../common/logging.js';
import { Rc, heartbeat } from '../common/wire/codec.js';
import { ACLUPDATE, Acls, AclUpdate, GETACLSTATE, GetAclState, GetAclStateResponse, TOPIC_ACL_HEARTBEAT, decodeAclRequest } from '../common/wire/acl-api.js';
import { Publisher } from '../common/zmq/publisher.js';
import { ReplyServer, decodingHandler } from '../common/zmq/reply-server.js';
import { SocketStats } from '../common/zmq/stats.js';
import type { SocketOptions } from '../common/zmq/options.js';

export interface AclServerOptions {
  log: Logger;
  routerAddress: string;
  publishAddress: string;
  heartbeatMs: number;
  /** The endpoint's current ACLs, or undefined if it is in no known group. */
  aclsFor: (endpoint: string) => Acls | undefined;
  socketOptions?: SocketOptions;
}

/**
 * Serves Felixes. A GETACLSTATE is answered at once (SUCCESS even for an
 * endpoint not known yet: its ACLs are published when they become known),
 * then the endpoint's current ACLs are published on its topic.
 */
export class AclServer {
  private server: ReplyServer | undefined;
  /** Requests from Felixes, by type and rc. */
  readonly stats = new SocketStats();
  /** ACLUPDATEs published (heartbeats not counted). */
  updatesPublished = 0;
  private readonly timer: NodeJS.Timeout;

  private constructor(
    private readonly opts: AclServerOptions,
    private readonly publisher: Publisher,
  ) {
    this.timer = setInterval(() => void publisher.publish(TOPIC_ACL_HEARTBEAT, heartbeat()), opts.heartbeatMs);
  }

  static async start(opts: AclServerOptions): Promise<AclServer> {
    const self = new AclServer(opts, await Publisher.bind(opts.publishAddress, opts.log, opts.socketOptions));
    try {
      self.server = await ReplyServer.bind('router', opts.routerAddress, decodingHandler(decodeAclRequest, opts.log, (msg) => self.getAclState(msg)), opts.log, { ...opts.socketOptions, stats: self.stats });
    } catch (err) {
      await self.stop();
      throw err;
    }
    return self;
  }

  /** Publishes an endpoint's complete ACLs on its topic. */
  publish(endpoint: string, acls: Acls): Promise<void> {
    const msg: AclUpdate = { type: ACLUPDATE, acls, issued: Date.now() };
    this.updatesPublished++;
    return this.publisher.publish(endpoint, msg);
  }

  /** ACLUPDATEs and heartbeats sent so far. */
  get published(): number {
    return this.publisher.sent;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.server?.close();
    await this.publisher.close();
  }

  private getAclState(msg: GetAclState): object {
    const endpoint = msg.endpoint_id;
    // Published once the reply is on its way; Felix subscribed before asking.
    setImmediate(() => {
      const acls = this.opts.aclsFor(endpoint);
      this.opts.log.info({ endpoint, known: acls !== undefined }, 'ACL state requested');
      if (acls) void this.publish(endpoint, acls);
    });
    const reply: GetAclStateResponse = { type: GETACLSTATE, endpoint_id: endpoint, rc: Rc.SUCCESS, message: '' };
    return reply;
  }
}
