/**
 * Runs the built `calico-acl-manager` against independent peers on real
 * ZeroMQ sockets: a plugin network (REP + PUB) and a Felix (REQ + SUB)
 * (SPEC §2, §4, §5, §7).
 */
import { expect } from 'chai';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePorts } from '../support/ports.js';
import { Running, runCommand, startCommand, stop, stopAll, waitFor } from '../support/process.js';
import { RequestPeer, SubscribePeer } from '../support/peers.js';
import { PluginNetworkPeer } from '../support/plugin-network-peer.js';
import * as zmq from 'zeromq';

const ACLMGR = 'src/aclmgr/main.js';
type Json = Record<string, unknown>;

const rule = (cidr: string) => ({ group: null, cidr, protocol: null, port: null });
const noRules = { inbound: [], outbound: [], inbound_default: 'deny', outbound_default: 'deny' };

/** A prototype-shaped endpoint's v4 ACLs: inbound from its group, outbound to its group and anywhere. */
function prototypeAcls(groupAddrs: string[]): Json {
  const own = [...groupAddrs].sort().map((a) => rule(`${a}/32`));
  return { v4: { inbound: own, outbound: [rule('0.0.0.0/0'), ...own], inbound_default: 'deny', outbound_default: 'deny' }, v6: noRules };
}

/** ACLs with every rule list sorted, so a comparison does not depend on the manager's (deterministic) order. */
function sorted(acls: unknown): unknown {
  const a = acls as Record<string, Record<string, unknown>>;
  const fam = (r: Record<string, unknown>) => ({
    ...r,
    inbound: [...(r['inbound'] as Json[])].sort(byJson),
    outbound: [...(r['outbound'] as Json[])].sort(byJson),
  });
  return { v4: fam(a['v4']!), v6: fam(a['v6']!) };
}
const byJson = (x: Json, y: Json) => JSON.stringify(x).localeCompare(JSON.stringify(y));

describe('calico-acl-manager (built command, real sockets)', function () {
  this.timeout(30000);
  let dir: string;
  let ports: { groups: number; pub: number; aclReq: number; aclPub: number; metrics: number };
  let plugin: PluginNetworkPeer;
  let manager: Running;
  let closers: Array<{ close(): void }>;

  const track = <T extends { close(): void }>(x: T): T => {
    closers.push(x);
    return x;
  };

  function writeConfig(extra: { connection?: string } = {}): string {
    const file = path.join(dir, 'acl_manager.cfg');
    fs.writeFileSync(
      file,
      `[global]
PluginAddress = 127.0.0.1
LocalAddress = 127.0.0.1
PluginGroupsPort = ${ports.groups}
PluginPublishPort = ${ports.pub}
AclRequestPort = ${ports.aclReq}
AclPublishPort = ${ports.aclPub}
AclHeartbeatIntervalMillis = 200

[log]
LogFilePath = None
LogSeverityScreen = INFO

[connection]
${extra.connection ?? 'ConnectionTimeoutMillis = 1000\nConnectionKeepaliveIntervalMillis = 300\nPluginTimeoutMillis = 1000\nResyncSettleMillis = 200'}

[metrics]
MetricsPort = ${ports.metrics}
`,
    );
    return file;
  }

  function newPlugin(heartbeatMs = 100): PluginNetworkPeer {
    return track(new PluginNetworkPeer(`tcp://127.0.0.1:${ports.groups}`, `tcp://127.0.0.1:${ports.pub}`, heartbeatMs));
  }

  /** One sample of the manager's /metrics, e.g. `calico_aclmgr_resyncs_completed_total`; NaN until it answers. */
  async function metric(sample: string): Promise<number> {
    try {
      const text = await (await fetch(`http://127.0.0.1:${ports.metrics}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
      return line === undefined ? NaN : Number(line.slice(sample.length + 1));
    } catch {
      return NaN;
    }
  }

  const resyncCount = () => metric('calico_aclmgr_resyncs_completed_total');
  const resyncsStarted = () => metric('calico_aclmgr_resyncs_started_total');
  /** Timeouts short enough for a test to see the manager give up on a plugin and come back, in well under a second. */
  const QUICK = 'ConnectionTimeoutMillis = 400\nConnectionKeepaliveIntervalMillis = 50\nPluginTimeoutMillis = 400\nResyncSettleMillis = 100';

  async function startManager(config = writeConfig()): Promise<void> {
    manager = startCommand(ACLMGR, ['--config-file', config]);
    await waitFor('first resync', async () => (await resyncCount()) >= 1, 10000);
  }

  /**
   * A Felix: SUB to `topics` (plus aclheartbeat, awaited so the subscription is live) and a REQ.
   * The ACLUPDATEs the manager publishes on the subscriptions themselves (SPEC §5 "No lost first
   * ACLs") arrive before that heartbeat (one pipe, in order) and are dropped unless `keepInitial`.
   */
  async function felix(topics: string[], keepInitial = false): Promise<{ sub: SubscribePeer; req: RequestPeer }> {
    const sub = track(new SubscribePeer(`tcp://127.0.0.1:${ports.aclPub}`, [...topics, 'aclheartbeat']));
    await sub.inbox.take((m) => m['topic'] === 'aclheartbeat', 'aclheartbeat', 5000);
    if (!keepInitial) for (let i; (i = sub.inbox.messages.findIndex((m) => m['type'] === 'ACLUPDATE')) >= 0;) sub.inbox.messages.splice(i, 1);
    const req = track(new RequestPeer(`tcp://127.0.0.1:${ports.aclReq}`));
    return { sub, req };
  }

  /**
   * Resolves once `sub` (subscribed to aclheartbeat among its topics) has received an aclheartbeat that
   * the manager published after it had taken in `total` subscriptions in all: whatever those made it
   * publish reached `sub` before it (one publisher, one connection, in order).
   */
  async function afterSubscriptions(sub: SubscribePeer, total: number): Promise<void> {
    await waitFor('the subscriptions taken in', async () => (await metric('calico_aclmgr_subscriptions_total')) >= total, 5000);
    const beats = () => sub.inbox.messages.filter((m) => m['topic'] === 'aclheartbeat').length;
    // The next heartbeat may have been on its way already; the one after it was published later.
    const seen = beats();
    await waitFor('two more aclheartbeats', () => beats() >= seen + 2, 5000, 10);
  }

  const update = (sub: SubscribePeer, ep: string, what = `ACLUPDATE for ${ep}`) =>
    sub.inbox.take((m) => m['topic'] === ep && m['type'] === 'ACLUPDATE', what, 8000);

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aclmgr-test-'));
    closers = [];
    const [a, b, c, d, e] = await freePorts(5);
    ports = { groups: a, pub: b, aclReq: c, aclPub: d, metrics: e };
  });

  afterEach(async () => {
    await stopAll();
    for (const c of closers) c.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  describe('with groups g1 {ep1, ep2} and g2 {ep3}', () => {
    beforeEach(async () => {
      plugin = newPlugin();
      plugin.setGroupQuietly('g1', { ep1: ['192.168.1.1'], ep2: ['192.168.1.2'] });
      plugin.setGroupQuietly('g2', { ep3: ['192.168.1.3'] });
      await plugin.start();
      await startManager();
    });

    it('subscribes, then asks GETGROUPS; answers GETACLSTATE and publishes the complete ACLs', async () => {
      expect(await plugin.requests.take((m) => m['type'] === 'GETGROUPS', 'GETGROUPS'))
        .to.have.property('issued')
        .that.is.a('number');
      const first = plugin.events.indexOf('request:GETGROUPS');
      expect(plugin.events.indexOf('subscribe:groups')).to.be.within(0, first - 1);
      expect(plugin.events.indexOf('subscribe:networkheartbeat')).to.be.within(0, first - 1);
      const { sub, req } = await felix(['ep1', 'ep3']);
      expect(await req.request({ type: 'GETACLSTATE', endpoint_id: 'ep1', issued: Date.now() })).to.deep.equal({
        type: 'GETACLSTATE',
        endpoint_id: 'ep1',
        rc: 'SUCCESS',
        message: '',
      });
      const m = await update(sub, 'ep1');
      expect(Object.keys(m).sort()).to.deep.equal(['acls', 'issued', 'topic', 'type']);
      expect(m['issued']).to.be.a('number');
      expect(sorted(m['acls'])).to.deep.equal(sorted(prototypeAcls(['192.168.1.1', '192.168.1.2'])));
      // Issued seconds-with-fraction as a string is accepted too.
      await req.request({ type: 'GETACLSTATE', endpoint_id: 'ep3', issued: String(Date.now() / 1000) });
      expect(sorted((await update(sub, 'ep3'))['acls'])).to.deep.equal(sorted(prototypeAcls(['192.168.1.3'])));
    });

    it('publishes on exactly the endpoint id as topic', async () => {
      // Subscribed by prefix to "ep1": ZeroMQ also delivers "ep10", which must carry its own exact topic.
      const { sub, req } = await felix(['ep1']);
      await plugin.setGroup('g3', { ep10: ['192.168.1.10'] });
      const m = await sub.inbox.take((x) => x['type'] === 'ACLUPDATE', 'ACLUPDATE');
      expect(m['topic']).to.equal('ep10');
      expect(sorted(m['acls'])).to.deep.equal(sorted(prototypeAcls(['192.168.1.10'])));
      await req.request({ type: 'GETACLSTATE', endpoint_id: 'ep1' });
      expect((await sub.inbox.take((x) => x['type'] === 'ACLUPDATE', 'ACLUPDATE'))['topic']).to.equal('ep1');
    });

    it('answers HEARTBEAT and publishes aclheartbeat', async () => {
      const { sub, req } = await felix([]);
      expect(await req.request({ type: 'HEARTBEAT' })).to.deep.equal({ type: 'HEARTBEAT' });
      expect(await sub.inbox.take((m) => m['topic'] === 'aclheartbeat', 'aclheartbeat')).to.deep.equal({ topic: 'aclheartbeat', type: 'HEARTBEAT' });
    });

    it('on a membership change publishes only the endpoints it affects', async () => {
      const { sub } = await felix(['ep']);
      await plugin.setGroup('g1', { ep1: ['192.168.1.1'], ep2: ['192.168.1.2'], ep4: ['192.168.1.4'] });
      const g1 = ['192.168.1.1', '192.168.1.2', '192.168.1.4'];
      for (const ep of ['ep1', 'ep2', 'ep4']) expect(sorted((await update(sub, ep))['acls'])).to.deep.equal(sorted(prototypeAcls(g1)));
      // A later change to g2 marks the end: publications are ordered, so nothing for ep3 came from the first change.
      await plugin.setGroup('g2', { ep3: ['192.168.1.3'], ep5: ['192.168.1.5'] });
      await update(sub, 'ep5');
      const updates = sub.inbox.messages.filter((m) => m['type'] === 'ACLUPDATE').map((m) => m['topic']);
      expect(updates).to.deep.equal(['ep3']);
      // The same group again changes nothing: no ACLUPDATE before the next marker.
      await plugin.setGroup('g2', { ep5: ['192.168.1.5'], ep3: ['192.168.1.3'] });
      await plugin.setGroup('g9', { ep9: ['192.168.1.9'] });
      await update(sub, 'ep9');
      expect(sub.inbox.messages.filter((m) => m['type'] === 'ACLUPDATE').map((m) => m['topic'])).to.deep.equal(['ep3']);
    });

    it("applies a group's valid members and skips only its bad ones (the 2014 plugin put any string in members)", async () => {
      const { sub } = await felix(['web:1', 'ep2', 'bad id', 'ep3']);
      const members = { 'web:1': ['192.168.1.11'], ep2: ['192.168.1.2'], 'bad id': ['192.168.1.7'], ep3: ['not-an-address'] };
      await plugin.setGroup('g1', members);
      const g1 = ['192.168.1.11', '192.168.1.2'];
      for (const ep of ['web:1', 'ep2']) expect(sorted((await update(sub, ep))['acls'])).to.deep.equal(sorted(prototypeAcls(g1)));
      expect(sub.inbox.messages.filter((m) => m['topic'] === 'bad id' || m['topic'] === 'ep3')).to.deep.equal([]);
      await waitFor('both skips logged with the group', () => manager.output().split('group member skipped').length - 1 >= 2, 5000);
      expect(manager.output()).to.match(/group member skipped.*g1|g1.*group member skipped/);
    });

    it('under churn publishes each endpoint’s latest ACLs, not every intermediate state, to a subscriber that reads slowly (issue #13)', async () => {
      // A Felix busy elsewhere: it reads one heartbeat, then nothing until the churn is over.
      const slow = track(new zmq.Subscriber({ linger: 0, receiveHighWaterMark: 10 }));
      slow.connect(`tcp://127.0.0.1:${ports.aclPub}`);
      slow.subscribe('');
      for (;;) if ((await slow.receive())[0]!.toString() === 'aclheartbeat') break;
      const member = (i: number): [string, string[]] => [`big${i}`, [`192.168.${10 + Math.floor(i / 250)}.${(i % 250) + 1}`]];
      const STEPS = 100;
      const BASE = 200;
      let intermediate = 0;
      for (let step = 1; step <= STEPS; step++) {
        const size = BASE + step;
        intermediate += size;
        await plugin.setGroup('big', Object.fromEntries(Array.from({ length: size }, (_, i) => member(i))));
        // Spread out, so the manager publishes between changes and meets the slow reader's full buffers.
        await new Promise((r) => setTimeout(r, 5));
      }
      await waitFor('every churn step taken in', () => manager.output().split('"group":"big"').length - 1 >= STEPS, 20000);
      // Now read it all: the last ACLUPDATE of every member must carry the final group.
      const final = BASE + STEPS;
      const latest = new Map<string, number>();
      let received = 0;
      const done = () => latest.size === final && [...latest.values()].every((n) => n === final);
      const deadline = Date.now() + 15000;
      while (!done() && Date.now() < deadline) {
        const [topic, body] = await slow.receive();
        const msg = JSON.parse(body!.toString()) as { type: string; acls?: { v4: { inbound: unknown[] } } };
        if (msg.type !== 'ACLUPDATE') continue;
        received++;
        latest.set(topic!.toString(), msg.acls!.v4.inbound.length);
      }
      expect(done(), `members with the final ACLs: ${[...latest.values()].filter((n) => n === final).length} of ${final}`).to.equal(true);
      // Every intermediate state would be `intermediate` (about 25 000) publications; what the socket buffers
      // before refusing (about 1000 queued plus the TCP buffers) goes out as it was, the rest collapses to one per endpoint.
      console.log(
        `      (${STEPS} changes of a group of ${BASE}–${final}: ${received} ACLUPDATEs received; every intermediate state would be ${intermediate})`,
      );
      expect(received).to.be.below(intermediate / 5);
    });

    it('on group deletion publishes deny-all once and then forgets the endpoint', async () => {
      const { sub, req } = await felix(['ep1', 'ep3']);
      await plugin.setGroup('g2', {});
      expect((await update(sub, 'ep3'))['acls']).to.deep.equal({ v4: noRules, v6: noRules });
      expect(await req.request({ type: 'GETACLSTATE', endpoint_id: 'ep3' })).to.include({ rc: 'SUCCESS', endpoint_id: 'ep3' });
      await req.request({ type: 'GETACLSTATE', endpoint_id: 'ep1' });
      await update(sub, 'ep1');
      expect(sub.inbox.messages.filter((m) => m['type'] === 'ACLUPDATE')).to.deep.equal([]);
    });

    it('answers GETACLSTATE for an unknown endpoint with SUCCESS and publishes once it becomes known', async () => {
      const { sub, req } = await felix(['ep7']);
      expect(await req.request({ type: 'GETACLSTATE', endpoint_id: 'ep7' })).to.deep.equal({
        type: 'GETACLSTATE',
        endpoint_id: 'ep7',
        rc: 'SUCCESS',
        message: '',
      });
      await plugin.setGroup('g1', { ep1: ['192.168.1.1'], ep2: ['192.168.1.2'], ep7: ['192.168.1.7', 'fd00::7'] });
      const acls = (await update(sub, 'ep7'))['acls'] as Record<string, Record<string, unknown>>;
      expect(acls['v6']!['inbound']).to.deep.equal([rule('fd00::7/128')]);
      expect(acls['v6']!['outbound']).to.deep.equal([rule('fd00::7/128')]);
    });

    it('answers every malformed request with an error rc and keeps serving', async () => {
      const { sub, req } = await felix(['ep1']);
      const cases: Array<[string, Array<string | Buffer>, Json]> = [
        ['not JSON', ['{nope'], { type: 'ERROR', rc: 'INVALID' }],
        ['not an object', ['[1,2]'], { type: 'ERROR', rc: 'INVALID' }],
        ['no type', [JSON.stringify({ endpoint_id: 'ep1' })], { type: 'ERROR', rc: 'INVALID' }],
        ['unknown type', [JSON.stringify({ type: 'GETEVERYTHING' })], { type: 'GETEVERYTHING', rc: 'FAILURE' }],
        ['missing endpoint_id', [JSON.stringify({ type: 'GETACLSTATE' })], { type: 'GETACLSTATE', rc: 'INVALID' }],
        ['endpoint_id not a string', [JSON.stringify({ type: 'GETACLSTATE', endpoint_id: 42 })], { type: 'GETACLSTATE', rc: 'INVALID' }],
        ['endpoint_id with bad characters', [JSON.stringify({ type: 'GETACLSTATE', endpoint_id: '../x y' })], { type: 'GETACLSTATE', rc: 'INVALID' }],
        ['extra frames', [JSON.stringify({ type: 'GETACLSTATE', endpoint_id: 'ep1' }), 'more'], { type: 'ERROR', rc: 'INVALID' }],
        ['empty body', [''], { type: 'ERROR', rc: 'INVALID' }],
      ];
      for (const [name, frames, expected] of cases) {
        const reply = await req.raw(...frames);
        expect(reply, name).to.include(expected);
        expect(reply['message'], name).to.be.a('string').and.not.equal('');
      }
      expect(sub.inbox.messages.filter((m) => m['type'] === 'ACLUPDATE')).to.deep.equal([]);
      await req.request({ type: 'GETACLSTATE', endpoint_id: 'ep1' });
      expect(sorted((await update(sub, 'ep1'))['acls'])).to.deep.equal(sorted(prototypeAcls(['192.168.1.1', '192.168.1.2'])));
      expect(manager.child.exitCode).to.equal(null);
    });

    it('ignores malformed publications from the plugin and keeps its state', async () => {
      const { sub, req } = await felix(['ep']);
      await plugin.raw('groups', '{nope');
      await plugin.raw('groups', '"just a string"');
      await plugin.raw('groups', JSON.stringify({ group: 'g1' }));
      await plugin.raw('groups', JSON.stringify({ type: 'GROUPCHANGED', group: 'g1' }));
      await plugin.send('groups', { type: 'GROUPUPDATE', group: 'g1', members: ['ep1'], rules: {} });
      await plugin.send('groups', { type: 'GROUPUPDATE', group: 'g1', members: { ep1: ['not-an-ip'] }, rules: {} });
      await plugin.send('groups', { type: 'GROUPUPDATE', group: 'g1', members: {}, rules: { inbound: 'all' } });
      await plugin.send('groups', { type: 'GROUPUPDATE', group: 7, members: {}, rules: {} });
      await plugin.send('networkheartbeat', { type: 'GROUPUPDATE', group: 'g1', members: {}, rules: {} });
      await plugin.raw('groups', JSON.stringify({ type: 'GROUPUPDATE', group: 'g1', members: {}, rules: {} }), 'extra');
      // A valid update after all that is applied; g1 was never emptied.
      await plugin.setGroup('g8', { ep8: ['192.168.1.8'] });
      await update(sub, 'ep8');
      expect(sub.inbox.messages.filter((m) => m['type'] === 'ACLUPDATE').map((m) => m['topic'])).to.deep.equal([]);
      await req.request({ type: 'GETACLSTATE', endpoint_id: 'ep1' });
      expect(sorted((await update(sub, 'ep1'))['acls'])).to.deep.equal(sorted(prototypeAcls(['192.168.1.1', '192.168.1.2'])));
      expect(manager.output()).to.include('bad publication from the plugin ignored');
    });

    it('resynchronises by itself when the plugin restarts, serving the last ACLs meanwhile', async () => {
      // Short timeouts, so it gives up on the plugin soon.
      await stop(manager);
      await startManager(writeConfig({ connection: QUICK }));
      const { sub, req } = await felix(['ep']);
      plugin.close();
      // Away until the manager has given up on it (a new resync started; when, exactly, is the unit
      // tests' business): it keeps serving what it had meanwhile.
      await waitFor('a resync after the plugin went', async () => (await resyncsStarted()) >= 2, 10000);
      await req.request({ type: 'GETACLSTATE', endpoint_id: 'ep1' });
      expect(sorted((await update(sub, 'ep1'))['acls'])).to.deep.equal(sorted(prototypeAcls(['192.168.1.1', '192.168.1.2'])));
      // The plugin returns with g1 changed and g2 gone; nobody tells the manager.
      plugin = newPlugin();
      plugin.setGroupQuietly('g1', { ep1: ['192.168.1.1'], ep6: ['192.168.1.6'] });
      await plugin.start();
      await plugin.requests.take((m) => m['type'] === 'GETGROUPS', 'GETGROUPS from the manager', 10000);
      expect(sorted((await update(sub, 'ep1'))['acls'])).to.deep.equal(sorted(prototypeAcls(['192.168.1.1', '192.168.1.6'])));
      expect(sorted((await update(sub, 'ep6'))['acls'])).to.deep.equal(sorted(prototypeAcls(['192.168.1.1', '192.168.1.6'])));
      expect((await update(sub, 'ep2'))['acls']).to.deep.equal({ v4: noRules, v6: noRules });
      // g2 was not re-announced: dropped once the resync settled.
      expect((await update(sub, 'ep3'))['acls']).to.deep.equal({ v4: noRules, v6: noRules });
      expect(manager.child.exitCode).to.equal(null);
    });

    it('resynchronises when the plugin restarts quickly (its PUB socket reconnects)', async () => {
      const { sub } = await felix(['ep']);
      plugin.close();
      plugin = newPlugin();
      plugin.setGroupQuietly('g2', { ep3: ['192.168.1.3'], ep5: ['192.168.1.5'] });
      await plugin.start();
      await plugin.requests.take((m) => m['type'] === 'GETGROUPS', 'GETGROUPS from the manager', 10000);
      expect(sorted((await update(sub, 'ep5'))['acls'])).to.deep.equal(sorted(prototypeAcls(['192.168.1.3', '192.168.1.5'])));
      expect((await update(sub, 'ep1'))['acls']).to.deep.equal({ v4: noRules, v6: noRules });
    });
  });

  describe('no lost first ACLs: publishes on subscription (XPUB, SPEC §5 v2)', () => {
    const N = 500;
    const ep = (i: number) => `xp${i}`;
    beforeEach(async () => {
      plugin = newPlugin();
      for (let i = 0; i < N; i++) plugin.setGroupQuietly(`g${i}`, { [ep(i)]: [`10.1.${Math.floor(i / 250)}.${(i % 250) + 1}`] });
      await plugin.start();
      await startManager();
      // Every group known: the last one's ACLs answer GETACLSTATE with a publication.
      const probe = await felix([ep(N - 1)]);
      await probe.req.request({ type: 'GETACLSTATE', endpoint_id: ep(N - 1) });
      await update(probe.sub, ep(N - 1));
    });

    it('a new subscriber that never asks GETACLSTATE gets the endpoint’s ACLs', async () => {
      const sub = track(new SubscribePeer(`tcp://127.0.0.1:${ports.aclPub}`, [ep(7)]));
      // Nothing else would publish ep(7) (no group changes, no GETACLSTATE): the subscription alone must.
      const m = await sub.inbox.take((x) => x['topic'] === ep(7) && x['type'] === 'ACLUPDATE', 'ACLUPDATE on subscription', 5000);
      expect(sorted(m['acls'])).to.deep.equal(sorted(prototypeAcls(['10.1.0.8'])));
    });

    it('a burst of 500 subscriptions each gets its ACLs (none lost); 3 duplicate subscriptions cost at most one publication each', async () => {
      const started = Date.now();
      const sub = track(
        new SubscribePeer(
          `tcp://127.0.0.1:${ports.aclPub}`,
          Array.from({ length: N }, (_, i) => ep(i)),
        ),
      );
      const seen = new Set<string>();
      await waitFor(
        'all 500 ACLUPDATEs',
        () => {
          for (const m of sub.inbox.messages) if (m['type'] === 'ACLUPDATE') seen.add(m['topic'] as string);
          return seen.size === N;
        },
        10000,
      );
      const burstMs = Date.now() - started;
      console.log(`      (500 subscriptions → 500 ACLUPDATEs in ${burstMs} ms)`);
      // One socket subscribing three times to one topic: XPUB verbose reports all three; latest wins.
      const subscriptions = await metric('calico_aclmgr_subscriptions_total');
      const dup = track(new SubscribePeer(`tcp://127.0.0.1:${ports.aclPub}`, [ep(3), ep(3), ep(3), 'aclheartbeat']));
      await dup.inbox.take((x) => x['topic'] === ep(3), 'ACLUPDATE for the duplicated topic', 1000);
      await afterSubscriptions(dup, subscriptions + 4);
      // The one taken above plus any more: one publication per subscription at most (SPEC §5: latest
      // wins for what is queued; a duplicate read on a later event-loop turn queues it again).
      expect(1 + dup.inbox.messages.filter((x) => x['topic'] === ep(3)).length).to.be.at.most(3);
    });

    it('ignores subscription frames that are neither subscribe nor unsubscribe, and keeps publishing', async () => {
      const xsub = new zmq.XSubscriber({ linger: 0 });
      closers.push(xsub);
      xsub.connect(`tcp://127.0.0.1:${ports.aclPub}`);
      for (const frame of [
        Buffer.from([]),
        Buffer.from([2, 0x78, 0x70, 0x35]),
        Buffer.from([0xff]),
        Buffer.from([0, 0x78]),
        Buffer.from([1]),
        Buffer.from([1, 0x78, 0x70, 0x35]),
      ])
        await xsub.send(frame);
      // The last frame subscribes to xp5: its ACLs come without any GETACLSTATE.
      xsub.receiveTimeout = 2000;
      let got: string | undefined;
      while (!got) {
        const [topic, body] = await xsub.receive();
        if ((JSON.parse(body!.toString()) as Record<string, unknown>)['type'] === 'ACLUPDATE') got = topic!.toString();
      }
      expect(got).to.equal('xp5');
      expect(manager.child.exitCode).to.equal(null);
    });

    it('publishes nothing for a prefix or an unknown topic', async () => {
      const subscriptions = await metric('calico_aclmgr_subscriptions_total');
      const sub = track(new SubscribePeer(`tcp://127.0.0.1:${ports.aclPub}`, ['xp1', 'nosuch', 'aclheartbeat']));
      await afterSubscriptions(sub, subscriptions + 3);
      // 'xp1' is itself an endpoint: exactly it, not xp10…xp199 matching the prefix.
      expect(sub.inbox.messages.filter((m) => m['type'] === 'ACLUPDATE').map((m) => m['topic'])).to.deep.equal(['xp1']);
    });
  });

  it('takes a silent plugin as lost and asks GETGROUPS again', async () => {
    // No networkheartbeat: the PUB socket stays silent while the REQ socket's HEARTBEATs are answered.
    plugin = newPlugin(0);
    plugin.setGroupQuietly('g1', { ep1: ['192.168.1.1'] });
    await plugin.start();
    await startManager(writeConfig({ connection: QUICK }));
    await plugin.requests.take((m) => m['type'] === 'GETGROUPS', 'first GETGROUPS');
    await plugin.requests.take((m) => m['type'] === 'GETGROUPS', 'GETGROUPS after silence', 10000);
    await waitFor('second resync', async () => (await resyncCount()) >= 2, 10000);
    // Lost through the silence of its PUB socket (a reset of that connection), not a REQ timeout.
    expect(await metric('calico_connection_resets_total{connection="plugin-groups",api="network"}')).to.be.at.least(1);
    expect(await metric('calico_connection_resets_total{connection="plugin",api="network"}')).to.equal(0);
    // Still serving the groups it has.
    const { sub, req } = await felix(['ep1']);
    await req.request({ type: 'GETACLSTATE', endpoint_id: 'ep1' });
    expect(sorted((await update(sub, 'ep1'))['acls'])).to.deep.equal(sorted(prototypeAcls(['192.168.1.1'])));
  });

  it('asks GETGROUPS again when the plugin answers it badly', async () => {
    plugin = newPlugin();
    plugin.setGroupQuietly('g1', { ep1: ['192.168.1.1'] });
    plugin.badReplies.push('not json', JSON.stringify({ type: 'GETGROUPS', rc: 'FAILURE', message: 'busy' }));
    await plugin.start();
    // Asked again after the keepalive interval: 50 ms here.
    await startManager(writeConfig({ connection: QUICK }));
    const getGroups = plugin.requests.messages.filter((m) => m['type'] === 'GETGROUPS');
    expect(getGroups).to.have.length(3);
    const replies = (type: string, rc: string) => metric(`calico_messages_received_total{connection="plugin",api="network",type="${type}",rc="${rc}"}`);
    expect([await replies('ERROR', 'INVALID'), await replies('GETGROUPS', 'FAILURE'), await replies('GETGROUPS', 'SUCCESS')]).to.deep.equal([1, 1, 1]);
    const { sub, req } = await felix(['ep1']);
    await req.request({ type: 'GETACLSTATE', endpoint_id: 'ep1' });
    expect(sorted((await update(sub, 'ep1'))['acls'])).to.deep.equal(sorted(prototypeAcls(['192.168.1.1'])));
  });

  it('starts before the plugin exists and syncs when it appears', async () => {
    manager = startCommand(ACLMGR, ['--config-file', writeConfig()]);
    await waitFor('ready', () => manager.output().includes('"ready"'), 10000);
    const { sub, req } = await felix(['ep1']);
    expect(await req.request({ type: 'GETACLSTATE', endpoint_id: 'ep1' })).to.include({ rc: 'SUCCESS' });
    plugin = newPlugin();
    plugin.setGroupQuietly('g1', { ep1: ['192.168.1.1'] });
    await plugin.start();
    expect(sorted((await update(sub, 'ep1'))['acls'])).to.deep.equal(sorted(prototypeAcls(['192.168.1.1'])));
    // Both sockets were reconnecting on their own timers; GETGROUPS still went out only once the subscription was in place.
    const first = plugin.events.indexOf('request:GETGROUPS');
    expect(plugin.events.indexOf('subscribe:groups'), plugin.events.join(' ')).to.be.within(0, first - 1);
    await stop(manager);
    expect(manager.child.exitCode ?? manager.child.signalCode).to.be.oneOf([0, 'SIGTERM']);
  });

  describe('bad configuration', () => {
    const cases: Array<[string, (cfg: string) => string, RegExp]> = [
      ['missing PluginAddress', (c) => c.replace(/PluginAddress = .*\n/, ''), /\[global\] PluginAddress: missing/],
      ['port out of range', (c) => c.replace(/AclRequestPort = .*\n/, 'AclRequestPort = 99999\n'), /:\d+: \[global\] AclRequestPort: bad value "99999"/],
      ['not a number', (c) => c.replace(/PluginTimeoutMillis = .*\n/, 'PluginTimeoutMillis = soon\n'), /\[connection\] PluginTimeoutMillis: bad value "soon"/],
      ['bad severity', (c) => c.replace('LogSeverityScreen = INFO', 'LogSeverityScreen = LOUD'), /\[log\] LogSeverityScreen: bad value "LOUD"/],
      [
        'heartbeat slower than 30 s',
        (c) => c.replace('AclHeartbeatIntervalMillis = 200', 'AclHeartbeatIntervalMillis = 60000'),
        /AclHeartbeatIntervalMillis: bad value/,
      ],
    ];
    for (const [name, edit, expected] of cases) {
      it(`exits non-zero with one line naming file, section and key: ${name}`, async () => {
        const file = writeConfig();
        fs.writeFileSync(file, edit(fs.readFileSync(file, 'utf8')));
        const { code, output } = await runCommand(ACLMGR, ['--config-file', file]);
        expect(code).to.not.equal(0);
        const lines = output.trim().split('\n');
        expect(lines, output).to.have.length(1);
        expect(lines[0]).to.match(/^calico-acl-manager: /);
        expect(lines[0]).to.include(file);
        expect(lines[0]).to.match(expected);
      });
    }

    it('exits non-zero with one line when its port is taken', async () => {
      const taken = net.createServer();
      await new Promise<void>((resolve) => taken.listen(ports.aclReq, '127.0.0.1', resolve));
      try {
        const { code, output } = await runCommand(ACLMGR, ['--config-file', writeConfig()]);
        expect(code).to.equal(1);
        expect(output.trim().split('\n').pop()).to.match(new RegExp(`^calico-acl-manager: cannot bind tcp://127.0.0.1:${ports.aclReq}: `));
      } finally {
        taken.close();
      }
    });

    it('exits non-zero for a missing file and for bad arguments', async () => {
      const missing = await runCommand(ACLMGR, ['--config-file', path.join(dir, 'nope.cfg')]);
      expect(missing.code).to.equal(1);
      expect(missing.output.trim()).to.match(/^calico-acl-manager: .*nope\.cfg: cannot read: ENOENT$/);
      const noArg = await runCommand(ACLMGR, []);
      expect(noArg.code).to.equal(2);
      expect(noArg.output.trim().split('\n')).to.have.length(1);
    });
  });
});
