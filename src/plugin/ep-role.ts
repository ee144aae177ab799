/**
 * `plugin ep`: the Endpoint API's orchestrator side (SPEC §3). Answers
 * RESYNCSTATE on its REP socket and pushes endpoint changes to each Felix
 * through one REQ client per host, so a slow or dead Felix stalls only its
 * own queue. What waits for a Felix is a {@link FelixQueue}: one resync at a
 * time and one change per endpoint, taken one message at a time as Felix
 * answers (SPEC §3 "Plugin ep under load (v2)").
 */
import type { Logger } from '../common/logging.js';
import { zmqAddress } from '../common/config.js';
import { Rc, decodeResponse } from '../common/wire/codec.js';
import {
  EndpointCreated,
  EndpointDestroyed,
  EndpointUpdated,
  FelixRequest,
  RESYNCSTATE,
  ResyncResponse,
  ResyncState,
  decodePluginRequest,
} from '../common/wire/endpoint-api.js';
import { PLUGIN_HEARTBEAT_REPLY, ReplyServer, decodingHandler } from '../common/zmq/reply-server.js';
import { ConnectionResetError, RequestClient } from '../common/zmq/request-client.js';
import { SocketStats } from '../common/zmq/stats.js';
import type { Connection } from '../common/metrics.js';
import { SocketOptions, clientOptions } from '../common/zmq/options.js';
import { PluginData, shortHost } from './data.js';
import { endpointChanges, endpointCreated, endpointDestroyed, endpointUpdated, endpointsOfHost } from './changes.js';
import { FelixQueue, Outgoing } from './felix-queue.js';

/** At most one log line per host this often about refused RESYNCSTATEs. */
const REFUSAL_LOG_INTERVAL_MS = 10000;

/** One Felix: its REQ client, what waits for it, and whether a message is in flight. */
interface Felix {
  host: string;
  client: RequestClient<FelixRequest>;
  queue: FelixQueue;
  sending: boolean;
  /** RESYNCSTATEs refused since the last line about them, and when that line was written. */
  refused: number;
  refusalLoggedAt: number;
}

function encodeOutgoing(out: Outgoing): EndpointCreated | EndpointUpdated | EndpointDestroyed {
  switch (out.kind) {
    case 'created':
      return endpointCreated(out.endpoint, out.resyncId);
    case 'updated':
      return endpointUpdated(out.endpoint);
    case 'destroyed':
      return endpointDestroyed(out.endpoint);
  }
}

export interface EndpointRoleOptions {
  log: Logger;
  /** Where the REP socket binds, e.g. tcp://*:9901. */
  bindAddress: string;
  /** Felix's endpoint API port unless its `[felix]` section says otherwise. */
  felixPort: number;
  timeoutMs: number;
  keepaliveMs: number;
  interfacePrefix: string;
  /** For every socket: size limit and the plugin's own CURVE keys. */
  socketOptions?: SocketOptions;
  /** The Felixes' CURVE public key (with `socketOptions.curve`). */
  felixServerKey?: string | null;
}

export class EndpointRole {
  private readonly felixes = new Map<string, Felix>();
  private server: ReplyServer | undefined;
  private readonly serverStats = new SocketStats();
  /** Per Felix host, kept when its client is recreated. */
  private readonly felixStats = new Map<string, SocketStats>();

  private constructor(
    private readonly opts: EndpointRoleOptions,
    private data: PluginData,
  ) {}

  static async start(opts: EndpointRoleOptions, data: PluginData): Promise<EndpointRole> {
    const role = new EndpointRole(opts, data);
    role.syncFelixes();
    role.server = await ReplyServer.bind(
      'rep',
      opts.bindAddress,
      decodingHandler(decodePluginRequest, opts.log, (msg) => role.resync(msg), PLUGIN_HEARTBEAT_REPLY),
      opts.log,
      { ...opts.socketOptions, stats: role.serverStats },
    );
    return role;
  }

  async stop(): Promise<void> {
    for (const f of this.felixes.values()) f.client.close();
    this.felixes.clear();
    await this.server?.close();
  }

  /** The REP socket, then one REQ connection per Felix (replies to the pushes). */
  connections(): Connection[] {
    return [
      { name: 'felix-resyncs', api: 'endpoint', kind: 'rep', address: this.opts.bindAddress, stats: this.serverStats },
      ...[...this.felixes]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([host, f]): Connection => ({ name: `felix ${host}`, api: 'endpoint', kind: 'req', address: f.client.address, stats: this.statsOf(host) })),
    ];
  }

  private statsOf(host: string): SocketStats {
    let stats = this.felixStats.get(host);
    if (!stats) this.felixStats.set(host, (stats = new SocketStats()));
    return stats;
  }

  /** New data: connect to new Felixes, then queue each change for the Felix concerned. */
  update(data: PluginData): void {
    const changes = endpointChanges(this.data, data);
    this.data = data;
    this.syncFelixes();
    for (const c of changes) {
      const felix = this.felixes.get(c.host);
      if (!felix) {
        this.opts.log.warn({ host: c.host, endpoint: c.endpoint.id }, `no [felix ${c.host}] section: cannot push ${c.kind} endpoint`);
        continue;
      }
      this.opts.log.info({ endpoint: c.endpoint.id, host: c.host, change: c.kind }, 'pushing endpoint change');
      felix.queue.push(c.kind, c.endpoint);
      this.pump(felix);
    }
  }

  private resync(msg: ResyncState): object {
    const host = shortHost(msg.hostname);
    const felix = this.felixes.get(host);
    const refuse = (message: string): ResyncResponse => ({ type: RESYNCSTATE, rc: Rc.FAILURE, message, endpoint_count: 0 });
    if (!felix) {
      this.opts.log.warn({ host, resyncId: msg.resync_id }, 'resync from a host with no [felix] section');
      return refuse(`no [felix ${host}] section in the plugin's data`);
    }
    const endpoints = endpointsOfHost(this.data, host);
    if (!felix.queue.startResync(msg.resync_id, endpoints)) {
      this.logRefusal(felix, msg.resync_id);
      return refuse('resync in progress');
    }
    this.opts.log.info({ host, resyncId: msg.resync_id, endpoints: endpoints.length }, 'resync requested');
    // The creates go out after the reply; Felix accepts them in either order.
    setImmediate(() => this.pump(felix));
    const reply: ResyncResponse = {
      type: RESYNCSTATE,
      rc: Rc.SUCCESS,
      message: '',
      endpoint_count: endpoints.length,
      interface_prefix: this.opts.interfacePrefix,
    };
    return reply;
  }

  /** One line per host per interval, however many RESYNCSTATEs were refused. */
  private logRefusal(felix: Felix, resyncId: string): void {
    felix.refused++;
    const now = Date.now();
    if (now - felix.refusalLoggedAt < REFUSAL_LOG_INTERVAL_MS) return;
    this.opts.log.warn(
      { host: felix.host, resyncId, inProgress: felix.queue.resyncInProgress, refused: felix.refused },
      'RESYNCSTATE refused: a resync for this host is still being sent',
    );
    felix.refused = 0;
    felix.refusalLoggedAt = now;
  }

  /** Sends the queue's next message unless one is in flight; each answer sends the next. */
  private pump(felix: Felix): void {
    if (felix.sending || this.felixes.get(felix.host) !== felix) return;
    const out = felix.queue.next();
    if (!out) return;
    felix.sending = true;
    const msg = encodeOutgoing(out);
    felix.client
      .request(msg)
      .then(
        (body) => {
          const reply = decodeResponse(body);
          if (!reply.ok || reply.msg.rc !== Rc.SUCCESS)
            this.opts.log.warn(
              { host: felix.host, endpoint: msg.endpoint_id, type: msg.type, reply: body.toString().slice(0, 200) },
              'Felix refused a request',
            );
        },
        (err: unknown) => {
          if (!(err instanceof ConnectionResetError)) this.opts.log.error({ err, host: felix.host }, 'request to Felix failed');
        },
      )
      .finally(() => {
        felix.sending = false;
        this.pump(felix);
      });
  }

  /** One client and queue per `[felix]` section; both replaced when its address changes. */
  private syncFelixes(): void {
    for (const [host, felix] of this.felixes) {
      if (!this.data.felixes.has(host) || felix.client.address !== this.felixAddress(host)) {
        felix.client.close();
        this.felixes.delete(host);
      }
    }
    for (const host of this.data.felixes.keys()) {
      if (this.felixes.has(host)) continue;
      const address = this.felixAddress(host);
      this.opts.log.info({ host, address }, 'connecting to Felix');
      const queue = new FelixQueue();
      const client = new RequestClient<FelixRequest>({
        address,
        timeoutMs: this.opts.timeoutMs,
        keepaliveMs: this.opts.keepaliveMs,
        log: this.opts.log.child({ felix: host }),
        // The message in flight is dropped (and with it a resync it belonged to: Felix resyncs by
        // itself when it hears nothing); pushed changes and a resync not yet begun stay queued.
        onReset: (reason) => {
          const before = queue.resyncInProgress;
          queue.reset();
          const abandoned = before !== null && queue.resyncInProgress === null ? before : null;
          this.opts.log.warn({ host, reason, abandonedResync: abandoned, queued: queue.size }, 'Felix did not answer; the message in flight was dropped');
        },
        stats: this.statsOf(host),
        socketOptions: clientOptions(this.opts.socketOptions ?? {}, this.opts.felixServerKey ?? null),
      });
      this.felixes.set(host, { host, client, queue, sending: false, refused: 0, refusalLoggedAt: -Infinity });
    }
  }

  private felixAddress(host: string): string {
    const felix = this.data.felixes.get(host)!;
    return zmqAddress(felix.ip, felix.port ?? this.opts.felixPort);
  }
}
