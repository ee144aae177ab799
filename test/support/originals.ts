/**
 * Stand-ins for the 2014 originals (the Python plugin network, ACL manager
 * and Felix) behaving on the wire exactly as SPEC §11 describes them, for the
 * drop-in tests (issue #12). Built on the independent peers of ./peers.js and
 * ./plugin-network-peer.js, never on src/: a rebuilt command is checked
 * against what an original does, not against our own plumbing.
 *
 * What each one does is the original's behaviour, including its faults
 * (GETGROUPS asked only once, HEARTBEAT answered FAILURE, a REP socket that
 * wedges on an ENDPOINTDESTROYED for an unknown endpoint). They record what
 * they received and sent so tests can assert on it; they are not general
 * fakes and must not be "fixed" to make a test pass.
 */
import { randomUUID } from 'node:crypto';
import * as zmq from 'zeromq';
import { Inbox, PublishPeer, ReplyPeer, RequestPeer } from './peers.js';
import { PeerMembers, PluginNetworkPeer, prototypeRules } from './plugin-network-peer.js';

type Json = Record<string, unknown>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Seconds with a fraction, as the 2014 ACL manager wrote `issued`. */
const issuedSeconds = () => Date.now() / 1000;

const isV6 = (addr: string) => addr.includes(':');

/** One family's rules with both defaults `deny` (SPEC §5). */
const familyRules = (inbound: Json[], outbound: Json[]): Json => ({ inbound, outbound, inbound_default: 'deny', outbound_default: 'deny' });

const allow = (cidr: string): Json => ({ group: null, cidr, protocol: null, port: null });

/**
 * The ACLs of an endpoint in a prototype-shaped group whose members have
 * `addrs` (SPEC §4, §5): inbound allows each member address (/32, /128),
 * outbound the same plus `0.0.0.0/0`. Rules in address order, `0.0.0.0/0`
 * first; compare with an order-insensitive check against other calculators.
 */
export function prototypeAcls(addrs: string[]): Json {
  const own = (v6: boolean) => [...new Set(addrs.filter((a) => isV6(a) === v6))].sort().map((a) => allow(`${a}/${v6 ? 128 : 32}`));
  return { v4: familyRules(own(false), [allow('0.0.0.0/0'), ...own(false)]), v6: familyRules(own(true), own(true)) };
}

/** A group as the 2014 ACL manager holds it: members and rules as published. */
interface HeldGroup {
  members: Record<string, string[]>;
  rules: Json;
}

/**
 * The 2014 ACL manager's calculation, small and separate from the rebuild's:
 * an endpoint takes the rules of the FIRST group it is a member of (the
 * original warned and ignored the others, SPEC §5); a `group` rule becomes
 * one rule per address of each member of the referenced group, a `cidr` rule
 * is copied to its family. Anything the plugin put in `members` is used as it
 * is (the original did not validate).
 */
function originalAcls(endpoint: string, groups: ReadonlyMap<string, HeldGroup>): Json | null {
  const own = [...groups.values()].find((g) => Object.keys(g.members).includes(endpoint));
  if (!own) return null;
  const out: Record<'v4' | 'v6', { inbound: Json[]; outbound: Json[] }> = { v4: { inbound: [], outbound: [] }, v6: { inbound: [], outbound: [] } };
  for (const dir of ['inbound', 'outbound'] as const) {
    for (const rule of (own.rules[dir] as Json[] | undefined) ?? []) {
      const { group, cidr, ...rest } = rule;
      if (typeof cidr === 'string') out[isV6(cidr) ? 'v6' : 'v4'][dir].push({ ...rest, group: null, cidr });
      const ref = typeof group === 'string' ? groups.get(group) : undefined;
      for (const addrs of Object.values(ref?.members ?? {}))
        for (const a of addrs) out[isV6(a) ? 'v6' : 'v4'][dir].push({ ...rest, group: null, cidr: `${a}/${isV6(a) ? 128 : 32}` });
    }
  }
  return { v4: familyRules(out.v4.inbound, out.v4.outbound), v6: familyRules(out.v6.inbound, out.v6.outbound) };
}

export interface OriginalAclManagerOptions {
  /** plugin network's REP (9903), e.g. tcp://127.0.0.1:9903. */
  pluginRequestAddress: string;
  /** plugin network's PUB (9904). */
  pluginPublishAddress: string;
  /** Where it binds the REP Felix asks GETACLSTATE on (9905). */
  felixRequestAddress: string;
  /** Where it binds its PUB of ACLUPDATEs (9906). */
  felixPublishAddress: string;
  /** HEARTBEAT on the REQ to the plugin this often (default 1 s). */
  heartbeatMs?: number;
  /** A request to the plugin unanswered for this long is given up and its socket recreated (default 2 s). */
  requestTimeoutMs?: number;
}

/** A request the stand-in sent to the plugin, and the reply (null: none within the timeout). */
export interface SentRequest {
  type: string;
  at: number;
  reply: Json | null;
}

/**
 * The 2014 ACL manager (SPEC §11). Its SUB connects to plugin network's PUB
 * and subscribes to `groups` and `networkheartbeat` (ZeroMQ reconnects and
 * re-subscribes by itself after a plugin restart); its REQ sends GETGROUPS
 * exactly once, at {@link start}, and from then on only HEARTBEATs. It binds a
 * REP for Felix (GETACLSTATE → SUCCESS, then the endpoint's ACLs published if
 * known; HEARTBEAT → `rc: FAILURE`, as the original did) and a plain PUB (no
 * publication on subscription), and on every GROUPUPDATE publishes an
 * ACLUPDATE for EVERY endpoint it knows. `issued` is seconds with a fraction.
 *
 * Use: `await new OriginalAclManager({...}).start()`, then read `groupUpdates`,
 * `groups`, `sent`; `close()` after the test.
 */
export class OriginalAclManager {
  /** Every GROUPUPDATE received on `groups`, in order. */
  readonly groupUpdates: Json[] = [];
  /** The groups as it holds them now (a GROUPUPDATE with `members: {}` removed one). */
  readonly groups = new Map<string, HeldGroup>();
  /** Every request it sent to the plugin, with its reply. */
  readonly sent: SentRequest[] = [];
  /** ACLUPDATEs it published. */
  aclUpdatesPublished = 0;
  /** The Felix-facing REP; its `inbox` records Felix's requests. */
  readonly felixRep: ReplyPeer;
  private readonly pub = new PublishPeer();
  private readonly sub = new zmq.Subscriber({ linger: 0 });
  private readonly req: RequestPeer;
  private closed = false;

  constructor(private readonly opts: OriginalAclManagerOptions) {
    this.req = new RequestPeer(opts.pluginRequestAddress, opts.requestTimeoutMs ?? 2000);
    this.felixRep = new ReplyPeer((req) => this.answerFelix(req));
  }

  /** Binds its own sockets, subscribes, and sends its one GETGROUPS (not waiting for the reply); then heartbeats. */
  async start(): Promise<this> {
    await this.felixRep.bind(this.opts.felixRequestAddress);
    await this.pub.bind(this.opts.felixPublishAddress);
    this.sub.connect(this.opts.pluginPublishAddress);
    this.sub.subscribe('groups');
    this.sub.subscribe('networkheartbeat');
    void this.receive();
    void this.talkToPlugin();
    return this;
  }

  /** Requests of `type` it sent so far. */
  sentOf(type: string): SentRequest[] {
    return this.sent.filter((s) => s.type === type);
  }

  /** The ACLs it would publish for `endpoint` now, or null if it knows none. */
  aclsOf(endpoint: string): Json | null {
    return originalAcls(endpoint, this.groups);
  }

  close(): void {
    this.closed = true;
    this.sub.close();
    this.req.close();
    this.felixRep.close();
    this.pub.close();
  }

  /** GETGROUPS once, then HEARTBEAT every `heartbeatMs` until closed (each bounded by the request timeout). */
  private async talkToPlugin(): Promise<void> {
    await this.ask('GETGROUPS');
    while (!this.closed) {
      await sleep(this.opts.heartbeatMs ?? 1000);
      if (!(this.closed as boolean)) await this.ask('HEARTBEAT'); // close() may have run during the sleep
    }
  }

  private async ask(type: string): Promise<void> {
    const record: SentRequest = { type, at: Date.now(), reply: null };
    this.sent.push(record);
    try {
      record.reply = await this.req.request(type === 'GETGROUPS' ? { type, issued: issuedSeconds() } : { type });
    } catch {
      /* no reply within the timeout: the peer has recreated its socket */
    }
  }

  private async receive(): Promise<void> {
    try {
      for await (const [topic, body] of this.sub) {
        if (topic!.toString() !== 'groups') continue;
        let msg: Json;
        try {
          msg = JSON.parse(body!.toString()) as Json;
        } catch {
          continue;
        }
        if (msg['type'] !== 'GROUPUPDATE' || typeof msg['group'] !== 'string') continue;
        this.groupUpdates.push(msg);
        const members = (msg['members'] ?? {}) as Record<string, string[]>;
        if (Object.keys(members).length === 0) this.groups.delete(msg['group']);
        else this.groups.set(msg['group'], { members, rules: (msg['rules'] ?? {}) as Json });
        // The original recomputed and republished every endpoint on any change.
        for (const ep of this.endpoints()) this.publishAcls(ep);
      }
    } catch {
      /* closed */
    }
  }

  private endpoints(): string[] {
    return [...new Set([...this.groups.values()].flatMap((g) => Object.keys(g.members)))];
  }

  private publishAcls(endpoint: string): void {
    const acls = originalAcls(endpoint, this.groups);
    if (!acls || this.closed) return;
    this.aclUpdatesPublished++;
    void this.pub.publish(endpoint, { type: 'ACLUPDATE', acls, issued: issuedSeconds() }).catch(() => {});
  }

  private answerFelix(req: Json): Json {
    if (req['type'] === 'GETACLSTATE') {
      const id = String(req['endpoint_id']);
      // Published after the reply is on its way.
      setTimeout(() => this.publishAcls(id), 5);
      return { type: 'GETACLSTATE', endpoint_id: id, rc: 'SUCCESS', message: '' };
    }
    // The original answered HEARTBEAT (and anything else) with FAILURE (SPEC §11).
    return { type: req['type'] ?? 'ERROR', rc: 'FAILURE', message: `unexpected request ${String(req['type'])}` };
  }
}

/**
 * The 2014 plugin, network side (SPEC §11): a REP answering GETGROUPS
 * (SUCCESS, then every group published) and HEARTBEAT (`rc: SUCCESS`), a PUB
 * carrying `groups` GROUPUPDATEs in the prototype's shape and
 * `networkheartbeat`, and a full republication of every group every
 * `republishMs` (the original: about 15 s). Members may be any string at all
 * (`web:1`, an id with a space, an address that is not one), as the original
 * put whatever it was given. Wraps {@link PluginNetworkPeer} (whose XPUB
 * behaves on the wire as the original's PUB) and adds the republication.
 *
 * Use: `setGroup` before or after `await start()`; wait on `republications`.
 */
export class OriginalPlugin {
  readonly peer: PluginNetworkPeer;
  /** Full republications sent so far (each one: every group, once). */
  republications = 0;
  private readonly groups = new Map<string, { members: PeerMembers; rules: Json }>();
  private timer: NodeJS.Timeout | undefined;
  private started = false;

  constructor(
    repAddress: string,
    pubAddress: string,
    private readonly republishMs = 15000,
    heartbeatMs = 1000,
  ) {
    this.peer = new PluginNetworkPeer(repAddress, pubAddress, heartbeatMs);
  }

  /** Requests it received (GETGROUPS, HEARTBEAT) as an {@link Inbox}. */
  get requests(): Inbox {
    return this.peer.requests;
  }

  /** Sets a group (prototype rules unless given); published at once when started; `{}` deletes it. */
  async setGroup(group: string, members: PeerMembers, rules: Json = prototypeRules(group)): Promise<void> {
    if (Object.keys(members).length === 0) this.groups.delete(group);
    else this.groups.set(group, { members, rules });
    if (this.started) await this.peer.setGroup(group, members, rules);
    else this.peer.setGroupQuietly(group, members, rules);
  }

  async start(): Promise<this> {
    await this.peer.start();
    this.started = true;
    this.timer = setInterval(() => void this.republishAll(), this.republishMs);
    return this;
  }

  private async republishAll(): Promise<void> {
    await Promise.all([...this.groups].map(([g, { members, rules }]) => this.peer.setGroup(g, members, rules)));
    this.republications++;
  }

  close(): void {
    clearInterval(this.timer);
    this.peer.close();
  }
}

export interface OriginalFelixOptions {
  /** Where it binds the REP plugin ep pushes to (9902), e.g. tcp://127.0.0.1:9902. */
  bindAddress: string;
  /** plugin ep's REP (9901). */
  pluginAddress: string;
  /** Sent in RESYNCSTATE (the original: the machine's hostname). */
  hostname: string;
  /** `ResyncIntervalSecs` (the prototype set 5). */
  resyncIntervalSecs?: number;
  /** `ConnectionTimeoutMillis` (default 40000): a socket silent this long is recreated. */
  connectionTimeoutMs?: number;
  /** `ConnectionKeepaliveIntervalMillis` (default 5000): HEARTBEAT on the idle REQ. */
  keepaliveMs?: number;
}

/** One RESYNCSTATE the stand-in sent, and how it went. */
export interface ResyncRecord {
  id: string;
  sentAt: number;
  /** The reply, or null while none came (or the request timed out). */
  reply: Json | null;
  /** `endpoint_count` of a SUCCESS reply, as a number. */
  expected: number | null;
  /** ENDPOINTCREATEDs received carrying this resync's id. */
  creates: number;
  completed: boolean;
}

const ENDPOINT_STATES = ['enabled', 'disabled'];

/**
 * The 2014 Felix's Endpoint API side (SPEC §3, §11): binds the REP plugin ep
 * pushes to and connects a REQ to plugin ep; sends RESYNCSTATE at start and
 * every `resyncIntervalSecs`, and HEARTBEAT when its REQ is idle; answers
 * HEARTBEAT, creates and updates with SUCCESS, but a create or update without
 * `state` (or `mac`, `addrs`) with INVALID (recorded in `refused`), an update
 * of an unknown endpoint with NOTEXIST, and NOTHING AT ALL to an
 * ENDPOINTDESTROYED for an endpoint it does not know (recorded in
 * `unanswered`).
 *
 * How "answers nothing" is modelled: the original's handler simply returned
 * without sending on its REP socket. A ZeroMQ REP socket that owes a reply
 * cannot receive again, so the original's REP was wedged: every later
 * request (HEARTBEATs, creates) sat unread. It recovered only through its
 * own connection timeout: a socket with no activity for
 * `ConnectionTimeoutMillis` was closed, bound again, and (for this socket) a
 * full endpoint resync started. This stand-in does exactly that with a real
 * REP socket (a {@link ReplyPeer} whose reply never resolves), rather than a
 * ROUTER that would skip one request and keep serving, which the original
 * never did.
 *
 * Resyncs: every `resyncIntervalSecs` after the previous RESYNCSTATE, as
 * SPEC §11 states it; a create carrying the current resync's id counts
 * towards its `endpoint_count` (accepted or refused); when all have come, the
 * endpoints not confirmed are forgotten.
 */
export class OriginalFelix {
  /** Every request received on its REP, across re-binds, in order. */
  readonly received = new Inbox();
  /** Creates and updates answered INVALID or NOTEXIST. */
  readonly refused: Json[] = [];
  /** ENDPOINTDESTROYEDs it never answered. */
  readonly unanswered: Json[] = [];
  readonly resyncs: ResyncRecord[] = [];
  /** Endpoints it manages: id → the last create or update accepted. */
  readonly known = new Map<string, Json>();
  /** Times its REP socket timed out and was bound again. */
  rebinds = 0;
  private rep: ReplyPeer | undefined;
  /** Rejecting it ends the wedged REP's receive loop. */
  private wedge: ((err: Error) => void) | undefined;
  private repActivity = Date.now();
  private reqActivity = Date.now();
  private readonly req: RequestPeer;
  private reqChain: Promise<unknown> = Promise.resolve();
  /** Requests queued or in flight on the REQ. */
  private reqPending = 0;
  private current: ResyncRecord | null = null;
  private confirmed = new Set<string>();
  private resyncTimer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private closed = false;
  private rebinding = false;
  private readonly resyncMs: number;
  private readonly timeoutMs: number;
  private readonly keepaliveMs: number;

  constructor(private readonly opts: OriginalFelixOptions) {
    this.resyncMs = (opts.resyncIntervalSecs ?? 5) * 1000;
    this.timeoutMs = opts.connectionTimeoutMs ?? 40000;
    this.keepaliveMs = opts.keepaliveMs ?? 5000;
    this.req = new RequestPeer(opts.pluginAddress, this.timeoutMs);
  }

  async start(): Promise<this> {
    await this.bindRep();
    this.watchdog = setInterval(() => this.check(), 50);
    this.resync();
    return this;
  }

  /** Makes it forget `id` without telling anybody (as an original that missed a create would). */
  forget(id: string): void {
    this.known.delete(id);
  }

  /** Requests received of `type`. */
  receivedOf(type: string): Json[] {
    return this.received.messages.filter((m) => m['type'] === type);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.resyncTimer);
    clearInterval(this.watchdog);
    this.wedge?.(new Error('closed'));
    this.rep?.close();
    this.req.close();
  }

  private async bindRep(): Promise<void> {
    // A port just released by the previous socket may take a moment to be free again.
    for (let attempt = 0; ; attempt++) {
      const rep = new ReplyPeer((req) => this.answer(req));
      try {
        await rep.bind(this.opts.bindAddress);
        if (this.closed) {
          rep.close();
          return;
        }
        this.rep = rep;
        this.repActivity = Date.now();
        return;
      } catch (err) {
        rep.close();
        if (attempt >= 50 || this.closed) throw err;
        await sleep(100);
      }
    }
  }

  /** The original's main loop checks: REP silent too long → rebind and resync; idle REQ → HEARTBEAT. */
  private check(): void {
    if (this.closed || this.rebinding) return;
    if (Date.now() - this.repActivity > this.timeoutMs) {
      this.rebinding = true;
      this.rebinds++;
      this.wedge?.(new Error('socket timed out'));
      this.wedge = undefined;
      this.rep?.close();
      this.rep = undefined;
      void this.bindRep()
        .then(() => this.resync())
        .catch(() => {})
        .finally(() => (this.rebinding = false));
      return;
    }
    if (this.reqPending === 0 && Date.now() - this.reqActivity > this.keepaliveMs) void this.request({ type: 'HEARTBEAT' }).catch(() => {});
  }

  /** One request in flight on the REQ, as the original's queue kept it. */
  private request(msg: Json): Promise<Json> {
    this.reqPending++;
    const p = this.reqChain.then(() => {
      this.reqActivity = Date.now();
      return this.req.request(msg);
    });
    this.reqChain = p.catch(() => {});
    return p.finally(() => {
      this.reqPending--;
      this.reqActivity = Date.now();
    });
  }

  private resync(): void {
    if (this.closed) return;
    clearTimeout(this.resyncTimer);
    this.resyncTimer = setTimeout(() => this.resync(), this.resyncMs);
    const record: ResyncRecord = { id: randomUUID(), sentAt: Date.now(), reply: null, expected: null, creates: 0, completed: false };
    this.resyncs.push(record);
    this.current = record;
    this.confirmed = new Set();
    this.request({ type: 'RESYNCSTATE', resync_id: record.id, hostname: this.opts.hostname, issued: Date.now() }).then(
      (reply) => {
        record.reply = reply;
        if (this.current !== record) return;
        if (reply['rc'] !== 'SUCCESS') {
          this.current = null;
          return;
        }
        // The original read endpoint_count with int(): a number or a numeric string.
        record.expected = Number(reply['endpoint_count']);
        this.completeIfDone(record);
      },
      () => {
        if (this.current === record) this.current = null;
      },
    );
  }

  private completeIfDone(record: ResyncRecord): void {
    if (record.expected === null || record.creates < record.expected || this.current !== record) return;
    record.completed = true;
    this.current = null;
    for (const id of [...this.known.keys()]) if (!this.confirmed.has(id)) this.known.delete(id);
  }

  private answer(req: Json): Json | Promise<Json> {
    this.repActivity = Date.now();
    this.received.push(req);
    const type = String(req['type']);
    const id = String(req['endpoint_id']);
    const reply = (rc: string, message = '') => ({ type, rc, message });
    switch (type) {
      case 'HEARTBEAT':
        return { type };
      case 'ENDPOINTCREATED': {
        // The original registered the endpoint before checking the fields.
        if (!this.known.has(id)) this.known.set(id, req);
        const invalid = this.invalid(req);
        if (invalid) this.refused.push(req);
        else this.known.set(id, req);
        const resyncId = req['resync_id'];
        if (typeof resyncId === 'string' && this.current && resyncId === this.current.id) {
          this.current.creates++;
          this.confirmed.add(id);
          // After the reply is sent, as the original did.
          const record = this.current;
          setImmediate(() => this.completeIfDone(record));
        }
        return invalid ? reply('INVALID', invalid) : reply('SUCCESS');
      }
      case 'ENDPOINTUPDATED': {
        if (!this.known.has(id)) {
          this.refused.push(req);
          return reply('NOTEXIST', `Endpoint ${id} does not exist`);
        }
        const invalid = this.invalid(req);
        if (invalid) {
          this.refused.push(req);
          return reply('INVALID', invalid);
        }
        this.known.set(id, req);
        return reply('SUCCESS');
      }
      case 'ENDPOINTDESTROYED':
        if (this.known.delete(id)) return reply('SUCCESS');
        // "Received destroy for absent endpoint": no reply, and the REP socket is wedged until it times out.
        this.unanswered.push(req);
        return new Promise<Json>((_, reject) => (this.wedge = reject));
      default:
        return reply('FAILURE', `unknown request ${type}`);
    }
  }

  /** Why the original's `_update_endpoint` would refuse this create or update, or null. */
  private invalid(req: Json): string | null {
    if (!Array.isArray(req['addrs'])) return `No valid address for endpoint ${String(req['endpoint_id'])}`;
    if (req['mac'] === undefined || req['mac'] === null) return `No mac address for endpoint ${String(req['endpoint_id'])}`;
    if (req['state'] === undefined || req['state'] === null) return `No state for endpoint ${String(req['endpoint_id'])}`;
    const state: unknown = req['state']; // anything a peer sent, printed as the original's str() would
    if (!ENDPOINT_STATES.includes(String(state))) return `Invalid state ${String(state)} for endpoint ${String(req['endpoint_id'])}`;
    return null;
  }
}
