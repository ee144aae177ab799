/**
 * `plugin ep`: the Endpoint API's orchestrator side (SPEC §3). Answers
 * RESYNCSTATE on its REP socket and pushes endpoint changes to each Felix
 * through one REQ client per host, so a slow or dead Felix stalls only its
 * own queue.
 */
import type { Logger } from '../common/logging.js';
import { zmqAddress } from '../common/config.js';
import { Rc, decodeResponse } from '../common/wire/codec.js';
import { RESYNCSTATE, ResyncResponse, ResyncState, decodePluginRequest } from '../common/wire/endpoint-api.js';
import { ReplyServer, decodingHandler } from '../common/zmq/reply-server.js';
import { ConnectionResetError, RequestClient } from '../common/zmq/request-client.js';
import { SocketStats } from '../common/zmq/stats.js';
import type { Connection } from '../common/metrics.js';
import { SocketOptions, clientOptions } from '../common/zmq/options.js';
import { PluginData, shortHost } from './data.js';
import { endpointChanges, endpointCreated, endpointDestroyed, endpointUpdated, endpointsOfHost } from './changes.js';

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
  private readonly clients = new Map<string, RequestClient>();
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
    role.syncClients();
    role.server = await ReplyServer.bind('rep', opts.bindAddress, decodingHandler(decodePluginRequest, opts.log, (msg) => role.resync(msg)), opts.log, { ...opts.socketOptions, stats: role.serverStats });
    return role;
  }

  async stop(): Promise<void> {
    for (const c of this.clients.values()) c.close();
    await this.server?.close();
  }

  /** The REP socket, then one REQ connection per Felix (replies to the pushes). */
  connections(): Connection[] {
    return [
      { name: 'felix-resyncs', api: 'endpoint', kind: 'rep', address: this.opts.bindAddress, stats: this.serverStats },
      ...[...this.clients].sort(([a], [b]) => a.localeCompare(b)).map(([host, client]): Connection => ({ name: `felix ${host}`, api: 'endpoint', kind: 'req', address: client.address, stats: this.statsOf(host) })),
    ];
  }

  private statsOf(host: string): SocketStats {
    let stats = this.felixStats.get(host);
    if (!stats) this.felixStats.set(host, (stats = new SocketStats()));
    return stats;
  }

  /** New data: connect to new Felixes, then push each change to the Felix concerned. */
  update(data: PluginData): void {
    const changes = endpointChanges(this.data, data);
    this.data = data;
    this.syncClients();
    for (const c of changes) {
      const msg = c.kind === 'created' ? endpointCreated(c.endpoint, null) : c.kind === 'updated' ? endpointUpdated(c.endpoint) : endpointDestroyed(c.endpoint);
      this.opts.log.info({ endpoint: c.endpoint.id, host: c.host, change: c.kind }, 'pushing endpoint change');
      this.send(c.host, msg);
    }
  }

  private resync(msg: ResyncState): object {
    const host = shortHost(msg.hostname);
    if (!this.clients.has(host)) {
      this.opts.log.warn({ host, resyncId: msg.resync_id }, 'resync from a host with no [felix] section');
      return { type: RESYNCSTATE, rc: Rc.FAILURE, message: `no [felix ${host}] section in the plugin's data`, endpoint_count: 0 };
    }
    const endpoints = endpointsOfHost(this.data, host);
    this.opts.log.info({ host, resyncId: msg.resync_id, endpoints: endpoints.length }, 'resync requested');
    // The creates go out after the reply; Felix accepts them in either order.
    setImmediate(() => {
      for (const e of endpoints) this.send(host, endpointCreated(e, msg.resync_id));
    });
    const reply: ResyncResponse = { type: RESYNCSTATE, rc: Rc.SUCCESS, message: '', endpoint_count: endpoints.length, interface_prefix: this.opts.interfacePrefix };
    return reply;
  }

  private send(host: string, msg: { type: string; endpoint_id: string }): void {
    const client = this.clients.get(host);
    if (!client) {
      this.opts.log.warn({ host, endpoint: msg.endpoint_id }, `no [felix ${host}] section: cannot send ${msg.type}`);
      return;
    }
    client.request(msg).then(
      (body) => {
        const reply = decodeResponse(body);
        if (!reply.ok || reply.msg.rc !== Rc.SUCCESS)
          this.opts.log.warn({ host, endpoint: msg.endpoint_id, type: msg.type, reply: body.toString().slice(0, 200) }, 'Felix refused a request');
      },
      (err: Error) => {
        if (!(err instanceof ConnectionResetError)) this.opts.log.error({ err, host }, 'request to Felix failed');
      },
    );
  }

  /** One client per `[felix]` section; recreated when its address changes. */
  private syncClients(): void {
    for (const [host, client] of this.clients) {
      const felix = this.data.felixes.get(host);
      if (!felix || client.address !== this.felixAddress(host)) {
        client.close();
        this.clients.delete(host);
      }
    }
    for (const host of this.data.felixes.keys()) {
      if (this.clients.has(host)) continue;
      const address = this.felixAddress(host);
      this.opts.log.info({ host, address }, 'connecting to Felix');
      this.clients.set(
        host,
        new RequestClient({
          address,
          timeoutMs: this.opts.timeoutMs,
          keepaliveMs: this.opts.keepaliveMs,
          log: this.opts.log.child({ felix: host }),
          // Felix resyncs by itself when it hears nothing; dropping the queue is enough here.
          onReset: (reason) => this.opts.log.warn({ host, reason }, 'Felix did not answer; its queue was dropped'),
          stats: this.statsOf(host),
          socketOptions: clientOptions(this.opts.socketOptions ?? {}, this.opts.felixServerKey ?? null),
        }),
      );
    }
  }

  private felixAddress(host: string): string {
    const felix = this.data.felixes.get(host)!;
    return zmqAddress(felix.ip, felix.port ?? this.opts.felixPort);
  }
}
