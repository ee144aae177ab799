/**
 * The ACL manager's side of the Network API (SPEC §4): SUB to the plugin's
 * `groups` and `networkheartbeat`, then GETGROUPS on a REQ socket, and
 * re-synchronisation by itself whenever the plugin seems lost.
 */
import type { Logger } from '../common/logging.js';
import { Clock, realClock } from '../common/clock.js';
import { HEARTBEAT, Rc, decodeResponse } from '../common/wire/codec.js';
import {
  GETGROUPS,
  GROUPUPDATE,
  GroupUpdate,
  NetworkPublication,
  NetworkRequest,
  TOPIC_GROUPS,
  TOPIC_NETWORK_HEARTBEAT,
  decodeNetworkPublication,
} from '../common/wire/network-api.js';
import { ConnectionResetError, RequestClient } from '../common/zmq/request-client.js';
import { Subscriber, decodingSubscriber } from '../common/zmq/subscriber.js';
import { SocketStats } from '../common/zmq/stats.js';
import type { SocketOptions } from '../common/zmq/options.js';

export interface NetworkClientOptions {
  log: Logger;
  /** The plugin's REP socket (9903). */
  requestAddress: string;
  /** The plugin's PUB socket (9904). */
  publishAddress: string;
  timeoutMs: number;
  keepaliveMs: number;
  /** Silence on the PUB socket longer than this means the plugin is lost. */
  pluginTimeoutMs: number;
  /** Quiet period after the GETGROUPS reply that ends a resync. */
  settleMs: number;
  onGroupUpdate: (update: GroupUpdate) => void;
  /**
   * A resync has finished: `seen` holds every group announced since it
   * began. Groups known but not in it no longer exist at the plugin.
   */
  onResynced: (seen: ReadonlySet<string>) => void;
  /** For both sockets: size limit, and CURVE keys including the plugin's. */
  socketOptions?: SocketOptions;
  /** Watchdog, settle, retry and the REQ socket's keepalive and timeout; real timers unless a test passes a fake. */
  clock?: Clock;
}

interface Resync {
  generation: number;
  reason: string;
  seen: Set<string>;
  replied: boolean;
  settleDeadline: number;
  settleTimer?: unknown;
}

/**
 * Keeps the ACL manager's picture of the groups in step with the plugin.
 *
 * A resync (at start, after a REQ timeout, after `pluginTimeoutMs` of
 * silence on the SUB socket, or when the SUB socket reconnects because the
 * plugin restarted) recreates the sockets, waits until the SUB
 * socket has completed its handshake (so the publications that follow
 * GETGROUPS are not lost to a late subscription), then sends GETGROUPS.
 * GETGROUPS carries no count of the groups to come, so the end of the
 * full state is inferred: once the reply has arrived and no GROUPUPDATE has
 * come for `settleMs` (at most ten such periods in all), the resync is
 * complete and {@link NetworkClientOptions.onResynced} gets the groups seen;
 * those not re-announced are dropped by the caller. Until then the last
 * known groups stay in force. It never gives up and never exits.
 */
export class NetworkClient {
  private readonly sub: Subscriber;
  private req: RequestClient<NetworkRequest>;
  private readonly clock: Clock;
  private lastHeard: number;
  private generation = 0;
  private resync: Resync | undefined;
  private readonly watchdog: unknown;
  private retryTimer: unknown;
  private stopped = false;
  /** Completed resyncs, for tests and logs. */
  resyncs = 0;
  /** Resyncs begun. */
  resyncsStarted = 0;
  /** What the GETGROUPS socket (across its re-creations) and the SUB socket received. */
  readonly stats = { requests: new SocketStats(), publications: new SocketStats() };

  constructor(private readonly opts: NetworkClientOptions) {
    this.clock = opts.clock ?? realClock;
    this.lastHeard = this.clock.now();
    const decoding = decodingSubscriber(
      { decode: decodeNetworkPublication, log: opts.log, stats: this.stats.publications, badMessage: 'bad publication from the plugin ignored' },
      (topic, msg) => this.onPublication(topic, msg),
    );
    this.sub = new Subscriber(
      opts.publishAddress,
      (topic, body) => {
        // Anything, even a bad publication, shows the plugin is alive.
        this.lastHeard = this.clock.now();
        decoding(topic, body);
      },
      opts.log,
      opts.socketOptions,
    );
    this.sub.subscribe(TOPIC_GROUPS);
    this.sub.subscribe(TOPIC_NETWORK_HEARTBEAT);
    // The plugin's PUB socket came back (it restarted): what it holds now may differ from what we had.
    this.sub.onReconnect = () => this.pluginLost('plugin reconnected');
    this.req = this.newRequestClient();
    this.watchdog = this.clock.setInterval(() => this.checkPlugin(), Math.max(10, Math.min(1000, Math.floor(opts.pluginTimeoutMs / 4))));
    this.startResync('start');
  }

  stop(): void {
    this.stopped = true;
    this.generation++;
    this.clock.clearInterval(this.watchdog);
    this.clock.clearTimeout(this.retryTimer);
    this.clock.clearTimeout(this.resync?.settleTimer);
    this.req.close();
    this.sub.close();
  }

  private newRequestClient(): RequestClient<NetworkRequest> {
    return new RequestClient<NetworkRequest>({
      address: this.opts.requestAddress,
      timeoutMs: this.opts.timeoutMs,
      keepaliveMs: this.opts.keepaliveMs,
      log: this.opts.log,
      // The client has already recreated its own socket.
      onReset: (reason) => this.startResync(`request timed out: ${reason}`),
      stats: this.stats.requests,
      socketOptions: this.opts.socketOptions,
      clock: this.clock,
    });
  }

  private checkPlugin(): void {
    const silent = this.clock.now() - this.lastHeard;
    if (silent <= this.opts.pluginTimeoutMs) return;
    this.opts.log.warn({ address: this.opts.publishAddress, silentMs: silent }, 'nothing from the plugin; taking it as lost');
    this.stats.publications.resets++;
    this.pluginLost('plugin silent');
  }

  /** A fresh REQ socket (the old one may hold a request the plugin will never answer), then a resync. */
  private pluginLost(reason: string): void {
    if (this.stopped) return;
    this.req.close();
    this.req = this.newRequestClient();
    this.startResync(reason);
  }

  /** Starts a resync, abandoning any in progress. */
  private startResync(reason: string): void {
    if (this.stopped) return;
    this.clock.clearTimeout(this.retryTimer);
    this.clock.clearTimeout(this.resync?.settleTimer);
    const generation = ++this.generation;
    this.resyncsStarted++;
    this.lastHeard = this.clock.now();
    // A fresh subscription each time: the old socket may be attached to a dead peer.
    if (generation > 1) this.sub.recreate();
    this.resync = { generation, reason, seen: new Set(), replied: false, settleDeadline: 0 };
    this.opts.log.info({ reason }, 'resynchronising groups with the plugin');
    void this.getGroups(generation);
  }

  private async getGroups(generation: number): Promise<void> {
    await this.sub.connected();
    if (generation !== this.generation) return;
    let reply: Buffer;
    try {
      reply = await this.req.request({ type: GETGROUPS, issued: Date.now() });
    } catch (err) {
      // A reset has already started the next resync.
      if (generation !== this.generation || err instanceof ConnectionResetError) return;
      this.opts.log.error({ err }, 'GETGROUPS failed');
      this.retryLater(generation);
      return;
    }
    if (generation !== this.generation) return;
    const decoded = decodeResponse(reply);
    if (!decoded.ok || decoded.msg.rc !== Rc.SUCCESS) {
      this.opts.log.warn({ reply: reply.toString('utf8').slice(0, 200) }, 'GETGROUPS refused; asking again');
      this.retryLater(generation);
      return;
    }
    const resync = this.resync!;
    resync.replied = true;
    resync.settleDeadline = this.clock.now() + 10 * this.opts.settleMs;
    this.armSettle(resync);
  }

  private retryLater(generation: number): void {
    this.retryTimer = this.clock.setTimeout(() => {
      if (generation === this.generation) this.startResync('retrying GETGROUPS');
    }, this.opts.keepaliveMs);
  }

  private armSettle(resync: Resync): void {
    this.clock.clearTimeout(resync.settleTimer);
    const wait = Math.max(0, Math.min(this.opts.settleMs, resync.settleDeadline - this.clock.now()));
    resync.settleTimer = this.clock.setTimeout(() => this.finishResync(resync), wait);
  }

  private finishResync(resync: Resync): void {
    if (resync !== this.resync || resync.generation !== this.generation) return;
    this.resync = undefined;
    this.resyncs++;
    this.opts.log.info({ reason: resync.reason, groups: resync.seen.size }, 'resynchronised with the plugin');
    this.opts.onResynced(resync.seen);
  }

  private onPublication(topic: string, msg: NetworkPublication): void {
    const expected = msg.type === HEARTBEAT ? TOPIC_NETWORK_HEARTBEAT : TOPIC_GROUPS;
    if (topic !== expected) {
      this.opts.log.warn({ topic, type: msg.type }, 'publication on the wrong topic ignored');
      return;
    }
    if (msg.type !== GROUPUPDATE) return;
    for (const why of msg.skipped) this.opts.log.warn({ group: msg.group, reason: why }, 'group member skipped');
    this.opts.onGroupUpdate(msg);
    const resync = this.resync;
    if (!resync) return;
    resync.seen.add(msg.group);
    if (resync.replied) this.armSettle(resync);
  }
}
