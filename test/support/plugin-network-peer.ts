/**
 * A stand-in for `plugin network` (SPEC §4) built directly on zeromq
 * sockets: REP answering GETGROUPS (then publishing every group) and
 * HEARTBEAT, PUB carrying `groups` and `networkheartbeat`. Tests drive its
 * groups and can publish anything raw.
 */
import * as zmq from 'zeromq';
import { Inbox } from './peers.js';

type Json = Record<string, unknown>;

export type PeerMembers = Record<string, string[]>;

/** The prototype's rules for a group (SPEC §4). */
export function prototypeRules(group: string): Json {
  return {
    inbound: [{ group, cidr: null, protocol: null, port: null }],
    outbound: [
      { group, cidr: null, protocol: null, port: null },
      { group: null, cidr: '0.0.0.0/0', protocol: null, port: null },
    ],
    inbound_default: 'deny',
    outbound_default: 'deny',
  };
}

async function bindRetrying(socket: zmq.Socket, address: string): Promise<void> {
  // A port just released by a previous peer may take a moment to be free again.
  for (let attempt = 0; ; attempt++) {
    try {
      await socket.bind(address);
      return;
    } catch (err) {
      if (attempt >= 50) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export class PluginNetworkPeer {
  /** Requests received on the REP socket, parsed (or `{raw}` if not JSON). */
  readonly requests = new Inbox();
  private readonly groups = new Map<string, Json>();
  private readonly rep = new zmq.Reply({ linger: 0 });
  /** An XPUB, so the subscriptions it receives can be seen. */
  private readonly pub = new zmq.XPublisher({ linger: 0 });
  /** What happened, in order: `subscribe:TOPIC`, `unsubscribe:TOPIC`, `request:TYPE`. */
  readonly events: string[] = [];
  private heartbeat: NodeJS.Timeout | undefined;
  private sending: Promise<void> = Promise.resolve();

  /** When set, answers the next GETGROUPS with these raw bodies instead of SUCCESS (and publishes nothing). */
  readonly badReplies: string[] = [];

  constructor(
    readonly repAddress: string,
    readonly pubAddress: string,
    private readonly heartbeatMs = 100,
  ) {}

  async start(): Promise<this> {
    await bindRetrying(this.pub, this.pubAddress);
    await bindRetrying(this.rep, this.repAddress);
    if (this.heartbeatMs > 0) this.heartbeat = setInterval(() => void this.send('networkheartbeat', { type: 'HEARTBEAT' }), this.heartbeatMs);
    void this.serve();
    void this.watchSubscriptions();
    return this;
  }

  private async watchSubscriptions(): Promise<void> {
    try {
      for await (const [msg] of this.pub) this.events.push(`${msg![0] === 1 ? 'subscribe' : 'unsubscribe'}:${msg!.subarray(1).toString()}`);
    } catch {
      /* closed */
    }
  }

  private async serve(): Promise<void> {
    try {
      for await (const [body] of this.rep) {
        let req: Json;
        try {
          req = JSON.parse(body!.toString()) as Json;
        } catch {
          req = { raw: body!.toString() };
        }
        this.requests.push(req);
        this.events.push(`request:${String(req['type'])}`);
        const bad = req['type'] === 'GETGROUPS' ? this.badReplies.shift() : undefined;
        if (bad !== undefined) {
          await this.rep.send(bad);
          continue;
        }
        await this.rep.send(JSON.stringify({ type: req['type'] ?? 'ERROR', rc: 'SUCCESS', message: '' }));
        if (req['type'] === 'GETGROUPS') for (const id of [...this.groups.keys()].sort()) this.publishGroup(id);
      }
    } catch {
      /* closed */
    }
  }

  /** Sets a group's members (and rules; default the prototype's) and publishes it; `{}` deletes it. */
  setGroup(group: string, members: PeerMembers, rules: Json = prototypeRules(group)): Promise<void> {
    if (Object.keys(members).length === 0) this.groups.delete(group);
    else this.groups.set(group, { type: 'GROUPUPDATE', group, members, rules, issued: Date.now() });
    return this.send('groups', { type: 'GROUPUPDATE', group, members, rules, issued: Date.now() });
  }

  /** Changes a group without publishing it: as if the change happened while the manager was not listening. */
  setGroupQuietly(group: string, members: PeerMembers, rules: Json = prototypeRules(group)): void {
    if (Object.keys(members).length === 0) this.groups.delete(group);
    else this.groups.set(group, { type: 'GROUPUPDATE', group, members, rules, issued: Date.now() });
  }

  private publishGroup(group: string): void {
    void this.send('groups', this.groups.get(group)!);
  }

  send(topic: string, msg: Json): Promise<void> {
    return this.raw(topic, JSON.stringify(msg));
  }

  /** Publishes arbitrary frames. */
  raw(...frames: Array<string | Buffer>): Promise<void> {
    this.sending = this.sending.then(() => this.pub.send(frames)).catch(() => {});
    return this.sending;
  }

  close(): void {
    clearInterval(this.heartbeat);
    this.rep.close();
    this.pub.close();
  }
}
