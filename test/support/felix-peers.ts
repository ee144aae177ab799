/**
 * What a Felix under test talks to: stand-ins for `plugin ep` and the ACL
 * manager built on the independent wire peers, and felix.cfg for a Felix in
 * a namespace reaching them over ipc:// sockets in `dir` (files are shared
 * across namespaces, so the peers can stay in the test process).
 */
import fs from 'node:fs';
import path from 'node:path';
import { defaultInterfaceName, endpointSuffix } from '../../src/common/endpoint-names.js';
import { formatIni } from '../../src/common/ini.js';
import { PeerOptions, PublishPeer, ReplyPeer, RequestPeer } from './peers.js';

type Json = Record<string, unknown>;

export const tap = (id: string) => defaultInterfaceName('tap', id);
export const suffix = (id: string) => endpointSuffix(id);

export function createMsg(ep: { id: string; ip: string }, mac: string): Json {
  return { type: 'ENDPOINTCREATED', endpoint_id: ep.id, mac, addrs: [{ addr: ep.ip }], state: 'enabled', resync_id: null, issued: Date.now() };
}

/** `ipc://DIR/NAME`. */
export const ipc = (dir: string, name: string) => `ipc://${path.join(dir, name)}`;

/**
 * Writes `DIR/felix.cfg` for a Felix whose peers listen on `ipc://DIR/plugin.sock`, `acl.sock`, `aclpub.sock`
 * and which binds `felix.sock`, logging to `DIR/felix.log`; `extra` is appended (e.g. a `[security]` section).
 */
export function writeFelixConfig(dir: string, extra = ''): string {
  const cfg = path.join(dir, 'felix.cfg');
  const base = formatIni({
    global: {
      PluginAddress: ipc(dir, 'plugin.sock'),
      ACLAddress: ipc(dir, 'acl.sock'),
      ACLPublishAddress: ipc(dir, 'aclpub.sock'),
      LocalAddress: ipc(dir, 'felix.sock'),
      FelixHostname: 'host1.example.com',
      MetadataAddr: 'None',
      EndpointRetryTimeMillis: 100,
    },
    log: { LogFilePath: path.join(dir, 'felix.log'), LogSeverityScreen: 'WARNING' },
    connection: { ConnectionTimeoutMillis: 2000, ConnectionKeepaliveIntervalMillis: 300 },
  });
  // `extra` (more sections, as text) starts at line 18: tests name lines of it.
  fs.writeFileSync(cfg, `${base}\n${extra}`);
  return cfg;
}

/**
 * Plays `plugin ep`: answers RESYNCSTATE with the endpoints it holds, then
 * sends their ENDPOINTCREATED; sends HEARTBEAT when idle, as the real one does.
 */
export class FakePlugin {
  readonly endpoints = new Map<string, Json>();
  rep: ReplyPeer | undefined;
  private readonly felix: RequestPeer;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly heartbeat: NodeJS.Timeout | undefined;

  /**
   * `options.server` for its REP socket, `options.client` for its REQ to Felix; `heartbeatMs` how often
   * it sends Felix HEARTBEAT (default 300; 0: never, for a Felix on a fake clock, whose test sends them).
   */
  constructor(
    private readonly address: string,
    felixAddress: string,
    private readonly options: { server?: PeerOptions; client?: PeerOptions; heartbeatMs?: number } = {},
  ) {
    // A Felix killed mid-request never answers: give up well within Felix's own timeout.
    this.felix = new RequestPeer(felixAddress, 1000, options.client);
    const every = options.heartbeatMs ?? 300;
    this.heartbeat = every > 0 ? setInterval(() => void this.send({ type: 'HEARTBEAT' }).catch(() => {}), every) : undefined;
  }

  async listen(): Promise<void> {
    this.rep = await new ReplyPeer((req) => {
      if (req['type'] !== 'RESYNCSTATE') return { type: req['type'] };
      const creates = [...this.endpoints.values()].map((e) => ({ ...e, resync_id: req['resync_id'] }));
      setImmediate(() => creates.forEach((c) => void this.send(c).catch(() => {})));
      return { type: 'RESYNCSTATE', rc: 'SUCCESS', message: '', endpoint_count: String(creates.length) };
    }, this.options.server).bind(this.address);
  }

  /** One request at a time on the REQ socket. */
  send(msg: Json): Promise<Json> {
    const p = this.chain.then(() => this.felix.request(msg));
    this.chain = p.catch(() => {});
    return p;
  }

  close(): void {
    clearInterval(this.heartbeat);
    this.rep?.close();
    this.felix.close();
  }
}

/** Plays the ACL manager: answers GETACLSTATE, publishing the endpoint's ACLs if it has them. */
export class FakeAclManager {
  readonly acls = new Map<string, Json>();
  readonly rep: ReplyPeer;
  readonly pub: PublishPeer;

  /** `publishOnSubscribe`: an XPUB publishing a known endpoint's ACLs when its topic is subscribed to (the v2 manager). */
  constructor(options: PeerOptions = {}, publishOnSubscribe = false) {
    this.rep = new ReplyPeer((req) => {
      const id = req['endpoint_id'] as string;
      const a = this.acls.get(id);
      if (a) setTimeout(() => void this.pub.publish(id, { type: 'ACLUPDATE', acls: a, issued: Date.now() }), 5);
      return { type: req['type'], endpoint_id: id, rc: 'SUCCESS', message: '' };
    }, options);
    this.pub = new PublishPeer(
      options,
      publishOnSubscribe
        ? (topic) => {
            const a = this.acls.get(topic);
            if (a) void this.pub.publish(topic, { type: 'ACLUPDATE', acls: a, issued: Date.now() });
          }
        : undefined,
    );
  }

  /** GETACLSTATEs received for `id` so far. */
  requestsFor(id: string): number {
    return this.rep.inbox.messages.filter((m) => m['type'] === 'GETACLSTATE' && m['endpoint_id'] === id).length;
  }

  async bind(rep: string, pub: string): Promise<void> {
    await this.rep.bind(rep);
    await this.pub.bind(pub);
  }

  set(id: string, a: Json): Promise<void> {
    this.acls.set(id, a);
    return this.pub.publish(id, { type: 'ACLUPDATE', acls: a, issued: Date.now() });
  }

  close(): void {
    this.rep.close();
    this.pub.close();
  }
}
