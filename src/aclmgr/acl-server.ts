/**
 * The ACL API's manager side (SPEC §5): ROUTER 9905 answering GETACLSTATE and
 * HEARTBEAT, XPUB 9906 carrying ACLUPDATE per endpoint topic and `aclheartbeat`;
 * a subscription to an endpoint's topic publishes its ACLs (no lost first ACLs).
 */
import type { Logger } from '../common/logging.js';
import { Rc, encode, heartbeat } from '../common/wire/codec.js';
import { ACLUPDATE, Acls, GETACLSTATE, GetAclState, GetAclStateResponse, TOPIC_ACL_HEARTBEAT, decodeAclRequest } from '../common/wire/acl-api.js';
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
 * What may wait per subscriber outside the latest-wins queue below: 100
 * messages in ZeroMQ and 256 KiB in the kernel. Small, so that under churn
 * stale ACLs do not pile up in front of a busy Felix (issue #13).
 */
const SEND_HIGH_WATER_MARK = 100;
const SEND_BUFFER_BYTES = 256 * 1024;
/**
 * ZMTP heartbeats on the publish socket: a subscriber that stops reading
 * altogether (a frozen Felix) is disconnected after the timeout instead of
 * holding every other subscriber's publications at the high-water mark; it
 * re-subscribes when it comes back, and gets its ACLs then.
 */
const ZMTP_HEARTBEAT_MS = 5000;
const ZMTP_HEARTBEAT_TIMEOUT_MS = 30000;

/** Why an endpoint is queued for publication. */
type Reason = 'change' | 'subscription' | 'request';

/**
 * Serves Felixes. A GETACLSTATE is answered at once (SUCCESS even for an
 * endpoint not known yet: its ACLs are published when they become known),
 * then the endpoint's current ACLs are published on its topic.
 *
 * Every publication goes through one queue holding at most one entry per
 * endpoint, latest wins: under churn an endpoint whose ACLs change ten times
 * before its turn is published once, with the newest. The queue drains as
 * fast as the socket accepts (it refuses at the high-water mark rather than
 * dropping), so memory is bounded by the number of endpoints, not by the
 * edit rate.
 */
export class AclServer {
  private server: ReplyServer | undefined;
  /** Requests from Felixes, by type and rc. */
  readonly stats = new SocketStats();
  /** ACLUPDATEs published (heartbeats not counted). */
  updatesPublished = 0;
  /** ACL changes that replaced an unsent older one for the same endpoint. */
  changesSuperseded = 0;
  /** Subscriptions (duplicates included) received on the XPUB. */
  subscriptions = 0;
  /** ACLUPDATEs published because a subscription for the endpoint's topic arrived. */
  publishedOnSubscription = 0;
  private timer: NodeJS.Timeout | undefined;
  private publisher!: Publisher;
  /** Endpoints waiting for publication (insertion order = turn), with their ACLs; latest wins. */
  private readonly pending = new Map<string, { acls: Acls; reason: Reason }>();
  private readonly encoded = new WeakMap<Acls, string>();
  private pumping = false;
  private kick: NodeJS.Immediate | undefined;
  private stopped = false;

  private constructor(private readonly opts: AclServerOptions) {}

  static async start(opts: AclServerOptions): Promise<AclServer> {
    const self = new AclServer(opts);
    self.publisher = await Publisher.bind(opts.publishAddress, opts.log, opts.socketOptions, {
      onSubscription: (topic, subscribe) => self.onSubscription(topic, subscribe),
      sendHighWaterMark: SEND_HIGH_WATER_MARK,
      sendBufferBytes: SEND_BUFFER_BYTES,
      heartbeatMs: ZMTP_HEARTBEAT_MS,
      heartbeatTimeoutMs: ZMTP_HEARTBEAT_TIMEOUT_MS,
    });
    self.timer = setInterval(() => void self.publisher.publish(TOPIC_ACL_HEARTBEAT, heartbeat()), opts.heartbeatMs);
    try {
      self.server = await ReplyServer.bind(
        'router',
        opts.routerAddress,
        decodingHandler(decodeAclRequest, opts.log, (msg) => self.getAclState(msg)),
        opts.log,
        { ...opts.socketOptions, stats: self.stats },
      );
    } catch (err) {
      await self.stop();
      throw err;
    }
    return self;
  }

  /** Queues an endpoint's new complete ACLs for publication on its topic, replacing any unsent older ones. */
  publishChange(endpoint: string, acls: Acls): void {
    if (this.pending.has(endpoint)) this.changesSuperseded++;
    this.enqueue(endpoint, acls, 'change');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.pending.clear();
    if (this.kick) clearImmediate(this.kick);
    clearInterval(this.timer);
    await this.server?.close();
    await this.publisher.close();
  }

  private enqueue(endpoint: string, acls: Acls, reason: Reason): void {
    if (this.stopped) return;
    this.pending.set(endpoint, { acls, reason });
    // Start on the next turn, so what arrives in the same burst (duplicate subscriptions, a group's members) coalesces.
    if (!this.pumping && !this.kick)
      this.kick = setImmediate(() => {
        this.kick = undefined;
        void this.pump();
      });
  }

  private onSubscription(topic: string, subscribe: boolean): void {
    if (!subscribe) return;
    this.subscriptions++;
    if (topic === TOPIC_ACL_HEARTBEAT || this.pending.has(topic)) return;
    // Only an endpoint's exact topic whose ACLs are known (a prefix or unknown id publishes nothing).
    const acls = this.opts.aclsFor(topic);
    if (acls) this.enqueue(topic, acls, 'subscription');
  }

  /**
   * Publishes the queued endpoints one at a time in turn, each with the
   * newest ACLs queued for it; paced by what the socket accepts (the
   * publisher retries a send refused at the high-water mark).
   */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.stopped && this.pending.size > 0) {
        const [endpoint, { acls, reason }] = this.pending.entries().next().value as [string, { acls: Acls; reason: Reason }];
        this.pending.delete(endpoint);
        const rules = acls.v4.inbound.length + acls.v4.outbound.length + acls.v6.inbound.length + acls.v6.outbound.length;
        this.opts.log.info({ endpoint, rules, reason }, rules === 0 ? 'publishing deny-all ACLs' : 'publishing ACLs');
        if (reason === 'subscription') this.publishedOnSubscription++;
        this.updatesPublished++;
        await this.publisher.publishEncoded(endpoint, this.encodeUpdate(acls));
      }
    } finally {
      this.pumping = false;
    }
  }

  /**
   * The ACLUPDATE for `acls`, exactly as `encode({type, acls, issued})` would
   * write it, with the ACLs serialised once per object: the calculator
   * shares one object among a group's members, so a change to a group of
   * 250 is serialised once, not 250 times.
   */
  private encodeUpdate(acls: Acls): string {
    let json = this.encoded.get(acls);
    if (json === undefined) this.encoded.set(acls, (json = encode(acls)));
    return `{"type":${JSON.stringify(ACLUPDATE)},"acls":${json},"issued":${Date.now()}}`;
  }

  private getAclState(msg: GetAclState): object {
    const endpoint = msg.endpoint_id;
    // Queued now, published on a later turn, after the reply; Felix subscribed before asking.
    const acls = this.opts.aclsFor(endpoint);
    this.opts.log.info({ endpoint, known: acls !== undefined }, 'ACL state requested');
    if (acls) this.enqueue(endpoint, acls, 'request');
    const reply: GetAclStateResponse = { type: GETACLSTATE, endpoint_id: endpoint, rc: Rc.SUCCESS, message: '' };
    return reply;
  }
}
