/**
 * Drop-in with the 2014 originals (issue #12): the BUILT `plugin network`,
 * `calico-acl-manager` and `plugin ep` run against stand-ins that behave on
 * the wire as SPEC §11 says the Python originals do (test/support/originals.ts),
 * over real sockets on 127.0.0.1. Each test asserts what an operator of a
 * mixed deployment would see.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { perTestWorkspace } from '../support/workspace.js';
import { freePorts } from '../support/ports.js';
import { Running, startCommand, waitFor } from '../support/process.js';
import { SubscribePeer } from '../support/peers.js';
import { writeFileAtomic } from '../../src/common/files.js';
import { OriginalAclManager, OriginalFelix, OriginalPlugin, prototypeAcls } from '../support/originals.js';

type Json = Record<string, unknown>;

const PLUGIN = 'src/plugin/main.js';
const ACLMGR = 'src/aclmgr/main.js';
const tcp = (port: number) => `tcp://127.0.0.1:${port}`;

function felixSection(port: number, name = 'felix'): string {
  return `[${name} instance-1]\nip=127.0.0.1\nport=${port}\nhost=instance-1\n\n`;
}

function endpointSection(n: number, group: string, o: { name?: string; ip?: string; mac?: string } = {}): string {
  const mac = o.mac ?? `ee:ee:ee:ee:ee:${n.toString(16).padStart(2, '0')}`;
  return `[${o.name ?? 'endpoint'} 192_168_1_${n}]\nid=ep${n}\nip=${o.ip ?? `192.168.1.${n}`}\nmac=${mac}\nhost=instance-1\ngroup=${group}\n\n`;
}

/** ACLs with each rule list sorted, so two calculators' (deterministic but different) orders compare equal. */
function sortedAcls(acls: unknown): unknown {
  const byJson = (x: unknown, y: unknown) => JSON.stringify(x).localeCompare(JSON.stringify(y));
  const fam = (r: Json) => ({ ...r, inbound: [...(r['inbound'] as Json[])].sort(byJson), outbound: [...(r['outbound'] as Json[])].sort(byJson) });
  const a = acls as Record<'v4' | 'v6', Json>;
  return { v4: fam(a.v4), v6: fam(a.v6) };
}

const isJson = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The command's JSON log lines (screen output), parsed; other lines are left out. */
function logLines(r: Running): Json[] {
  return r
    .output()
    .split('\n')
    .flatMap((l) => {
      try {
        const j = JSON.parse(l) as unknown;
        return isJson(j) ? [j] : [];
      } catch {
        return [];
      }
    });
}

describe('drop-in with the 2014 originals (stand-ins per SPEC §11, built commands)', function () {
  this.timeout(30000);
  const ws = perTestWorkspace('originals-test');

  /** The built plugin in `role` on `data`, once it logged "ready". */
  async function startPlugin(role: 'ep' | 'network', data: string, args: string[]): Promise<Running> {
    const p = startCommand(PLUGIN, [role, '--data', data, '--log-dir', 'none', '--log-severity-screen', 'INFO', '--bind', '127.0.0.1', ...args]);
    await waitFor(`plugin ${role} ready`, () => p.output().includes('"ready"'), 10000);
    return p;
  }

  it('plugin network under the 2014 ACL manager: every group after its single GETGROUPS, and again after a SIGKILL and restart without a second GETGROUPS', async () => {
    const [groupsPort, pubPort, aclReq, aclPub] = await freePorts(4);
    const data = path.join(ws.dir, 'data');
    fs.mkdirSync(data);
    fs.writeFileSync(path.join(data, 'felix.txt'), felixSection(9902));
    for (const [n, g] of [
      [1, 'group1'],
      [2, 'group1'],
      [3, 'group2'],
    ] as const)
      fs.writeFileSync(path.join(data, `192_168_1_${n}.txt`), endpointSection(n, g));
    const args = ['--groups-port', String(groupsPort), '--publish-port', String(pubPort), '--heartbeat-ms', '500'];
    let plugin = await startPlugin('network', data, args);

    const acl = ws.track(
      new OriginalAclManager({
        pluginRequestAddress: tcp(groupsPort),
        pluginPublishAddress: tcp(pubPort),
        felixRequestAddress: tcp(aclReq),
        felixPublishAddress: tcp(aclPub),
      }),
    );
    await acl.start();
    const membersOf = (g: string) => acl.groups.get(g)?.members;
    await waitFor('both groups at the 2014 ACL manager', () => membersOf('group1') && membersOf('group2'), 5000);
    expect(membersOf('group1')).to.deep.equal({ ep1: ['192.168.1.1'], ep2: ['192.168.1.2'] });
    expect(membersOf('group2')).to.deep.equal({ ep3: ['192.168.1.3'] });
    await waitFor('the GETGROUPS reply', () => acl.sentOf('GETGROUPS')[0]?.reply, 5000);
    expect(acl.sentOf('GETGROUPS').map((s) => s.reply)).to.deep.equal([{ type: 'GETGROUPS', rc: 'SUCCESS', message: '' }]);
    // What it computed from them is the prototype's: ep1 reaches its own group and anywhere out.
    expect(sortedAcls(acl.aclsOf('ep1'))).to.deep.equal(sortedAcls(prototypeAcls(['192.168.1.1', '192.168.1.2'])));

    // plugin network dies hard; while it is down ep4 joins group1; it comes back on the same ports.
    plugin.child.kill('SIGKILL');
    await plugin.exited;
    fs.writeFileSync(path.join(data, '192_168_1_4.txt'), endpointSection(4, 'group1'));
    const updatesBefore = acl.groupUpdates.length;
    const restarted = Date.now();
    plugin = await startPlugin('network', data, args);
    await waitFor(
      'group1 with ep4 at the 2014 ACL manager after the restart',
      () => acl.groupUpdates.slice(updatesBefore).some((u) => u['group'] === 'group1' && Object.keys(u['members'] as Json).includes('ep4')),
      5000,
    );
    console.log(`      (groups back at the 2014 ACL manager ${Date.now() - restarted} ms after the restart began)`);
    expect(membersOf('group1')).to.deep.equal({ ep1: ['192.168.1.1'], ep2: ['192.168.1.2'], ep4: ['192.168.1.4'] });
    expect(membersOf('group2')).to.deep.equal({ ep3: ['192.168.1.3'] });
    expect(sortedAcls(acl.aclsOf('ep4'))).to.deep.equal(sortedAcls(prototypeAcls(['192.168.1.1', '192.168.1.2', '192.168.1.4'])));
    // It never asked again: the restarted plugin sent the groups on the re-subscription alone.
    expect(acl.sentOf('GETGROUPS')).to.have.length(1);
    expect(acl.sent.filter((s) => s.type !== 'GETGROUPS' && s.type !== 'HEARTBEAT')).to.deep.equal([]);
    expect(plugin.child.exitCode).to.equal(null);
  });

  it('plugin network answers the 2014 ACL manager’s HEARTBEATs with rc SUCCESS, as the original plugin did', async () => {
    const [groupsPort, pubPort, aclReq, aclPub] = await freePorts(4);
    const data = path.join(ws.dir, 'data.txt');
    fs.writeFileSync(data, felixSection(9902) + endpointSection(1, 'group1'));
    await startPlugin('network', data, ['--groups-port', String(groupsPort), '--publish-port', String(pubPort), '--heartbeat-ms', '500']);
    const acl = ws.track(
      new OriginalAclManager({
        pluginRequestAddress: tcp(groupsPort),
        pluginPublishAddress: tcp(pubPort),
        felixRequestAddress: tcp(aclReq),
        felixPublishAddress: tcp(aclPub),
        heartbeatMs: 300,
      }),
    );
    await acl.start();
    await waitFor('three HEARTBEAT replies', () => acl.sentOf('HEARTBEAT').filter((s) => s.reply).length >= 3, 5000);
    const replies = acl.sentOf('HEARTBEAT').flatMap((s) => (s.reply ? [s.reply] : []));
    for (const r of replies) expect(r).to.include({ type: 'HEARTBEAT', rc: 'SUCCESS' });
  });

  it('calico-acl-manager under the 2014 plugin: good members (web:1 too) get ACLs unasked within 1 s, bad ones are skipped and logged with the group, identical republications publish nothing', async () => {
    const [groupsPort, pubPort, aclReq, aclPub] = await freePorts(4);
    const original = ws.track(new OriginalPlugin(tcp(groupsPort), tcp(pubPort), 1000, 200));
    // What the 2014 plugin put in members: whatever it was given.
    await original.setGroup('g1', {
      ep1: ['192.168.1.1'],
      ep2: ['192.168.1.2'],
      'web:1': ['192.168.1.11'],
      'bad id': ['192.168.1.7'],
      ep3: ['not-an-address'],
    });
    await original.start();
    const cfg = path.join(ws.dir, 'acl_manager.cfg');
    fs.writeFileSync(
      cfg,
      `[global]\nPluginAddress = 127.0.0.1\nLocalAddress = 127.0.0.1\nPluginGroupsPort = ${groupsPort}\nPluginPublishPort = ${pubPort}\n` +
        `AclRequestPort = ${aclReq}\nAclPublishPort = ${aclPub}\nAclHeartbeatIntervalMillis = 200\n\n` +
        `[log]\nLogFilePath = None\nLogSeverityScreen = INFO\n\n` +
        `[connection]\nConnectionTimeoutMillis = 2000\nConnectionKeepaliveIntervalMillis = 500\nPluginTimeoutMillis = 3000\nResyncSettleMillis = 200\n`,
    );
    const manager = startCommand(ACLMGR, ['--config-file', cfg]);
    await waitFor('the ACL manager synced with the 2014 plugin', () => manager.output().includes('resynchronised with the plugin'), 10000);

    // A Felix that subscribes and never asks GETACLSTATE.
    const good = ['ep1', 'ep2', 'web:1'];
    const subscribed = Date.now();
    const sub = ws.track(new SubscribePeer(tcp(aclPub), [...good, 'bad id', 'ep3', 'aclheartbeat']));
    const expected = sortedAcls(prototypeAcls(['192.168.1.1', '192.168.1.2', '192.168.1.11']));
    for (const ep of good) {
      const m = await sub.inbox.take(
        (x) => x['topic'] === ep && x['type'] === 'ACLUPDATE',
        `ACLUPDATE for ${ep} without GETACLSTATE`,
        Math.max(1, subscribed + 1000 - Date.now()),
      );
      expect(sortedAcls(m['acls']), ep).to.deep.equal(expected);
    }
    expect(original.requests.messages.filter((m) => m['type'] === 'GETGROUPS').length).to.be.at.least(1);

    // Two full republications of the identical group: nothing new for any endpoint.
    const republished = original.republications;
    await waitFor('two more republications by the 2014 plugin', () => original.republications >= republished + 2, 5000);
    // A few aclheartbeats after the last one: anything it caused would have been published by now.
    const beats = sub.inbox.messages.filter((m) => m['topic'] === 'aclheartbeat').length;
    await waitFor('aclheartbeats after the republications', () => sub.inbox.messages.filter((m) => m['topic'] === 'aclheartbeat').length >= beats + 3, 3000);
    expect(sub.inbox.messages.filter((m) => m['type'] === 'ACLUPDATE').map((m) => m['topic'])).to.deep.equal([]);

    // The bad members were skipped, each logged with its group, every time the group came.
    const skips = logLines(manager).filter((l) => l['msg'] === 'group member skipped');
    expect(
      skips.every((l) => l['group'] === 'g1'),
      JSON.stringify(skips[0]),
    ).to.equal(true);
    const reasons = new Set(skips.map((l) => l['reason']));
    expect([...reasons].sort()).to.deep.equal(['member "bad id": bad endpoint id', 'member "ep3": bad address']);
    // The republications did reach the manager: at least three arrivals of g1, two skips each.
    expect(skips.length).to.be.at.least(6);
    expect(manager.child.exitCode).to.equal(null);
  });

  it('plugin ep under the 2014 Felix resyncing every 5 s: every resync answered and completed, state on every create and update; an unanswered ENDPOINTDESTROYED does not hold back the next endpoint', async function () {
    this.timeout(45000);
    const [epPort, felixPort] = await freePorts(2);
    const data = path.join(ws.dir, 'data');
    fs.mkdirSync(data);
    fs.writeFileSync(path.join(data, 'felix.txt'), felixSection(felixPort));
    const file = (n: number) => path.join(data, `192_168_1_${n}.txt`);
    for (const n of [1, 2, 3]) fs.writeFileSync(file(n), endpointSection(n, 'group1'));
    // plugin ep gives up on an unanswered request after 3 s; the 2014 Felix's sockets time out after 2 s of silence.
    const PLUGIN_TIMEOUT_MS = 3000;
    const plugin = await startPlugin('ep', data, ['--ep-port', String(epPort), '--keepalive-ms', '500', '--timeout-ms', String(PLUGIN_TIMEOUT_MS)]);
    const felix = ws.track(
      new OriginalFelix({
        bindAddress: tcp(felixPort),
        pluginAddress: tcp(epPort),
        hostname: 'instance-1.example.com',
        resyncIntervalSecs: 5,
        connectionTimeoutMs: 2000,
        keepaliveMs: 1000,
      }),
    );
    await felix.start();
    const completed = () => felix.resyncs.filter((r) => r.completed);

    // About 12 s of normal running, with an update to ep2 in the middle.
    await waitFor('the second resync completed', () => completed().length >= 2, 8000);
    writeFileAtomic(file(2), endpointSection(2, 'group1', { mac: 'ee:ee:ee:ee:ee:22' }));
    await waitFor('the third resync completed', () => completed().length >= 3, 8000);
    expect(felix.resyncs).to.have.length(3);
    for (const r of felix.resyncs) {
      expect(r.reply, r.id).to.include({ type: 'RESYNCSTATE', rc: 'SUCCESS', message: '' });
      expect(r.expected, r.id).to.equal(3);
      expect(r.creates, r.id).to.equal(3);
    }
    const updated = felix.receivedOf('ENDPOINTUPDATED');
    expect(updated.map((m) => [m['endpoint_id'], m['mac']])).to.deep.equal([['ep2', 'ee:ee:ee:ee:ee:22']]);
    expect(felix.known.get('ep2')?.['mac']).to.equal('ee:ee:ee:ee:ee:22');
    for (const m of [...felix.receivedOf('ENDPOINTCREATED'), ...updated]) expect(m['state'], JSON.stringify(m)).to.equal('enabled');
    expect(felix.refused).to.deep.equal([]);
    expect(plugin.output()).not.to.include('RESYNCSTATE refused');
    expect([...felix.known.keys()].sort()).to.deep.equal(['ep1', 'ep2', 'ep3']);

    // The 2014 Felix loses track of ep3; then ep3 leaves the data: its ENDPOINTDESTROYED is never answered.
    felix.forget('ep3');
    fs.rmSync(file(3));
    await waitFor('the unanswered ENDPOINTDESTROYED for ep3', () => felix.unanswered.some((m) => m['endpoint_id'] === 'ep3'), 3000);
    // A new endpoint while that request hangs: it reaches Felix once plugin ep gives the request up.
    fs.writeFileSync(file(4), endpointSection(4, 'group1'));
    const added = Date.now();
    const created = await felix.received.take(
      (m) => m['type'] === 'ENDPOINTCREATED' && m['endpoint_id'] === 'ep4',
      'ENDPOINTCREATED for ep4',
      PLUGIN_TIMEOUT_MS + 3000,
    );
    console.log(`      (ep4 reached the 2014 Felix ${Date.now() - added} ms after it was added)`);
    expect(created).to.include({ mac: 'ee:ee:ee:ee:ee:04', state: 'enabled' });
    expect(created['addrs']).to.deep.equal([{ addr: '192.168.1.4', properties: { gr: false } }]);
    expect(felix.unanswered.map((m) => m['endpoint_id'])).to.deep.equal(['ep3']);
    expect(plugin.output()).to.include('Felix did not answer');

    // And the two converge: a later resync completes with the current endpoints.
    const resyncsBefore = felix.resyncs.length;
    await waitFor('a resync completed after ep4 arrived', () => felix.resyncs.slice(resyncsBefore).some((r) => r.completed), 12000);
    const last = felix.resyncs.slice(resyncsBefore).find((r) => r.completed)!;
    expect(last.expected).to.equal(3);
    expect([...felix.known.keys()].sort()).to.deep.equal(['ep1', 'ep2', 'ep4']);
    expect(felix.refused).to.deep.equal([]);
    expect(plugin.child.exitCode).to.equal(null);
  });

  it('plugin ep reads data files written for the originals: mixed-case sections, MACs with -, addresses with /32; a non-*.txt file is named once in the log', async () => {
    const [epPort, felixPort] = await freePorts(2);
    const data = path.join(ws.dir, 'data');
    fs.mkdirSync(data);
    fs.writeFileSync(path.join(data, 'felix.txt'), felixSection(felixPort, 'FELIX'));
    fs.writeFileSync(path.join(data, '192_168_1_9.txt'), endpointSection(9, 'group1', { name: 'Endpoint', ip: '192.168.1.9/32', mac: 'ee-ee-ee-ee-ee-09' }));
    // An editor's backup beside the data: the original read it, this plugin does not.
    const ignored = '192_168_1_8.txt.bak';
    fs.writeFileSync(path.join(data, ignored), endpointSection(8, 'group1'));
    const plugin = await startPlugin('ep', data, ['--ep-port', String(epPort), '--keepalive-ms', '500', '--timeout-ms', '3000']);
    const felix = ws.track(
      new OriginalFelix({
        bindAddress: tcp(felixPort),
        pluginAddress: tcp(epPort),
        hostname: 'instance-1',
        resyncIntervalSecs: 5,
        connectionTimeoutMs: 2000,
        keepaliveMs: 1000,
      }),
    );
    await felix.start();

    const ep9 = await felix.received.take((m) => m['type'] === 'ENDPOINTCREATED' && m['endpoint_id'] === 'ep9', 'ENDPOINTCREATED for ep9', 5000);
    expect(ep9).to.include({ mac: 'ee:ee:ee:ee:ee:09', state: 'enabled', resync_id: felix.resyncs[0]!.id });
    expect(ep9['addrs']).to.deep.equal([{ addr: '192.168.1.9', properties: { gr: false } }]);
    expect(felix.resyncs[0]!.reply).to.include({ rc: 'SUCCESS', endpoint_count: 1 });

    // A change after start, in the same liberal forms, is pushed in canonical ones; the reload passes the backup by again.
    fs.writeFileSync(path.join(data, '192_168_1_10.txt'), endpointSection(10, 'group1', { name: 'ENDPOINT', ip: '192.168.1.10/32', mac: 'ee-ee-ee-ee-ee-0a' }));
    const ep10 = await felix.received.take((m) => m['type'] === 'ENDPOINTCREATED' && m['endpoint_id'] === 'ep10', 'ENDPOINTCREATED for ep10', 3000);
    expect(ep10).to.include({ mac: 'ee:ee:ee:ee:ee:0a', state: 'enabled', resync_id: null });
    expect(ep10['addrs']).to.deep.equal([{ addr: '192.168.1.10', properties: { gr: false } }]);
    expect(felix.received.messages.filter((m) => m['endpoint_id'] === 'ep8')).to.deep.equal([]);
    expect(felix.refused).to.deep.equal([]);

    const mentions = plugin
      .output()
      .split('\n')
      .filter((l) => l.includes(ignored));
    expect(mentions, plugin.output()).to.have.length(1);
    expect(mentions[0]).to.include('not a *.txt file: ignored');
  });
});
