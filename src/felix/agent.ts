/**
 * Felix's sockets (SPEC §3, §5): REQ to the plugin (resync), REP for the
 * plugin's endpoint requests, REQ + SUB to the ACL manager. It keeps them
 * healthy — a socket that hears nothing for the connection timeout is
 * recreated and the matching resync runs — and hands every decoded message
 * to the {@link EndpointManager}.
 */
import type { Logger } from '../common/logging.js';
import { Backoff } from '../common/backoff.js';
import { Clock, realClock } from '../common/clock.js';
import { zmqAddress } from '../common/config.js';
import { HEARTBEAT, Rc, decodeResponse, rememberingDecoder } from '../common/wire/codec.js';
import { ENDPOINTDESTROYED, PluginRequest, RESYNCSTATE, decodeFelixRequest, decodeResyncResponse } from '../common/wire/endpoint-api.js';
import { AclPublication, AclRequest, GETACLSTATE, TOPIC_ACL_HEARTBEAT, decodeAclPublication } from '../common/wire/acl-api.js';
import { ReplyServer, RequestHandler, decodingHandler } from '../common/zmq/reply-server.js';
import { ConnectionResetError, RequestClient } from '../common/zmq/request-client.js';
import { LatestPerTopic } from '../common/zmq/latest-per-topic.js';
import { Subscriber, decodingSubscriber } from '../common/zmq/subscriber.js';
import { SocketStats } from '../common/zmq/stats.js';
import type { Connection } from '../common/metrics.js';
import { SocketOptions, clientOptions } from '../common/zmq/options.js';
import type { FelixConfig } from './config.js';
import { DataplaneSink, EndpointManager } from './endpoints.js';

export interface FelixAgentOptions {
  config: FelixConfig;
  log: Logger;
  dataplane: DataplaneSink;
  /** For every socket: size limit and Felix's own CURVE keys (peers' keys come from `config.security`). */
  socketOptions?: SocketOptions;
  /** Watchdog, periodic resync, retries, GETACLSTATE waits, the ACL pause and both REQ sockets' timers; real ones unless a test passes a fake. */
  clock?: Clock;
}

/** How long Felix waits after subscribing to an endpoint's topic before asking GETACLSTATE (SPEC §5). */
const FIRST_ACL_WAIT_MS = 100;

/**
 * Small queues on the ACL subscription, so the ACL manager's latest-wins
 * queue holds what waits (issue #13). 250 a pause: bench/churn settled
 * 0.55–0.91 s after the last edit at 1000 endpoints, against 0.78–1.18 s
 * with 100.
 */
const ACL_QUEUE = { messages: 250, bytes: 512 * 1024 };
/** The longest an apply keeps ACL reads paused. */
const MAX_ACL_PAUSE_MS = 1000;

export class FelixAgent {
  readonly manager: EndpointManager;
  private readonly pluginClient: RequestClient<PluginRequest>;
  private readonly aclClient: RequestClient<AclRequest>;
  private readonly aclSub: Subscriber;
  private readonly aclInbox: LatestPerTopic;
  private epServer: ReplyServer | undefined;
  private readonly endpointHandler: RequestHandler;
  private readonly timers: unknown[] = [];
  private readonly clock: Clock;
  private lastEndpointRequest: number;
  private lastAclMessage: number;
  /** When the ACL subscription was paused for an apply, or null; the timer that ends a long pause. */
  private aclPausedAt: number | null = null;
  private aclPauseTimer: unknown;
  private resyncStarted = 0;
  private resyncCount = 0;
  /** Per connection, for status and metrics: plugin (REQ), endpoints (REP), ACL requests (REQ), ACL updates (SUB). */
  private readonly stats = { plugin: new SocketStats(), endpoints: new SocketStats(), aclRequests: new SocketStats(), aclUpdates: new SocketStats() };
  private retryTimer: unknown;
  /**
   * Endpoints waiting for an ACLUPDATE (SPEC §5 "No lost first ACLs"): the
   * timer of the next GETACLSTATE and the wait before it (100 ms after
   * subscribing, then doubling from each reply, up to the connection timeout).
   */
  private readonly aclPending = new Map<string, { timer: unknown; backoff: Backoff }>();
  /** Endpoints with a GETACLSTATE outstanding (at most one each). */
  private readonly aclAsking = new Set<string>();
  private stopped = false;

  private constructor(private readonly opts: FelixAgentOptions) {
    this.clock = opts.clock ?? realClock;
    this.lastEndpointRequest = this.clock.now();
    this.lastAclMessage = this.clock.now();
    const g = opts.config.global;
    const c = opts.config.connection;
    const log = opts.log;
    const own = opts.socketOptions ?? {};
    const toPlugin = clientOptions(own, opts.config.security.PluginPublicKeyFile);
    const toAclManager = clientOptions(own, opts.config.security.AclManagerPublicKeyFile);
    this.pluginClient = new RequestClient<PluginRequest>({
      address: zmqAddress(g.PluginAddress, g.PluginPort),
      timeoutMs: c.ConnectionTimeoutMillis,
      keepaliveMs: c.ConnectionKeepaliveIntervalMillis,
      log: log.child({ peer: 'plugin' }),
      onReset: () => this.resync('plugin connection timed out'),
      stats: this.stats.plugin,
      socketOptions: toPlugin,
      clock: this.clock,
    });
    this.aclClient = new RequestClient<AclRequest>({
      address: zmqAddress(g.ACLAddress, g.ACLPort),
      timeoutMs: c.ConnectionTimeoutMillis,
      keepaliveMs: c.ConnectionKeepaliveIntervalMillis,
      log: log.child({ peer: 'aclmgr' }),
      onReset: () => this.requestAllAcls('ACL manager connection timed out'),
      stats: this.stats.aclRequests,
      socketOptions: toAclManager,
      clock: this.clock,
    });
    // A Felix that fell behind decodes only each endpoint's newest ACLUPDATE of what it had queued.
    const decoding = decodingSubscriber(
      // The members of a group arrive with the same bytes in a row: parsed once (a few groups may interleave).
      { decode: rememberingDecoder(decodeAclPublication, 8), log, stats: this.stats.aclUpdates, badMessage: 'bad ACL publication ignored' },
      (topic, msg) => this.onAclPublication(topic, msg),
    );
    this.aclInbox = new LatestPerTopic((topic, body) => {
      // Anything, even a bad publication, shows the ACL manager is alive.
      this.lastAclMessage = this.clock.now();
      decoding(topic, body);
    });
    this.aclSub = new Subscriber(
      zmqAddress(g.ACLPublishAddress ?? g.ACLAddress, g.ACLPublishPort),
      (topic, body) => this.aclInbox.push(topic, body),
      log,
      toAclManager,
      ACL_QUEUE,
    );
    // Read ACLs between applies only: what comes meanwhile waits at the ACL manager, which keeps the
    // newest per endpoint, so under churn Felix is sent about what it can apply, not every state.
    // Never for long, though: the manager's XPUB holds every subscriber back while one is full, so
    // a long apply (a first programming of thousands) must not stall the other hosts' Felixes.
    opts.dataplane.onApplying = (applying) => (applying ? this.pauseAclReads() : this.resumeAclReads());
    this.aclSub.subscribe(TOPIC_ACL_HEARTBEAT);
    // The ACL manager restarted: what it published before our subscription reached it is lost.
    this.aclSub.onReconnect = () => this.requestAllAcls('ACL manager reconnected');
    this.manager = new EndpointManager({
      log,
      dataplane: opts.dataplane,
      interfacePrefix: g.InterfacePrefix,
      acls: {
        // The ACL manager publishes on our subscription; ask only if nothing arrives within 100 ms.
        watch: (id) => {
          this.aclSub.subscribe(id);
          this.awaitAcls(id);
        },
        unwatch: (id) => {
          this.aclSub.unsubscribe(id);
          this.clearAclPending(id);
        },
      },
    });
    this.endpointHandler = decodingHandler(decodeFelixRequest, log, async (msg) => {
      const reply = this.manager.handle(msg, msg.type === ENDPOINTDESTROYED ? null : await this.hostRefusal(this.manager.newAddresses(msg)));
      if (reply.rc !== Rc.SUCCESS) log.warn({ endpoint: msg.endpoint_id, ...reply }, 'endpoint request refused');
      return reply;
    });
  }

  private pauseAclReads(): void {
    this.aclSub.pause();
    this.aclPausedAt = this.clock.now();
    this.clock.clearTimeout(this.aclPauseTimer);
    this.aclPauseTimer = this.clock.setTimeout(() => this.resumeAclReads(), MAX_ACL_PAUSE_MS);
  }

  private resumeAclReads(): void {
    this.clock.clearTimeout(this.aclPauseTimer);
    if (this.aclPausedAt === null) return;
    this.aclSub.resume();
    // Silence while Felix itself was not reading says nothing about the ACL manager.
    this.lastAclMessage += this.clock.now() - this.aclPausedAt;
    this.aclPausedAt = null;
  }

  /** ACLUPDATEs dropped unread because a newer one for the same endpoint came in the same burst. */
  get aclUpdatesSuperseded(): number {
    return this.aclInbox.superseded;
  }

  /** RESYNCSTATEs sent so far. */
  get resyncsStarted(): number {
    return this.resyncCount;
  }

  /** Endpoints with a GETACLSTATE awaiting its reply (at most one each, SPEC §5). */
  get aclRequestsOutstanding(): number {
    return this.aclAsking.size;
  }

  /** The endpoint socket is bound and a resync has completed. */
  waitingFor(): string[] {
    return [...(this.epServer ? [] : ['endpoint socket bound']), ...(this.manager.resyncsCompleted > 0 ? [] : ['first resync with the plugin'])];
  }

  connections(): Connection[] {
    const g = this.opts.config.global;
    return [
      { name: 'plugin', api: 'endpoint', kind: 'req', address: this.pluginClient.address, stats: this.stats.plugin },
      { name: 'plugin-requests', api: 'endpoint', kind: 'rep', address: zmqAddress(g.LocalAddress, g.LocalPort), stats: this.stats.endpoints },
      { name: 'aclmgr', api: 'acl', kind: 'req', address: this.aclClient.address, stats: this.stats.aclRequests },
      {
        name: 'aclmgr-updates',
        api: 'acl',
        kind: 'sub',
        address: zmqAddress(g.ACLPublishAddress ?? g.ACLAddress, g.ACLPublishPort),
        stats: this.stats.aclUpdates,
      },
    ];
  }

  static async start(opts: FelixAgentOptions): Promise<FelixAgent> {
    const agent = new FelixAgent(opts);
    await agent.bindEndpointServer();
    const c = opts.config.connection;
    agent.timers.push(agent.clock.setInterval(() => agent.watchdog(), Math.min(c.ConnectionKeepaliveIntervalMillis, 1000)));
    agent.timers.push(agent.clock.setInterval(() => agent.resync('periodic'), opts.config.global.ResyncIntervalSecs * 1000));
    agent.resync('start-up');
    return agent;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) this.clock.clearInterval(t);
    this.clock.clearTimeout(this.retryTimer);
    this.clock.clearTimeout(this.aclPauseTimer);
    for (const id of [...this.aclPending.keys()]) this.clearAclPending(id);
    this.pluginClient.close();
    this.aclClient.close();
    this.aclSub.close();
    await this.epServer?.close();
  }

  private async bindEndpointServer(): Promise<void> {
    const g = this.opts.config.global;
    const address = zmqAddress(g.LocalAddress, g.LocalPort);
    // A just-closed socket may hold the port for a moment.
    for (let attempt = 1; ; attempt++) {
      try {
        this.epServer = await ReplyServer.bind('rep', address, (body) => this.onEndpointRequest(body), this.opts.log, {
          ...this.opts.socketOptions,
          stats: this.stats.endpoints,
        });
        break;
      } catch (err) {
        if (attempt >= 20) throw err;
        // Real time, not the clock: this waits for the kernel, not for a peer.
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    this.lastEndpointRequest = this.clock.now();
  }

  /** Any request, even a bad one or a heartbeat, shows the plugin is alive. */
  private onEndpointRequest(body: Buffer): object | Promise<object> {
    this.lastEndpointRequest = this.clock.now();
    return this.endpointHandler(body);
  }

  /** The first reason the host forbids one of these addresses, or null. */
  private async hostRefusal(addrs: string[]): Promise<string | null> {
    for (const a of addrs) {
      const problem = await this.opts.dataplane.addressProblem(a);
      if (problem !== null) return problem;
    }
    return null;
  }

  /** Starts a fresh resync (abandoning any unfinished one). */
  private resync(reason: string): void {
    if (this.stopped) return;
    this.clock.clearTimeout(this.retryTimer);
    const abandoned = this.manager.abandonResync();
    if (abandoned) this.opts.log.warn({ resyncId: abandoned }, 'unfinished resync abandoned');
    const g = this.opts.config.global;
    const id = `${g.FelixHostname}-${process.pid}-${++this.resyncCount}-${Date.now()}`;
    this.resyncStarted = this.clock.now();
    this.opts.log.info({ resyncId: id, reason }, 'resyncing with the plugin');
    this.manager.beginResync(id);
    this.pluginClient.request({ type: RESYNCSTATE, resync_id: id, hostname: g.FelixHostname, issued: Date.now() }).then(
      (body) => {
        const reply = decodeResyncResponse(body);
        const ok = reply.ok ? this.manager.resyncReplied(id, reply.msg) : false;
        if (!reply.ok) this.opts.log.warn({ resyncId: id, reason: reply.error.reason }, 'bad RESYNCSTATE reply');
        if (!ok) this.retryResync();
      },
      (err: unknown) => {
        // A timeout has already started a new resync through onReset.
        if (!(err instanceof ConnectionResetError)) this.opts.log.error({ err }, 'RESYNCSTATE failed');
      },
    );
  }

  private retryResync(): void {
    this.clock.clearTimeout(this.retryTimer);
    const delay = Math.min(5000, this.opts.config.connection.ConnectionTimeoutMillis);
    this.retryTimer = this.clock.setTimeout(() => this.resync('retry after refused resync'), delay);
  }

  /** Just subscribed to `id`'s topic: ask for its ACLs unless an ACLUPDATE arrives within 100 ms. */
  private awaitAcls(id: string): void {
    // Already waiting: its timer or outstanding request will do.
    if (this.aclPending.has(id)) return;
    const backoff = this.aclBackoff();
    this.aclPending.set(id, { timer: this.clock.setTimeout(() => this.requestAcls(id), backoff.next()), backoff });
  }

  /** 100 ms, then twice the last wait, up to the connection timeout (SPEC §5). */
  private aclBackoff(): Backoff {
    return new Backoff(FIRST_ACL_WAIT_MS, this.opts.config.connection.ConnectionTimeoutMillis);
  }

  private clearAclPending(id: string): void {
    this.clock.clearTimeout(this.aclPending.get(id)?.timer);
    this.aclPending.delete(id);
  }

  /** Sends GETACLSTATE for `id` now, unless one is outstanding; the reply schedules the next ask, twice as late. */
  private requestAcls(id: string): void {
    if (this.stopped) return;
    let entry = this.aclPending.get(id);
    if (!entry) {
      // Asked at once, in place of the first wait: the next ask comes twice as late.
      const backoff = this.aclBackoff();
      backoff.next();
      entry = { timer: undefined, backoff };
      this.aclPending.set(id, entry);
    }
    this.clock.clearTimeout(entry.timer);
    entry.timer = undefined;
    if (this.aclAsking.has(id)) return;
    this.aclAsking.add(id);
    const done = () => {
      this.aclAsking.delete(id);
      const current = this.aclPending.get(id);
      if (!current || this.stopped) return;
      // Still no ACLUPDATE: ask again, waiting twice as long as last time from this reply.
      this.clock.clearTimeout(current.timer);
      current.timer = this.clock.setTimeout(() => this.requestAcls(id), current.backoff.next());
    };
    this.aclClient.request({ type: GETACLSTATE, endpoint_id: id, issued: Date.now() }).then(
      (body) => {
        const reply = decodeResponse(body);
        if (!reply.ok || reply.msg.rc !== Rc.SUCCESS) this.opts.log.warn({ endpoint: id, reply: body.toString().slice(0, 200) }, 'GETACLSTATE refused');
        done();
      },
      (err: unknown) => {
        if (!(err instanceof ConnectionResetError)) this.opts.log.error({ err, endpoint: id }, 'GETACLSTATE failed');
        done();
      },
    );
  }

  private requestAllAcls(reason: string): void {
    if (this.stopped) return;
    this.opts.log.info({ reason, endpoints: this.manager.endpoints.size }, 'asking for every endpoint’s ACLs again');
    for (const id of this.manager.endpoints.keys()) this.requestAcls(id);
  }

  private onAclPublication(topic: string, msg: AclPublication): void {
    if (msg.type === HEARTBEAT) return;
    if (topic === TOPIC_ACL_HEARTBEAT) return;
    this.opts.log.info(
      { endpoint: topic, v4: msg.acls.v4.inbound.length + msg.acls.v4.outbound.length, v6: msg.acls.v6.inbound.length + msg.acls.v6.outbound.length },
      'ACLs received',
    );
    this.clearAclPending(topic);
    this.manager.aclUpdate(topic, msg.acls);
  }

  /** Runs every keepalive interval: recreates sockets that went silent, re-asks what got lost. */
  private watchdog(): void {
    const now = this.clock.now();
    const timeout = this.opts.config.connection.ConnectionTimeoutMillis;
    if (now - this.lastEndpointRequest > timeout) {
      this.opts.log.warn({ silentMs: now - this.lastEndpointRequest }, 'no endpoint request from the plugin within the timeout; rebinding and resyncing');
      this.lastEndpointRequest = now;
      this.stats.endpoints.resets++;
      void (async () => {
        await this.epServer?.close();
        if (this.stopped) return;
        await this.bindEndpointServer();
        this.resync('endpoint socket timed out');
      })().catch((err: unknown) => this.opts.log.error({ err }, 'rebinding the endpoint socket failed'));
    }
    if (this.aclPausedAt === null && now - this.lastAclMessage > timeout) {
      this.lastAclMessage = now;
      this.stats.aclUpdates.resets++;
      this.opts.log.warn('no ACL publication (not even a heartbeat) within the timeout; resubscribing');
      this.aclSub.recreate();
      this.requestAllAcls('ACL subscription timed out');
    }
    if (this.manager.resyncInProgress && now - this.resyncStarted > timeout) this.resync('resync did not complete within the timeout');
  }
}
