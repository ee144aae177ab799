/**
 * Felix's agent (SPEC §3, §5) on a fake clock: when it asks GETACLSTATE
 * (100 ms after subscribing, then twice as late from each reply, up to the
 * connection timeout; never when the ACLs come first), when its watchdogs
 * take a socket as dead, when a resync is retried, restarted or repeated.
 * The peers are real sockets (ipc, in a temporary directory); what they do
 * arrives as real events (waited for, never slept on), and time moves only
 * when the test says.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { waitFor } from '../../../src/common/poll.js';
import type { Acls } from '../../../src/common/wire/acl-api.js';
import { FelixAgent } from '../../../src/felix/agent.js';
import { FelixConfig, loadFelixConfig } from '../../../src/felix/config.js';
import type { DataplaneSink, EndpointSpec } from '../../../src/felix/endpoints.js';
import { FakeClock } from '../../support/fake-clock.js';
import { FakeAclManager, FakePlugin, createMsg, ipc, writeFelixConfig } from '../../support/felix-peers.js';
import { ReplyPeer } from '../../support/peers.js';

type Json = Record<string, unknown>;
const noRules = { inbound: [], outbound: [], inbound_default: 'deny', outbound_default: 'deny' };
const allowAll: Json = { v4: { ...noRules, inbound: [{ group: null, cidr: '0.0.0.0/0', protocol: null, port: null }] }, v6: noRules };

/** A real event (a message over a local socket): polled every millisecond, given up after 5 s. */
const until = (what: string, check: () => boolean) => waitFor(what, check, 5000, 1);

class RecordingDataplane implements DataplaneSink {
  readonly acls = new Map<string, Acls>();
  readonly endpoints = new Set<string>();
  onApplying: ((applying: boolean) => void) | undefined;
  addressProblem(): Promise<string | null> {
    return Promise.resolve(null);
  }
  upsertEndpoint(ep: EndpointSpec): void {
    this.endpoints.add(ep.id);
  }
  setAcls(id: string, acls: Acls): void {
    this.acls.set(id, acls);
  }
  removeEndpoint(id: string): void {
    this.endpoints.delete(id);
  }
  cleanupStale(): void {}
}

/** The connection timeout in every test: GETACLSTATE waits stop doubling here, and silence longer than this is a dead peer. */
const TIMEOUT = 2000;

describe('FelixAgent timing (fake clock, real sockets)', () => {
  let dir: string;
  let clock: FakeClock;
  let dataplane: RecordingDataplane;
  let agent: FelixAgent | undefined;
  const closers: Array<{ close(): void }> = [];

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'felix-agent-'));
    clock = new FakeClock();
    dataplane = new RecordingDataplane();
  });

  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
    for (const c of closers.splice(0)) c.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /**
   * felix.cfg for the peers in `dir`: the connection timeout TIMEOUT, and a keepalive of a minute, so the
   * REQ sockets send no HEARTBEAT of their own (its reply could not arrive while the test moves time)
   * and the watchdog looks every second.
   */
  function config(over: { ResyncIntervalSecs?: number } = {}): FelixConfig {
    const { config: c } = loadFelixConfig(writeFelixConfig(dir));
    return {
      ...c,
      global: { ...c.global, ResyncIntervalSecs: over.ResyncIntervalSecs ?? 3600 },
      connection: { ...c.connection, ConnectionTimeoutMillis: TIMEOUT, ConnectionKeepaliveIntervalMillis: 60_000 },
    };
  }

  /** The plugin (no heartbeats of its own), the ACL manager, and a started agent with one resync completed. */
  async function start(
    opts: { publishOnSubscribe?: boolean; ResyncIntervalSecs?: number } = {},
  ): Promise<{ plugin: FakePlugin; aclmgr: FakeAclManager; agent: FelixAgent }> {
    // Connected before Felix binds: it retries every 2 ms, not libzmq's 100.
    const plugin = new FakePlugin(ipc(dir, 'plugin.sock'), ipc(dir, 'felix.sock'), { heartbeatMs: 0, client: { reconnectInterval: 2 } });
    closers.push(plugin);
    await plugin.listen();
    const aclmgr = new FakeAclManager({}, opts.publishOnSubscribe ?? false);
    closers.push(aclmgr);
    await aclmgr.bind(ipc(dir, 'acl.sock'), ipc(dir, 'aclpub.sock'));
    agent = await FelixAgent.start({ config: config(opts), log: pino({ level: 'silent' }), dataplane, clock });
    const a = agent;
    await until('the first resync', () => a.manager.resyncsCompleted === 1);
    return { plugin, aclmgr, agent: a };
  }

  const stats = (a: FelixAgent, name: string) => a.connections().find((c) => c.name === name)!.stats;

  /**
   * What live peers do between two moves of the clock: the plugin sends Felix a HEARTBEAT (answered:
   * taken in) and the ACL manager publishes one (counted: taken in). Without them every watchdog fires.
   */
  async function alive(plugin: FakePlugin, aclmgr: FakeAclManager, a: FelixAgent): Promise<void> {
    await plugin.send({ type: 'HEARTBEAT' });
    const before = stats(a, 'aclmgr-updates').total;
    // The subscription may still be on its way (ZeroMQ's slow joiner): publish until one is taken in.
    await waitFor(
      'an aclheartbeat taken in',
      async () => (await aclmgr.pub.publish('aclheartbeat', { type: 'HEARTBEAT' }), stats(a, 'aclmgr-updates').total > before),
      5000,
      2,
    );
  }

  describe('GETACLSTATE (SPEC §5 "No lost first ACLs")', () => {
    it('asks 100 ms after subscribing, then 200, 400, 800, 1600 ms after each reply, then every connection timeout; one at a time', async () => {
      const { plugin, aclmgr, agent: a } = await start();
      const ep = { id: 'ep-unknown-01', ip: '10.2.2.1' };
      await plugin.send(createMsg(ep, '02:00:00:00:00:cc'));
      const waits = [100, 200, 400, 800, 1600, TIMEOUT, TIMEOUT];
      for (const [i, wait] of waits.entries()) {
        await alive(plugin, aclmgr, a);
        clock.advance(wait - 1);
        expect(a.aclRequestsOutstanding, `ask ${i + 1} not before ${wait} ms`).to.equal(0);
        clock.advance(1);
        expect(a.aclRequestsOutstanding, `ask ${i + 1} at ${wait} ms`).to.equal(1);
        // Time stands still until the manager has answered: the next wait counts from this reply.
        await until(`reply ${i + 1}`, () => a.aclRequestsOutstanding === 0);
      }
      expect(aclmgr.requestsFor(ep.id)).to.equal(waits.length);
      expect(dataplane.acls.has(ep.id)).to.equal(false);
    });

    it('stops asking once the ACLs arrive (a 2014 manager publishes them after GETACLSTATE)', async () => {
      const { plugin, aclmgr, agent: a } = await start();
      const ep = { id: 'ep-old-0001', ip: '10.2.1.1' };
      aclmgr.acls.set(ep.id, allowAll);
      await plugin.send(createMsg(ep, '02:00:00:00:00:bb'));
      clock.advance(99);
      expect(a.aclRequestsOutstanding).to.equal(0);
      clock.advance(1);
      expect(a.aclRequestsOutstanding).to.equal(1);
      await until('ACLs applied', () => dataplane.acls.has(ep.id));
      await until('the reply', () => a.aclRequestsOutstanding === 0);
      for (let t = 0; t < 10; t++) {
        await alive(plugin, aclmgr, a);
        clock.advance(1000);
        expect(a.aclRequestsOutstanding, `${t + 1} s later`).to.equal(0);
      }
      expect(aclmgr.requestsFor(ep.id)).to.equal(1);
    });

    it('never asks when the ACLs come on the subscription within 100 ms (the v2 manager publishes on subscription)', async () => {
      const { plugin, aclmgr, agent: a } = await start({ publishOnSubscribe: true });
      const eps = Array.from({ length: 20 }, (_, i) => ({ id: `ep-sub-${String(i).padStart(4, '0')}`, ip: `10.2.0.${i + 1}` }));
      for (const ep of eps) aclmgr.acls.set(ep.id, allowAll);
      for (const ep of eps) await plugin.send(createMsg(ep, '02:00:00:00:00:aa'));
      await until('ACLs of every endpoint applied', () => eps.every((ep) => dataplane.acls.has(ep.id)));
      // Checked right after each move of the clock: an ask would still be outstanding.
      for (let t = 0; t < 5; t++) {
        clock.advance(t === 0 ? 100 : 1000);
        expect(a.aclRequestsOutstanding).to.equal(0);
        await alive(plugin, aclmgr, a);
      }
      for (const ep of eps) expect(aclmgr.requestsFor(ep.id), ep.id).to.equal(0);
    });
  });

  describe('watchdogs (every second here, the keepalive interval being longer)', () => {
    it('no endpoint request for longer than the timeout: rebinds the endpoint socket and resyncs; any request keeps it', async () => {
      const { plugin, agent: a } = await start();
      const resets = () => stats(a, 'plugin-requests').resets;
      clock.advance(1500);
      // A HEARTBEAT from the plugin at 1.5 s: silent 1.5 s at the 3 s check, 2.5 s at the 4 s one.
      await plugin.send({ type: 'HEARTBEAT' });
      clock.advance(1500);
      expect(resets(), 'at 3 s').to.equal(0);
      clock.advance(999);
      expect(resets(), 'at 3.999 s').to.equal(0);
      clock.advance(1);
      expect(resets(), 'at 4 s').to.equal(1);
      // Rebound (real time: the socket is closed and bound again), then a new resync.
      await until('a second RESYNCSTATE', () => plugin.rep!.inbox.messages.filter((m) => m['type'] === 'RESYNCSTATE').length === 2);
      await until('the second resync', () => a.manager.resyncsCompleted === 2);
      // The rebound socket serves the plugin.
      expect((await plugin.send({ type: 'ENDPOINTDESTROYED', endpoint_id: 'nobody', issued: Date.now() }))['rc']).to.equal('NOTEXIST');
    });

    it('no ACL publication, not even a heartbeat, for longer than the timeout: resubscribes and asks every endpoint’s ACLs again', async () => {
      const { plugin, aclmgr, agent: a } = await start();
      const ep = { id: 'ep-acl-0001', ip: '10.2.3.1' };
      aclmgr.acls.set(ep.id, allowAll);
      await plugin.send(createMsg(ep, '02:00:00:00:00:dd'));
      clock.advance(100);
      await until('ACLs applied', () => dataplane.acls.has(ep.id));
      await until('the reply', () => a.aclRequestsOutstanding === 0);
      // The ACLUPDATE (at 100 ms) was the ACL manager's last word; the plugin stays alive.
      clock.advance(1000);
      await plugin.send({ type: 'HEARTBEAT' });
      clock.advance(1000);
      expect(stats(a, 'aclmgr-updates').resets, 'silent 1.9 s at the 2 s check').to.equal(0);
      expect(a.aclRequestsOutstanding).to.equal(0);
      await plugin.send({ type: 'HEARTBEAT' });
      clock.advance(1000);
      expect(stats(a, 'aclmgr-updates').resets, 'silent 2.9 s at the 3 s check').to.equal(1);
      expect(a.aclRequestsOutstanding, 'asked again at once').to.equal(1);
      await until('the second GETACLSTATE', () => aclmgr.requestsFor(ep.id) === 2);
    });

    it('an apply pauses ACL reads for at most 1 s, and that pause is not counted as the ACL manager’s silence', async () => {
      const { plugin, agent: a } = await start();
      const resets = () => stats(a, 'aclmgr-updates').resets;
      // Nothing from the ACL manager since the start (t = 0). An apply begins and does not end.
      dataplane.onApplying!(true);
      clock.advance(1000);
      // The pause ended by itself at 1 s: silent 1 s of the 2 s at the 2 s check, 2 s at the 3 s one (not more than the timeout).
      for (const t of [2000, 3000]) {
        await plugin.send({ type: 'HEARTBEAT' });
        clock.advance(1000);
        expect(resets(), `at ${t} ms`).to.equal(0);
      }
      await plugin.send({ type: 'HEARTBEAT' });
      clock.advance(1000);
      expect(resets(), 'at 4000 ms').to.equal(1);
    });

    it('a RESYNCSTATE unanswered for the timeout: a new socket to the plugin and a new resync', async () => {
      // A plugin that takes requests and never answers.
      const asked: Json[] = [];
      const silent = new ReplyPeer(() => new Promise<Json>(() => {}));
      closers.push(silent);
      silent.inbox.push = (m: Json) => void asked.push(m);
      await silent.bind(ipc(dir, 'plugin.sock'));
      const aclmgr = new FakeAclManager();
      closers.push(aclmgr);
      await aclmgr.bind(ipc(dir, 'acl.sock'), ipc(dir, 'aclpub.sock'));
      agent = await FelixAgent.start({ config: config(), log: pino({ level: 'silent' }), dataplane, clock });
      const a = agent;
      await until('the first RESYNCSTATE', () => asked.length === 1);
      clock.advance(TIMEOUT - 1);
      expect(stats(a, 'plugin').resets).to.equal(0);
      expect(a.resyncsStarted).to.equal(1);
      clock.advance(1);
      expect(stats(a, 'plugin').resets).to.equal(1);
      expect(a.resyncsStarted).to.equal(2);
      expect(a.waitingFor()).to.include('first resync with the plugin');
    });

    it('a resync the plugin refuses is asked again after the timeout (at most 5 s)', async () => {
      let refuse = true;
      const plugin = new ReplyPeer((req) =>
        req['type'] !== 'RESYNCSTATE'
          ? { type: req['type'] }
          : refuse
            ? { type: 'RESYNCSTATE', rc: 'FAILURE', message: 'resync in progress' }
            : { type: 'RESYNCSTATE', rc: 'SUCCESS', message: '', endpoint_count: 0 },
      );
      closers.push(plugin);
      await plugin.bind(ipc(dir, 'plugin.sock'));
      const aclmgr = new FakeAclManager();
      closers.push(aclmgr);
      await aclmgr.bind(ipc(dir, 'acl.sock'), ipc(dir, 'aclpub.sock'));
      agent = await FelixAgent.start({ config: config(), log: pino({ level: 'silent' }), dataplane, clock });
      const a = agent;
      await until('the refusal taken in', () => stats(a, 'plugin').total === 1);
      refuse = false;
      clock.advance(TIMEOUT - 1);
      expect(a.resyncsStarted).to.equal(1);
      clock.advance(1);
      expect(a.resyncsStarted).to.equal(2);
      await until('the resync completed', () => a.manager.resyncsCompleted === 1);
    });
  });

  it('resyncs every ResyncIntervalSecs', async () => {
    const { plugin, aclmgr, agent: a } = await start({ ResyncIntervalSecs: 5 });
    for (let s = 1; s < 5; s++) {
      await alive(plugin, aclmgr, a);
      clock.advance(1000);
    }
    await alive(plugin, aclmgr, a);
    clock.advance(999);
    expect(a.resyncsStarted).to.equal(1);
    clock.advance(1);
    expect(a.resyncsStarted).to.equal(2);
    await until('the periodic resync completed', () => a.manager.resyncsCompleted === 2);
  });
});
