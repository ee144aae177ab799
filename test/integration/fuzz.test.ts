/**
 * Bounded fuzzing of every socket a daemon binds or subscribes with (issue 7,
 * SPEC §2 "bad input never crashes a process and never changes state"): the
 * built plugin (ep 9901, network 9903; its PUB 9904 only sends), ACL manager
 * (ROUTER 9905, and its SUB fed as if by the plugin's PUB) and Felix (REP
 * 9902 and its SUB fed as if by the ACL manager's PUB, in a namespace). Each
 * socket gets N seeded bad messages, one of them over the daemon's size
 * limit; afterwards the process is alive, its state is what it was, and
 * valid requests are still served. Set FUZZ_SEED to replay another seed.
 */
import { expect } from 'chai';
import * as zmq from 'zeromq';
import fs from 'node:fs';
import path from 'node:path';
import { FakeAclManager, FakePlugin, createMsg, ipc, suffix, tap, writeFelixConfig } from '../support/felix-peers.js';
import { Fuzzer, Kind, Template, seededRandom } from '../support/fuzz.js';
import { Netns, createNetns, plugContainer } from '../support/netns.js';
import { ReplyPeer, RequestPeer, SubscribePeer } from '../support/peers.js';
import { PluginNetworkPeer, prototypeRules } from '../support/plugin-network-peer.js';
import { perTestWorkspace } from '../support/workspace.js';
import { freePorts } from '../support/ports.js';
import { Running, startCommand, waitFor } from '../support/process.js';
import { chainSets } from '../support/dataplane.js';
import { errorMessage } from '../../src/common/errors.js';

const SEED = Number(process.env['FUZZ_SEED'] ?? 20261128);
const N = 300;
/** Raw DEALER messages per request socket, on top of the N through a REQ socket: envelopes a REQ would never send. */
const RAW = 60;
/** The daemons under test run with this MaxMessageBytes, so "huge" stays cheap. */
const LIMIT = 65536;
/** Whole run per socket, so a daemon that stops answering cannot make the test run for ever. */
const BUDGET_MS = 90000;
const RCS = ['SUCCESS', 'INVALID', 'NOTEXIST', 'FAILURE', 'ENOINTERFACE'];

const badAddr = (i: number) => ({ addr: `300.0.${i % 256}.1` });
const badMembers = () => ['not-an-ip'];

interface RequestRun {
  rcs: Record<string, number>;
  unanswered: Partial<Record<Kind, number>>;
}

function histogram(h: Record<string, number>): string {
  return Object.entries(h)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}

/** Sends every message on a REQ socket; an unanswered one (the oversized) costs one short timeout. */
async function fuzzRequests(name: string, address: string, fuzzer: Fuzzer): Promise<RequestRun> {
  const peer = new RequestPeer(address, 1500);
  const run: RequestRun = { rcs: {}, unanswered: {} };
  const deadline = Date.now() + BUDGET_MS;
  let sent = 0;
  try {
    for (const m of fuzzer.messages(N)) {
      if (Date.now() > deadline) break;
      sent++;
      try {
        const reply = await peer.raw(...m.frames);
        expect(reply['type'], `reply type to ${m.kind}`).to.be.a('string');
        expect(RCS, `rc of the reply to ${m.kind}: ${JSON.stringify(reply).slice(0, 200)}`).to.include(reply['rc']);
        run.rcs[String(reply['rc'])] = (run.rcs[String(reply['rc'])] ?? 0) + 1;
      } catch (err) {
        if ((err as Error).name === 'AssertionError') throw err;
        run.unanswered[m.kind] = (run.unanswered[m.kind] ?? 0) + 1;
      }
    }
  } finally {
    peer.close();
  }
  const raw = await dealerBurst(address, new Fuzzer(fuzzer.seed + 1000, fuzzer.templates, fuzzer.limit));
  console.log(
    `      fuzz ${name} seed=${fuzzer.seed}: sent ${sent} (${fuzzer.summary()}); rc ${histogram(run.rcs)}; unanswered ${histogram(run.unanswered)}; raw DEALER ${raw}`,
  );
  expect(sent, 'all sent within the time budget').to.equal(N);
  // Only the message over the size limit goes unanswered: ZeroMQ drops that connection.
  expect(run.unanswered).to.deep.equal({ oversized: 1 });
  return run;
}

/**
 * Sends RAW messages from a DEALER socket, which (unlike REQ) can leave out
 * the empty delimiter, send several, or send empty ones; replies, if any, are
 * drained and ignored. (A REP socket used to stop serving after one request
 * without a delimiter.) Returns a summary.
 */
async function dealerBurst(address: string, fuzzer: Fuzzer): Promise<string> {
  const dealer = new zmq.Dealer({ linger: 0, sendTimeout: 2000 });
  dealer.connect(address);
  const drained = (async () => {
    let replies = 0;
    try {
      const replyStream = dealer[Symbol.asyncIterator]();
      while (!(await replyStream.next()).done) replies++;
    } catch {
      /* closed */
    }
    return replies;
  })();
  const envelopes = [
    (f: Buffer[]) => f,
    (f: Buffer[]) => [Buffer.alloc(0), ...f],
    (f: Buffer[]) => [Buffer.alloc(0), Buffer.alloc(0), ...f],
    (f: Buffer[]) => [Buffer.from('x'), Buffer.alloc(0), ...f],
  ];
  const random = seededRandom(fuzzer.seed);
  let sent = 0;
  for (const m of fuzzer.messages(RAW)) {
    // Extra frames after an envelope can form a valid request (envelope, delimiter, body): not bad input.
    if (m.kind === 'extra-frames') continue;
    const envelope = envelopes[Math.floor(random() * envelopes.length)]!;
    await dealer.send(envelope(m.frames)).then(
      () => sent++,
      () => undefined,
    );
  }
  await new Promise((r) => setTimeout(r, 300));
  dealer.close();
  return `sent ${sent}, ${await drained} replies`;
}

/** A publication every daemon refuses (unknown type) and logs with its type, so it shows that the subscriber is connected. */
const PROBE = JSON.stringify({ type: 'PROBE' });

/**
 * Publishes every message. The oversized one makes the subscriber drop its
 * connection (libzmq does not reconnect after that protocol error; the
 * Subscriber must replace its socket): probes follow until `probes()`, the
 * daemon's count of refused probes, goes up, so the rest is not lost.
 * Returns how many should reach the daemon's decoder (all but the wrong
 * frame counts, the oversized one and the probes).
 */
async function fuzzPublications(
  name: string,
  send: (frames: Buffer[]) => Promise<void>,
  fuzzer: Fuzzer,
  probeTopic: string,
  probes: () => number,
): Promise<number> {
  let sent = 0;
  for (const m of fuzzer.messages(N)) {
    await send(m.frames);
    sent++;
    if (m.kind !== 'oversized') continue;
    const before = probes();
    await waitFor(
      'the subscriber back after the oversized message',
      async () => {
        await send([Buffer.from(probeTopic), Buffer.from(PROBE)]);
        await new Promise((r) => setTimeout(r, 100));
        return probes() > before;
      },
      15000,
      100,
    );
  }
  console.log(`      fuzz ${name} seed=${fuzzer.seed}: published ${sent} (${fuzzer.summary()})`);
  const c = fuzzer.counts;
  return sent - c['extra-frames'] - c['empty-frame'] - c['oversized'];
}

/** Log lines with `what`, probes apart. */
const count = (text: string, what: string) => text.split('\n').filter((l) => l.includes(what) && !l.includes('PROBE')).length;
const probesIn = (text: string) => text.split('\n').filter((l) => l.includes('PROBE')).length;

const alive = (p: Running) => p.child.exitCode === null && p.child.signalCode === null;

describe(`fuzzing every socket with bad messages (built commands, seed ${SEED}, ${N} per socket)`, function () {
  this.timeout(180000);
  const ws = perTestWorkspace('fuzz-test');

  const pluginData = (felixPort: number) =>
    `[felix h1]\nip=127.0.0.1\nport=${felixPort}\nhost=h1\n\n` +
    '[endpoint a]\nid=ep1\nip=192.168.1.1\nmac=ee:ee:ee:ee:ee:01\nhost=h1\ngroup=g1\n\n[endpoint b]\nid=ep2\nip=192.168.1.2\nmac=ee:ee:ee:ee:ee:02\nhost=h1\ngroup=g1\n';

  async function startPlugin(role: 'ep' | 'network', args: string[], felixPort = 1): Promise<Running> {
    const data = path.join(ws.dir, 'data.txt');
    fs.writeFileSync(data, pluginData(felixPort));
    const p = startCommand('src/plugin/main.js', [
      role,
      '--data',
      data,
      '--log-dir',
      'none',
      '--log-severity-screen',
      'INFO',
      '--bind',
      '127.0.0.1',
      '--max-message-bytes',
      String(LIMIT),
      ...args,
    ]);
    await waitFor('plugin ready', () => p.output().includes('"ready"'), 10000).catch(() => {
      throw new Error(`plugin did not start: ${p.output()}`);
    });
    return p;
  }

  it(`plugin ep (REP 9901): alive, still answers RESYNCSTATE with the right count and pushes the endpoints`, async () => {
    const [epPort, felixPort] = await freePorts(2);
    const felix = ws.track(await new ReplyPeer().bind(`tcp://127.0.0.1:${felixPort}`));
    const plugin = await startPlugin('ep', ['--ep-port', String(epPort)], felixPort);
    const resync = { type: 'RESYNCSTATE', resync_id: 'r-1', hostname: 'h1', issued: Date.now() };
    const templates: Template[] = [
      {
        msg: resync,
        fields: [
          { name: 'resync_id', type: 'string' },
          { name: 'hostname', type: 'string' },
        ],
      },
      { msg: { type: 'HEARTBEAT' }, fields: [] },
    ];
    await fuzzRequests('plugin ep 9901', `tcp://127.0.0.1:${epPort}`, new Fuzzer(SEED, templates, LIMIT));
    expect(alive(plugin), plugin.output()).to.equal(true);
    const req = ws.track(new RequestPeer(`tcp://127.0.0.1:${epPort}`));
    expect(await req.request({ ...resync, resync_id: 'after' })).to.deep.include({ rc: 'SUCCESS', endpoint_count: 2 });
    for (let i = 0; i < 2; i++) await felix.inbox.take((m) => m['resync_id'] === 'after', 'ENDPOINTCREATED after the fuzzing');
  });

  it(`plugin network (REP 9903; PUB 9904 only sends): alive, GETGROUPS still answered and the groups republished unchanged`, async () => {
    const [groups, pub] = await freePorts(2);
    const plugin = await startPlugin('network', ['--groups-port', String(groups), '--publish-port', String(pub)]);
    const templates: Template[] = [
      { msg: { type: 'GETGROUPS', issued: Date.now() }, fields: [] },
      { msg: { type: 'HEARTBEAT' }, fields: [] },
    ];
    await fuzzRequests('plugin network 9903', `tcp://127.0.0.1:${groups}`, new Fuzzer(SEED + 1, templates, LIMIT));
    expect(alive(plugin), plugin.output()).to.equal(true);
    const sub = ws.track(new SubscribePeer(`tcp://127.0.0.1:${pub}`, ['groups']));
    const req = ws.track(new RequestPeer(`tcp://127.0.0.1:${groups}`));
    // A subscription takes a moment to reach the publisher: ask until the republication is seen.
    const update = await waitFor(
      'GROUPUPDATE g1 after GETGROUPS',
      async () => {
        expect(await req.request({ type: 'GETGROUPS', issued: Date.now() })).to.deep.include({ rc: 'SUCCESS' });
        return sub.inbox.take((m) => m['group'] === 'g1', 'g1', 300).catch(() => undefined);
      },
      10000,
    );
    expect(update!['members']).to.deep.equal({ ep1: ['192.168.1.1'], ep2: ['192.168.1.2'] });
  });

  it(`ACL manager (ROUTER 9905, and its SUB to the plugin): alive, same ACLs published, still follows valid groups`, async () => {
    const [groups, pub, aclReq, aclPub] = await freePorts(4);
    const plugin = ws.track(new PluginNetworkPeer(`tcp://127.0.0.1:${groups}`, `tcp://127.0.0.1:${pub}`, 200));
    await plugin.start();
    const members = { ep1: ['192.168.1.1'], ep2: ['192.168.1.2'] };
    plugin.setGroupQuietly('g1', members);
    const cfg = path.join(ws.dir, 'acl_manager.cfg');
    fs.writeFileSync(
      cfg,
      `[global]\nPluginAddress = 127.0.0.1\nLocalAddress = 127.0.0.1\nPluginGroupsPort = ${groups}\nPluginPublishPort = ${pub}\nAclRequestPort = ${aclReq}\nAclPublishPort = ${aclPub}\nAclHeartbeatIntervalMillis = 200\n` +
        `[log]\nLogFilePath = None\nLogSeverityScreen = INFO\n[connection]\nResyncSettleMillis = 200\nMaxMessageBytes = ${LIMIT}\n`,
    );
    const manager = startCommand('src/aclmgr/main.js', ['--config-file', cfg]);
    await waitFor('first resync', () => manager.output().includes('resynchronised with the plugin'), 10000);

    const sub = ws.track(new SubscribePeer(`tcp://127.0.0.1:${aclPub}`, ['ep1']));
    const req = ws.track(new RequestPeer(`tcp://127.0.0.1:${aclReq}`));
    const aclsOfEp1 = () =>
      waitFor(
        'ACLUPDATE for ep1',
        async () => {
          expect(await req.request({ type: 'GETACLSTATE', endpoint_id: 'ep1', issued: Date.now() })).to.deep.include({ rc: 'SUCCESS' });
          return (await sub.inbox.take((m) => m['type'] === 'ACLUPDATE', 'ACLUPDATE', 300).catch(() => undefined))?.['acls'];
        },
        10000,
      );
    const before = await aclsOfEp1();
    expect(JSON.stringify(before)).to.include('192.168.1.2/32');

    const requests: Template[] = [
      { msg: { type: 'GETACLSTATE', endpoint_id: 'ep1', issued: Date.now() }, fields: [{ name: 'endpoint_id', type: 'checked' }] },
      { msg: { type: 'HEARTBEAT' }, fields: [] },
    ];
    await fuzzRequests('ACL manager ROUTER 9905', `tcp://127.0.0.1:${aclReq}`, new Fuzzer(SEED + 2, requests, LIMIT));
    expect(alive(manager), manager.output()).to.equal(true);
    sub.inbox.messages.splice(0);
    expect(await aclsOfEp1(), 'ACLs after fuzzing the ROUTER').to.deep.equal(before);

    const publications: Template[] = [
      {
        msg: { type: 'GROUPUPDATE', group: 'g1', members, rules: prototypeRules('g1'), issued: Date.now() },
        fields: [
          { name: 'group', type: 'string' },
          { name: 'members', type: 'object', bad: badMembers },
          { name: 'rules', type: 'object' },
        ],
      },
      { msg: { type: 'HEARTBEAT' }, fields: [] },
    ];
    const decodable = await fuzzPublications(
      'ACL manager SUB (as the plugin PUB 9904)',
      (frames) => plugin.raw(...frames),
      new Fuzzer(SEED + 3, publications, LIMIT, ['groups', 'networkheartbeat']),
      'groups',
      () => probesIn(manager.output()),
    );
    // Every one reached the decoder and was refused (so the fuzzing was not lost on the way).
    await waitFor('every bad publication refused', () => count(manager.output(), 'bad publication from the plugin ignored') === decodable, 10000).catch(
      (err: unknown) => {
        throw new Error(`${errorMessage(err)}: ${count(manager.output(), 'bad publication from the plugin ignored')} of ${decodable}`);
      },
    );
    expect(alive(manager), manager.output()).to.equal(true);
    sub.inbox.messages.splice(0);
    expect(await aclsOfEp1(), 'ACLs after fuzzing the SUB').to.deep.equal(before);
    // Still listening: a valid change is followed.
    await plugin.setGroup('g1', { ...members, ep3: ['192.168.1.3'] });
    await sub.inbox.take((m) => JSON.stringify(m['acls']).includes('192.168.1.3/32'), 'ACLUPDATE with ep3', 10000);
  });

  it(`Felix (REP 9902, and its SUB to the ACL manager; in a namespace): alive, routes, chains and sets unchanged, valid messages still applied`, async () => {
    const host: Netns = await createNetns('fuzzhost', 'cfuz');
    const EP1 = { id: 'd1d1d1d1d1d1cc01', ip: '192.168.50.1' };
    const c1 = await plugContainer(host, 'fz1', EP1.ip, tap(EP1.id));
    // The default timeout: Felix's watchdog would not recreate a dropped SUB within the test.
    const cfg = writeFelixConfig(ws.dir, `[connection]\nConnectionTimeoutMillis = 40000\nMaxMessageBytes = ${LIMIT}\n`);
    const plugin = ws.track(new FakePlugin(ipc(ws.dir, 'plugin.sock'), ipc(ws.dir, 'felix.sock')));
    const create = createMsg(EP1, c1.mac);
    plugin.endpoints.set(EP1.id, create);
    await plugin.listen();
    const aclmgr = ws.track(new FakeAclManager());
    await aclmgr.bind(ipc(ws.dir, 'acl.sock'), ipc(ws.dir, 'aclpub.sock'));
    const rule = (cidr: string) => ({ group: null, cidr, protocol: null, port: null });
    const acls = (inbound: string[]) => ({
      v4: { inbound: inbound.map(rule), outbound: [rule('0.0.0.0/0')], inbound_default: 'deny', outbound_default: 'deny' },
    });
    aclmgr.acls.set(EP1.id, acls(['192.168.50.2/32']));
    const felix = startCommand('src/felix/main.js', ['--config-file', cfg], { netns: host.name });
    await waitFor(
      'EP1 programmed with its ACLs',
      async () => (await chainSets(host, `felix-to-${suffix(EP1.id)}`))['addr']?.includes('192.168.50.2') ?? false,
      15000,
    );
    const snapshot = async () => ({
      routes: await host.run('ip', ['route', 'show']),
      neigh: await host.run('ip', ['neigh', 'show', 'nud', 'permanent']),
      chains: (await host.run('iptables-save', ['-t', 'filter'])).split('\n').filter((l) => !l.startsWith('#')),
      // An ACL update swaps in a fresh set: its hash seed (initval) is all that may differ.
      sets: (await host.run('ipset', ['save']))
        .split('\n')
        .map((l) => l.replace(/ initval 0x[0-9a-f]+/, ''))
        .sort(),
    });
    const before = await snapshot();
    expect(before.routes).to.include(`${EP1.ip} dev ${tap(EP1.id)}`);

    const endpointFields = [
      { name: 'endpoint_id', type: 'checked' as const },
      { name: 'mac', type: 'checked' as const },
      { name: 'addrs', type: 'array' as const, bad: badAddr },
      { name: 'state', type: 'checked' as const },
    ];
    const requests: Template[] = [
      { msg: createMsg({ id: 'newcomer00000001', ip: '192.168.50.9' }, 'ee:ee:ee:ee:ee:09'), fields: endpointFields },
      { msg: { ...create, type: 'ENDPOINTUPDATED', resync_id: undefined }, fields: endpointFields },
      { msg: { type: 'ENDPOINTDESTROYED', endpoint_id: EP1.id, issued: Date.now() }, fields: [{ name: 'endpoint_id', type: 'checked' }] },
    ];
    const run = await fuzzRequests('Felix REP 9902', ipc(ws.dir, 'felix.sock'), new Fuzzer(SEED + 4, requests, LIMIT));
    expect(run.rcs['SUCCESS'] ?? 0, 'no bad request accepted').to.equal(0);
    expect(alive(felix), felix.output()).to.equal(true);
    expect(await snapshot(), 'dataplane after fuzzing the REP').to.deep.equal(before);
    expect(await plugin.send({ type: 'HEARTBEAT' })).to.deep.equal({ type: 'HEARTBEAT' });

    const log = () => fs.readFileSync(path.join(ws.dir, 'felix.log'), 'utf8');
    const received = () =>
      log()
        .split('\n')
        .filter((l) => l.includes('"ACLs received"')).length;
    const publications: Template[] = [
      { msg: { type: 'ACLUPDATE', acls: acls(['192.168.50.2/32']), issued: Date.now() }, fields: [{ name: 'acls', type: 'object' }] },
      { msg: { type: 'HEARTBEAT' }, fields: [] },
    ];
    const receivedBefore = received();
    const decodable = await fuzzPublications(
      'Felix SUB (as the ACL manager PUB 9906)',
      (frames) => aclmgr.pub.raw(...frames),
      new Fuzzer(SEED + 5, publications, LIMIT, [EP1.id, 'aclheartbeat']),
      EP1.id,
      () => probesIn(log()),
    );
    // The same ACLs once more: when Felix has taken them, it has been through everything published before.
    await waitFor(
      'the unchanged ACLs taken after the bad ones',
      async () => {
        await aclmgr.set(EP1.id, acls(['192.168.50.2/32']));
        return received() > receivedBefore;
      },
      10000,
      500,
    );
    // Felix decodes only the newest publication per topic of what it had queued (issue #13): a bad one
    // followed by another on its topic is dropped unread. Those it read were refused, and none was taken.
    expect(count(log(), 'bad ACL publication ignored')).to.be.within(1, decodable);
    expect(alive(felix), felix.output()).to.equal(true);
    expect(await snapshot(), 'dataplane after fuzzing the SUB').to.deep.equal(before);
    await aclmgr.set(EP1.id, acls(['192.168.50.2/32', '192.168.50.3/32']));
    await waitFor(
      'a valid ACL change programmed',
      async () => (await chainSets(host, `felix-to-${suffix(EP1.id)}`))['addr']?.includes('192.168.50.3') ?? false,
      10000,
    );
  });
});
