/**
 * The ACL API's manager side (SPEC §5): ROUTER 9905 answering GETACLSTATE and
 * HEARTBEAT, XPUB 9906 carrying ACLUPDATE per endpoint topic and `aclheartbeat`;
 * a subscription to an endpoint's topic publishes its ACLs (no lost first ACLs).
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
  /** Subscriptions (duplicates included) and unsubscriptions received on the XPUB. */
  subscriptions = 0;
  unsubscriptions = 0;
  /** ACLUPDATEs published because a subscription for the endpoint's topic arrived. */
  publishedOnSubscription = 0;
  private timer: NodeJS.Timeout | undefined;
  private publisher!: Publisher;
  /** Endpoints whose topic was subscribed to and whose ACLs are still to be published (latest wins). */
  private readonly pending = new Set<string>();
  private pumping = false;
  private kick: NodeJS.Immediate | undefined;
  private stopped = false;

  private constructor(private readonly opts: AclServerOptions) {}

  static async start(opts: AclServerOptions): Promise<AclServer> {
    const self = new AclServer(opts);
    self.publisher = await Publisher.bind(opts.publishAddress, opts.log, opts.socketOptions, {
      onSubscription: (topic, subscribe) => self.onSubscription(topic, subscribe),
    });
    self.timer = setInterval(() => void self.publisher.publish(TOPIC_ACL_HEARTBEAT, heartbeat()), opts.heartbeatMs);
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

  /** Endpoints queued for publication after a subscription, not yet sent. */
  get pendingSubscriptions(): number {
    return this.pending.size;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.pending.clear();
    if (this.kick) clearImmediate(this.kick);
    clearInterval(this.timer);
    await this.server?.close();
    await this.publisher.close();
  }

  private onSubscription(topic: string, subscribe: boolean): void {
    if (!subscribe) {
      this.unsubscriptions++;
      return;
    }
    this.subscriptions++;
    if (this.stopped || topic === TOPIC_ACL_HEARTBEAT || this.pending.has(topic)) return;
    // Only an endpoint's exact topic whose ACLs are known (a prefix or unknown id publishes nothing).
    if (this.opts.aclsFor(topic) === undefined) return;
    this.pending.add(topic);
    // Start on the next turn, so subscriptions read in the same burst (duplicates) coalesce.
    if (!this.pumping && !this.kick) this.kick = setImmediate(() => {
      this.kick = undefined;
      void this.pump();
    });
  }

  /**
   * Publishes the queued endpoints one at a time, each with its ACLs as they
   * are when its turn comes; paced by what the socket accepts (the publisher
   * retries a send refused at the high-water mark).
   */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.stopped && this.pending.size > 0) {
        const endpoint = this.pending.values().next().value as string;
        this.pending.delete(endpoint);
        const acls = this.opts.aclsFor(endpoint);
        if (!acls) continue;
        this.publishedOnSubscription++;
        await this.publish(endpoint, acls);
      }
    } finally {
      this.pumping = false;
    }
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
