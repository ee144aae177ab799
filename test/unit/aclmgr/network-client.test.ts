/**
 * The ACL manager's network client (SPEC §4) on a fake clock: when a resync
 * ends (settle), when GETGROUPS is asked again (refused, unanswered), when a
 * silent plugin is taken as lost. The plugin is a real peer on loopback
 * sockets; what it does arrives as real events (waited for, never slept
 * on), and time moves only when the test says.
 */
import { expect } from 'chai';
import { pino } from 'pino';
import * as zmq from 'zeromq';
import { NetworkClient, NetworkClientOptions } from '../../../src/aclmgr/network-client.js';
import { waitFor } from '../../../src/common/poll.js';
import type { GroupUpdate } from '../../../src/common/wire/network-api.js';
import { FakeClock } from '../../support/fake-clock.js';
import { PluginNetworkPeer } from '../../support/plugin-network-peer.js';
import { PublishPeer } from '../../support/peers.js';
import { freePorts } from '../../support/ports.js';

/** A real event (a message over loopback): polled every millisecond, given up after 5 s. */
const until = (what: string, check: () => boolean) => waitFor(what, check, 5000, 1);

describe('NetworkClient timing (fake clock, real sockets)', () => {
  let clock: FakeClock;
  let rep: string;
  let pub: string;
  let updates: string[];
  let resynced: string[][];
  const closers: Array<{ close(): void }> = [];
  let client: NetworkClient | undefined;

  beforeEach(async () => {
    clock = new FakeClock();
    const [a, b] = await freePorts(2);
    rep = `tcp://127.0.0.1:${a}`;
    pub = `tcp://127.0.0.1:${b}`;
    updates = [];
    resynced = [];
  });

  afterEach(() => {
    client?.stop();
    client = undefined;
    for (const c of closers.splice(0)) c.close();
  });

  /** plugin network with `groups` (g1, g2 … by default), publishing no heartbeat of its own. */
  async function plugin(groups: string[] = ['g1', 'g2']): Promise<PluginNetworkPeer> {
    const p = new PluginNetworkPeer(rep, pub, 0);
    closers.push(p);
    for (const [i, g] of groups.entries()) p.setGroupQuietly(g, { [`ep${i}`]: [`10.0.0.${i + 1}`] });
    return p.start();
  }

  function start(opts: Partial<NetworkClientOptions> = {}): NetworkClient {
    client = new NetworkClient({
      log: pino({ level: 'silent' }),
      requestAddress: rep,
      publishAddress: pub,
      timeoutMs: 1000,
      keepaliveMs: 0,
      pluginTimeoutMs: 60_000,
      settleMs: 200,
      onGroupUpdate: (u: GroupUpdate) => void updates.push(u.group),
      onResynced: (seen) => void resynced.push([...seen].sort()),
      clock,
      ...opts,
    });
    return client;
  }

  /** GETGROUPS number `n` has been answered and the client has taken in the reply. */
  const answered = (c: NetworkClient, n: number) =>
    until(
      `GETGROUPS reply ${n} taken in`,
      () => [...c.stats.requests.received.values()].reduce((sum, e) => sum + (e.type === 'HEARTBEAT' ? 0 : e.count), 0) >= n,
    );

  describe('settle: the end of the full state is a quiet period after the GETGROUPS reply', () => {
    it('completes settleMs after the reply and the last GROUPUPDATE, not a moment before', async () => {
      await plugin(['g1', 'g2']);
      const c = start();
      await answered(c, 1);
      await until('both groups', () => updates.length === 2);
      clock.advance(199);
      expect(c.resyncs, 'at 199 ms').to.equal(0);
      clock.advance(1);
      expect(c.resyncs, 'at 200 ms').to.equal(1);
      expect(resynced).to.deep.equal([['g1', 'g2']]);
    });

    it('a GROUPUPDATE during the quiet period starts it again', async () => {
      const p = await plugin(['g1']);
      const c = start();
      await answered(c, 1);
      await until('g1', () => updates.length === 1);
      clock.advance(150);
      await p.setGroup('g3', { ep3: ['10.0.0.3'] });
      await until('g3', () => updates.includes('g3'));
      clock.advance(199);
      expect(c.resyncs, '199 ms after g3').to.equal(0);
      clock.advance(1);
      expect(resynced).to.deep.equal([['g1', 'g3']]);
    });

    it('a steady trickle of updates cannot hold it open for more than ten quiet periods', async () => {
      const p = await plugin(['g1']);
      const c = start();
      await answered(c, 1);
      await until('g1', () => updates.length === 1);
      // A new group every 150 ms: never 200 ms of quiet.
      for (let i = 0; i < 13; i++) {
        clock.advance(150);
        await p.setGroup(`t${i}`, { [`t${i}`]: [`10.1.0.${i + 1}`] });
        await until(`t${i}`, () => updates.includes(`t${i}`));
      }
      // 1950 ms since the reply: the deadline (10 × 200 ms) is 50 ms away.
      clock.advance(49);
      expect(c.resyncs).to.equal(0);
      clock.advance(1);
      expect(c.resyncs).to.equal(1);
      expect(resynced[0]).to.have.length(14);
    });
  });

  it('asks GETGROUPS again keepaliveMs after a refused answer, and again, until one succeeds', async () => {
    const p = await plugin(['g1']);
    p.badReplies.push('not json', JSON.stringify({ type: 'GETGROUPS', rc: 'FAILURE', message: 'busy' }));
    const c = start({ keepaliveMs: 300 });
    for (const [n, kind] of [
      [1, 'ERROR/INVALID'],
      [2, 'GETGROUPS/FAILURE'],
    ] as const) {
      await answered(c, n);
      expect([...c.stats.requests.received.values()].map((e) => `${e.type}/${e.rc}`)).to.include(kind);
      clock.advance(299);
      expect(c.resyncsStarted, `no new ask 299 ms after refusal ${n}`).to.equal(n);
      clock.advance(1);
      expect(c.resyncsStarted, `a new ask 300 ms after refusal ${n}`).to.equal(n + 1);
    }
    await answered(c, 3);
    await until('g1', () => updates.length === 1);
    clock.advance(200);
    expect(resynced).to.deep.equal([['g1']]);
    expect(p.requests.messages.filter((m) => m['type'] === 'GETGROUPS')).to.have.length(3);
  });

  it('a GETGROUPS unanswered for timeoutMs: a new REQ socket and a new resync', async () => {
    // A plugin that takes requests and never answers them.
    const silent = new zmq.Router({ linger: 0 });
    closers.push(silent);
    await silent.bind(rep);
    const asked: string[] = [];
    void (async () => {
      try {
        for await (const [, , body] of silent) asked.push(String((JSON.parse(body!.toString()) as { type: unknown }).type));
      } catch {
        /* closed */
      }
    })();
    const publisher = await new PublishPeer().bind(pub);
    closers.push(publisher);
    const c = start({ timeoutMs: 1000 });
    await until('the first GETGROUPS', () => asked.length === 1);
    clock.advance(999);
    expect(c.resyncsStarted).to.equal(1);
    clock.advance(1);
    expect(c.stats.requests.resets).to.equal(1);
    expect(c.resyncsStarted).to.equal(2);
    await until('GETGROUPS on the new socket', () => asked.length === 2);
    expect(asked).to.deep.equal(['GETGROUPS', 'GETGROUPS']);
    expect(c.resyncs).to.equal(0);
  });

  it('takes a plugin silent for longer than pluginTimeoutMs as lost (checked every quarter of it); any publication keeps it', async () => {
    const p = await plugin(['g1']);
    const c = start({ pluginTimeoutMs: 1000 });
    await answered(c, 1);
    await until('g1', () => updates.length === 1);
    clock.advance(200);
    expect(resynced).to.have.length(1);
    // Heard from every 900 ms: never lost.
    for (let i = 1; i <= 4; i++) {
      clock.advance(900);
      const before = c.stats.publications.total;
      await p.send('networkheartbeat', { type: 'HEARTBEAT' });
      await until(`heartbeat ${i}`, () => c.stats.publications.total > before);
    }
    expect(c.resyncsStarted).to.equal(1);
    // Now silence. Last heard at 3800 ms; checks every 250 ms see 950 ms at 4750, 1200 ms at 5000.
    clock.advance(950);
    expect(c.resyncsStarted, 'silent 950 ms').to.equal(1);
    clock.advance(250);
    expect(c.resyncsStarted, 'silent 1200 ms').to.equal(2);
    expect(c.stats.publications.resets).to.equal(1);
    // The groups it had stay until the new resync has completed; it then asks again.
    expect(resynced).to.have.length(1);
    await until('the second GETGROUPS', () => p.requests.messages.filter((m) => m['type'] === 'GETGROUPS').length === 2);
    await answered(c, 2);
    await until('g1 again', () => updates.length === 2);
    clock.advance(200);
    expect(resynced).to.deep.equal([['g1'], ['g1']]);
  });
});
