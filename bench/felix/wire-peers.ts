/**
 * What the benchmark's Felix talks to, over ZeroMQ (any address, ipc:// in the
 * benchmark), built on the independent wire peers of test/support/peers.ts:
 *
 *   BenchPlugin      plays `plugin ep`: REP answering RESYNCSTATE (with the endpoints pushed so far,
 *                    which it then re-sends with that resync_id, as the real plugin does) and HEARTBEAT;
 *                    a REQ to Felix carrying one request at a time (ENDPOINTCREATED with resync_id null,
 *                    HEARTBEAT when idle for the keepalive interval).
 *   BenchAclManager  plays the ACL manager: PUB with ACLUPDATE on topic = endpoint id (plus `aclheartbeat`),
 *                    REP answering GETACLSTATE by publishing that endpoint's ACLs.
 *
 * And NsWatch: the client of ./ns-watch.ts, run inside a namespace.
 */
import { spawn, ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import * as zmq from 'zeromq';
import { ReplyPeer, RequestPeer } from '../../test/support/peers.js';
import type { Acls } from '../../src/common/wire/acl-api.js';
import type { BenchEndpoint } from './workload.js';

type Json = Record<string, unknown>;

export const wall = (): number => performance.timeOrigin + performance.now();

export function createMessage(ep: BenchEndpoint, resyncId: string | null = null): Json {
  return {
    type: 'ENDPOINTCREATED',
    endpoint_id: ep.id,
    mac: ep.mac,
    addrs: ep.addrs.map((addr) => ({ addr })),
    state: ep.enabled ? 'enabled' : 'disabled',
    resync_id: resyncId,
    issued: Date.now(),
  };
}

export class BenchPlugin {
  /** Endpoints pushed so far, by id (what a later RESYNCSTATE is answered with). */
  readonly pushed = new Map<string, BenchEndpoint>();
  resyncs = 0;
  heartbeatsSent = 0;
  private resyncSending = false;
  private rep: ReplyPeer | undefined;
  private readonly felix: RequestPeer;
  private chain: Promise<unknown> = Promise.resolve();
  private lastSent = Date.now();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly address: string,
    felixAddress: string,
    opts: { timeoutMs: number; keepaliveMs: number },
  ) {
    this.felix = new RequestPeer(felixAddress, opts.timeoutMs);
    this.timer = setInterval(() => {
      if (Date.now() - this.lastSent < opts.keepaliveMs) return;
      this.heartbeatsSent++;
      void this.send({ type: 'HEARTBEAT' }).catch(() => {});
    }, 1000);
  }

  async listen(): Promise<void> {
    this.rep = await new ReplyPeer((req) => {
      if (req['type'] === 'HEARTBEAT') return { type: 'HEARTBEAT' };
      if (req['type'] !== 'RESYNCSTATE') return { type: req['type'] ?? 'ERROR', rc: 'FAILURE', message: 'unexpected' };
      // As the plugin does (SPEC §3 v2): one resync at a time per host, or a slow Felix's retries pile up without bound.
      if (this.resyncSending) return { type: 'RESYNCSTATE', rc: 'FAILURE', message: 'resync in progress' };
      this.resyncs++;
      const eps = [...this.pushed.values()];
      this.resyncSending = true;
      setImmediate(() => {
        const sent = eps.map((ep) => this.send(createMessage(ep, req['resync_id'] as string)).catch(() => {}));
        void Promise.all(sent).then(() => (this.resyncSending = false));
      });
      return { type: 'RESYNCSTATE', rc: 'SUCCESS', message: '', endpoint_count: eps.length, interface_prefix: 'tap' };
    }).bind(this.address);
  }

  /** Requests go one at a time: each waits for the previous reply. */
  send(msg: Json): Promise<Json> {
    const p = this.chain.then(() => {
      this.lastSent = Date.now();
      return this.felix.request(msg);
    });
    this.chain = p.catch(() => {});
    return p;
  }

  /** ENDPOINTCREATED (resync_id null) for a new endpoint; resolves with Felix's reply, throws unless SUCCESS. */
  async create(ep: BenchEndpoint): Promise<void> {
    this.pushed.set(ep.id, ep);
    let reply: Json;
    try {
      reply = await this.send(createMessage(ep));
    } catch (err) {
      throw new Error(`ENDPOINTCREATED ${ep.id}: no reply from Felix (${(err as Error).message})`);
    }
    if (reply['rc'] !== 'SUCCESS') throw new Error(`ENDPOINTCREATED ${ep.id} answered ${JSON.stringify(reply)}`);
  }

  close(): void {
    clearInterval(this.timer);
    this.rep?.close();
    this.felix.close();
  }
}

export class BenchAclManager {
  readonly acls = new Map<string, Acls>();
  getAclStates = 0;
  private rep: ReplyPeer | undefined;
  private readonly pub: zmq.Publisher;
  private chain: Promise<void> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;

  constructor(heartbeatMs: number) {
    // The real ACL manager never drops a publication (XPUB_NODROP, paced); a deep queue plays that here.
    this.pub = new zmq.Publisher({ linger: 0, sendHighWaterMark: 1000000 });
    this.timer = setInterval(() => void this.publish('aclheartbeat', { type: 'HEARTBEAT', issued: Date.now() }).catch(() => {}), heartbeatMs);
  }

  async bind(repAddress: string, pubAddress: string): Promise<void> {
    await this.pub.bind(pubAddress);
    this.rep = await new ReplyPeer((req) => {
      if (req['type'] === 'HEARTBEAT') return { type: 'HEARTBEAT' };
      const id = req['endpoint_id'] as string;
      if (req['type'] !== 'GETACLSTATE' || typeof id !== 'string') return { type: req['type'] ?? 'ERROR', rc: 'INVALID', message: 'unexpected' };
      this.getAclStates++;
      const a = this.acls.get(id);
      if (a) setImmediate(() => void this.publishAcls(id, a).catch(() => {}));
      return { type: 'GETACLSTATE', endpoint_id: id, rc: 'SUCCESS', message: '' };
    }).bind(repAddress);
  }

  private publish(topic: string, msg: Json): Promise<void> {
    const p = this.chain.then(() => this.pub.send([topic, JSON.stringify(msg)]));
    this.chain = p.catch(() => {});
    return p;
  }

  private publishAcls(id: string, acls: Acls): Promise<void> {
    return this.publish(id, { type: 'ACLUPDATE', acls, issued: Date.now() });
  }

  /** Records the endpoint's ACLs and publishes them (the group changed). */
  set(id: string, acls: Acls): Promise<void> {
    this.acls.set(id, acls);
    return this.publishAcls(id, acls);
  }

  close(): void {
    clearInterval(this.timer);
    this.rep?.close();
    this.pub.close();
  }
}

const WATCH = path.join(path.dirname(fileURLToPath(import.meta.url)), 'ns-watch.js');

interface WatchReply {
  seq: number;
  ok?: boolean;
  result?: unknown;
  error?: string;
  progress?: unknown;
}

/** ./ns-watch.js inside namespace `netns`: one promise per command; `onProgress` gets its progress lines. */
export class NsWatch {
  private readonly child: ChildProcess;
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (r: WatchReply) => void; onProgress?: (p: unknown) => void }>();
  private stderr = '';
  private readonly exited: Promise<unknown>;

  constructor(netns: string) {
    this.child = spawn('ip', ['netns', 'exec', netns, process.execPath, WATCH], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => this.child.on('exit', resolve));
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-5000)));
    readline.createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const r = JSON.parse(line) as WatchReply;
      const p = this.pending.get(r.seq);
      if (!p) return;
      if (r.progress !== undefined) return p.onProgress?.(r.progress);
      this.pending.delete(r.seq);
      p.resolve(r);
    });
    void this.exited.then(() => {
      for (const p of this.pending.values()) p.resolve({ seq: 0, ok: false, error: `ns-watch exited: ${this.stderr.slice(-2000)}` });
      this.pending.clear();
    });
  }

  async send<T>(cmd: Json, onProgress?: (p: unknown) => void): Promise<T> {
    const seq = ++this.seq;
    const reply = new Promise<WatchReply>((resolve) => this.pending.set(seq, { resolve, onProgress }));
    this.child.stdin!.write(JSON.stringify({ ...cmd, seq }) + '\n');
    const r = await reply;
    if (!r.ok) throw new Error(`ns-watch ${String(cmd['op'])}: ${r.error}`);
    return r.result as T;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await this.exited;
    clearTimeout(timer);
  }
}
