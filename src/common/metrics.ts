/**
 * Health, metrics and status of a daemon (issue 7), served over HTTP when
 * enabled: `/livez` (the event loop answers), `/readyz` (503 with what it
 * waits for until ready), `/metrics` (Prometheus text, prom-client) and
 * `/status` (JSON, read by `calico-status`).
 *
 * Almost everything is read from the daemon's own state when scraped (a
 * {@link DaemonProbe}), so the daemons carry no metric calls of their own;
 * only event timings (a histogram) are observed as they happen.
 */
import fs from 'node:fs';
import http from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { KeySpec, int } from './config.js';
import type { Logger } from './logging.js';
import { isIp } from './wire/codec.js';
import type { SocketStats } from './zmq/stats.js';
import { curveRefusals } from './zmq/refusals.js';

/** One logical connection of a daemon, as the operator thinks of it ("the plugin", "ACL updates"). */
export interface Connection {
  name: string;
  api: 'endpoint' | 'network' | 'acl';
  kind: 'req' | 'rep' | 'router' | 'sub' | 'pub';
  address: string;
  stats: SocketStats;
}

/** A number the daemon knows, shown in /status and exported as `metric`. */
export interface Fact {
  /** Key in /status `facts`. */
  name: string;
  metric: string;
  help: string;
  /** A counter only grows (resyncs started); a gauge goes both ways (endpoints known). */
  kind: 'counter' | 'gauge';
  value: () => number;
}

/** A gauge with labels whose samples the daemon lists when scraped (Felix: one per kernel table). */
export interface LabelledGauge {
  metric: string;
  help: string;
  labelNames: string[];
  samples: () => Array<{ labels: Record<string, string>; value: number }>;
}

/**
 * A counter with labels whose samples the daemon reads when scraped, and may
 * take a while to read (Felix: denied packets, from the kernel's rule
 * counters). A failed read leaves the metric out of that scrape.
 */
export interface LabelledCounter {
  metric: string;
  help: string;
  labelNames: string[];
  samples: () => Promise<Array<{ labels: Record<string, string>; value: number }>>;
}

/** How full one kernel table is (Felix, issue #15). */
export interface KernelTableStatus {
  /** `ipv4-neighbours`, `ipv6-neighbours` or `conntrack`. */
  table: string;
  entries: number;
  /** The kernel's limit; null when it is not visible from the namespace Felix runs in. */
  limit: number | null;
  /** What `entries` counts: the whole kernel (every namespace) or the namespace Felix runs in. */
  scope: 'kernel' | 'namespace';
  /** The sysctl that sets the limit, as sysctl(8) names it. */
  sysctl: string;
}

/**
 * A read-only document under `/status/NAME` (for `calico-status explain`),
 * computed from the query when asked. Throws {@link StatusQueryError} for a
 * bad or unknown query.
 */
export type StatusView = (query: URLSearchParams) => unknown;

/** A `/status/NAME` query that cannot be answered: 400 (bad query) or 404 (nothing by that key). */
export class StatusQueryError extends Error {
  constructor(
    readonly httpStatus: 400 | 404,
    message: string,
  ) {
    super(message);
  }
}

/** The one query parameter a view needs, or a 400 naming it. */
export function queryParam(query: URLSearchParams, name: string): string {
  const v = query.get(name);
  if (v === null || v === '') throw new StatusQueryError(400, `missing query parameter ${name}`);
  return v;
}

/** What the HTTP endpoints read from a daemon, at request time. */
export interface DaemonProbe {
  component: string;
  /** The host it serves (Felix: FelixHostname), shown in /status. */
  host?: string;
  connections(): Connection[];
  /** Conditions not met yet, in words; empty once ready. */
  waitingFor(): string[];
  facts?: Fact[];
  gauges?: LabelledGauge[];
  counters?: LabelledCounter[];
  /** Felix: its endpoints (with their denied-packet counts, read from the kernel). */
  endpoints?(): EndpointStatus[] | Promise<EndpointStatus[]>;
  /** Felix: the kernel tables it watches. */
  kernelTables?(): KernelTableStatus[];
  /** Conditions an operator should act on, one line each (Felix: tables at 80% of their limit). */
  warnings?(): string[];
  /** Documents served under `/status/NAME`. */
  views?: Record<string, StatusView>;
}

export interface ConnectionStatus {
  name: string;
  api: string;
  kind: string;
  address: string;
  received: number;
  /** Seconds since the last message arrived; null if none has. */
  lastMessageAgeSeconds: number | null;
  resets: number;
}

export interface EndpointStatus {
  id: string;
  ifname: string;
  addrs: string[];
  mac: string;
  enabled: boolean;
  interfaceUp: boolean;
  routesProgrammed: boolean;
  chainsProgrammed: boolean;
  /** Routes and chains/sets in place, nothing pending, no error. */
  programmed: boolean;
  error: string | null;
  /** Seconds since the last ACLUPDATE; null while none has arrived (the endpoint is denied). */
  aclAgeSeconds: number | null;
  /**
   * Packets its chains' DROP rules denied, both families summed: inbound
   * (to it), outbound (from it, spoofed ones included); null when the
   * kernel's counters could not be read.
   */
  deniedPackets: { inbound: number; outbound: number } | null;
}

/** The `/status` document. */
export interface DaemonStatus {
  component: string;
  host?: string;
  version: string;
  pid: number;
  uptimeSeconds: number;
  ready: boolean;
  waitingFor: string[];
  connections: ConnectionStatus[];
  facts: Record<string, number>;
  kernelTables?: KernelTableStatus[];
  warnings?: string[];
  endpoints?: EndpointStatus[];
}

/** `[metrics]` of felix.cfg and acl_manager.cfg: off unless MetricsPort is set. */
export const metricsSection = () => ({
  /** 0 = no HTTP endpoint. */
  MetricsPort: int(0, 0, 65535),
  MetricsAddress: metricsAddress('127.0.0.1'),
});

export function metricsAddress(dflt: string): KeySpec<string> {
  return {
    default: dflt,
    parse: (raw) => {
      if (!isIp(raw) && raw !== 'localhost') throw new Error('expected an IP address (or localhost)');
      return raw;
    },
  };
}

function readVersion(): string {
  try {
    return (JSON.parse(fs.readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

const round = (n: number, places = 3) => Math.round(n * 10 ** places) / 10 ** places;

/** The registry and /status of one daemon; see the file comment. */
export class Observability {
  readonly registry = new Registry();
  private readonly startedAt = Date.now();
  private readonly version = readVersion();

  constructor(private readonly probe: DaemonProbe) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    const connections = () => probe.connections();
    new Counter({
      name: 'calico_messages_received_total',
      help: 'Messages received, by connection, API, message type and rc (of the reply, on a REP/ROUTER socket)',
      labelNames: ['connection', 'api', 'type', 'rc'],
      registers,
      collect() {
        this.reset();
        for (const c of connections()) for (const e of c.stats.received.values()) this.inc({ connection: c.name, api: c.api, type: e.type, rc: e.rc }, e.count);
      },
    });
    new Counter({
      name: 'calico_connection_resets_total',
      help: 'Sockets recreated because the peer went silent (request timeouts, watchdogs)',
      labelNames: ['connection', 'api'],
      registers,
      collect() {
        this.reset();
        for (const c of connections()) this.inc({ connection: c.name, api: c.api }, c.stats.resets);
      },
    });
    new Gauge({
      name: 'calico_connection_last_message_timestamp_seconds',
      help: 'When the last message arrived on the connection (Unix time)',
      labelNames: ['connection', 'api'],
      registers,
      collect() {
        this.reset();
        for (const c of connections()) if (c.stats.lastReceivedAt !== null) this.set({ connection: c.name, api: c.api }, c.stats.lastReceivedAt / 1000);
      },
    });
    new Counter({
      name: 'calico_curve_handshakes_refused_total',
      help: 'CurveZMQ handshakes refused by this process, by reason (the log shows only a few of them)',
      labelNames: ['reason'],
      registers,
      collect() {
        this.reset();
        for (const [reason, n] of curveRefusals.byReason()) this.inc({ reason }, n);
      },
    });
    new Gauge({
      name: 'calico_ready',
      help: '1 once the daemon is ready (sockets bound, first sync done)',
      registers,
      collect() {
        this.set(probe.waitingFor().length === 0 ? 1 : 0);
      },
    });
    new Gauge({
      name: 'calico_build_info',
      help: 'Always 1; the labels say which component and version',
      labelNames: ['component', 'version'],
      registers,
    }).set({ component: probe.component, version: this.version }, 1);
    for (const f of probe.facts ?? []) {
      if (f.kind === 'counter')
        new Counter({
          name: f.metric,
          help: f.help,
          registers,
          collect() {
            this.reset();
            this.inc(f.value());
          },
        });
      else
        new Gauge({
          name: f.metric,
          help: f.help,
          registers,
          collect() {
            this.set(f.value());
          },
        });
    }
    for (const g of probe.gauges ?? [])
      new Gauge({
        name: g.metric,
        help: g.help,
        labelNames: g.labelNames,
        registers,
        collect() {
          this.reset();
          for (const s of g.samples()) this.set(s.labels, s.value);
        },
      });
    for (const c of probe.counters ?? [])
      new Counter({
        name: c.metric,
        help: c.help,
        labelNames: c.labelNames,
        registers,
        async collect() {
          const samples = await c.samples().catch(() => []);
          this.reset();
          for (const s of samples) this.inc(s.labels, s.value);
        },
      });
  }

  /** A histogram observed as events happen (the registry's only non-derived metric kind). */
  histogram<L extends string>(name: string, help: string, labelNames: L[], buckets: number[]): Histogram<L> {
    return new Histogram({ name, help, labelNames, buckets, registers: [this.registry] });
  }

  /** The /status document; `endpoints: false` leaves out the endpoints (and the kernel read their counts take), as /readyz needs. */
  async status({ endpoints = true } = {}): Promise<DaemonStatus> {
    const now = Date.now();
    const waitingFor = this.probe.waitingFor();
    const status: DaemonStatus = {
      component: this.probe.component,
      ...(this.probe.host !== undefined ? { host: this.probe.host } : {}),
      version: this.version,
      pid: process.pid,
      uptimeSeconds: round((now - this.startedAt) / 1000, 1),
      ready: waitingFor.length === 0,
      waitingFor,
      connections: this.probe.connections().map((c) => ({
        name: c.name,
        api: c.api,
        kind: c.kind,
        address: c.address,
        received: c.stats.total,
        lastMessageAgeSeconds: c.stats.lastReceivedAt === null ? null : round((now - c.stats.lastReceivedAt) / 1000),
        resets: c.stats.resets,
      })),
      facts: Object.fromEntries((this.probe.facts ?? []).map((f) => [f.name, f.value()])),
    };
    if (this.probe.kernelTables) status.kernelTables = this.probe.kernelTables();
    if (this.probe.warnings) status.warnings = this.probe.warnings();
    if (this.probe.endpoints && endpoints) status.endpoints = await this.probe.endpoints();
    return status;
  }

  /** `/status/NAME?…`: the view's document, or undefined if there is no such view. */
  async view(name: string, query: URLSearchParams): Promise<{ found: boolean; doc?: unknown }> {
    const view = this.probe.views && Object.hasOwn(this.probe.views, name) ? this.probe.views[name] : undefined;
    return view ? { found: true, doc: await view(query) } : { found: false };
  }
}

/** The HTTP side: one node:http server on a local address. */
export class MetricsServer {
  private constructor(private readonly server: http.Server) {}

  /** Listens on `host:port`; a failure to bind stops start-up with the address in the message. */
  static async start(obs: Observability, host: string, port: number, log: Logger): Promise<MetricsServer> {
    const server = http.createServer((req, res) => {
      void handle(obs, req, res).catch((err: unknown) => {
        log.error({ err, path: req.url }, 'metrics request failed');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('internal error\n');
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new Error(`cannot listen on ${host}:${port} for metrics: ${err.message}`)));
      server.listen(port, host, () => resolve());
    });
    log.info({ address: host, port }, 'serving /livez, /readyz, /metrics, /status');
    return new MetricsServer(server);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

async function handle(obs: Observability, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const path = url.pathname;
  const send = (code: number, type: string, body: string) => {
    res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    send(405, 'text/plain', 'only GET\n');
    return;
  }
  switch (path) {
    case '/livez': {
      send(200, 'text/plain', 'ok\n');
      return;
    }
    case '/readyz': {
      const status = await obs.status({ endpoints: false });
      if (status.ready) send(200, 'text/plain', 'ready\n');
      else send(503, 'text/plain', `not ready: waiting for ${status.waitingFor.join(', ')}\n`);
      return;
    }
    case '/metrics': {
      // `?name=M` (repeatable): only those metrics, so a tight poller of one fact does not make the
      // daemon read everything each time (Felix's denied counters cost an iptables-save).
      const names = [...url.searchParams.getAll('name'), ...url.searchParams.getAll('name[]')];
      if (names.length === 0) {
        send(200, obs.registry.contentType, await obs.registry.metrics());
        return;
      }
      const texts = await Promise.all(names.filter((n) => obs.registry.getSingleMetric(n)).map((n) => obs.registry.getSingleMetricAsString(n)));
      send(200, obs.registry.contentType, texts.map((t) => `${t}\n`).join(''));
      return;
    }
    case '/status': {
      send(200, 'application/json', `${JSON.stringify(await obs.status(), null, 2)}\n`);
      return;
    }
    default: {
      if (path.startsWith('/status/')) {
        try {
          const v = await obs.view(path.slice('/status/'.length), url.searchParams);
          if (v.found) {
            send(200, 'application/json', `${JSON.stringify(v.doc, null, 2)}\n`);
            return;
          }
        } catch (err) {
          if (err instanceof StatusQueryError) {
            send(err.httpStatus, 'text/plain', `${err.message}\n`);
            return;
          }
          throw err;
        }
      }
      send(404, 'text/plain', 'not found: try /livez, /readyz, /metrics or /status\n');
      return;
    }
  }
}

/** Starts serving when `port` is non-zero; returns a stop function (a no-op when off). */
export async function serveMetrics(obs: Observability, address: string, port: number, log: Logger): Promise<() => Promise<void>> {
  if (port === 0) return async () => {};
  const server = await MetricsServer.start(obs, address, port, log);
  return () => server.close();
}
