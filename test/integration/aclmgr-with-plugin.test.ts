/**
 * The built `calico-acl-manager` with the built `plugin network`: the
 * prototype's groups from a data file become ACLs, a data change reaches a
 * Felix (SPEC §4, §5, §7), and a plugin restart is resynchronised.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePorts } from '../support/ports.js';
import { Running, startCommand, stop, stopAll, waitFor } from '../support/process.js';
import { RequestPeer, SubscribePeer } from '../support/peers.js';
import { writeFileAtomic } from '../../src/common/files.js';
import { formatEndpointSection, formatFelixSection } from '../../src/plugin/data.js';

const rule = (cidr: string) => ({ group: null, cidr, protocol: null, port: null });
const deny = { inbound: [], outbound: [], inbound_default: 'deny', outbound_default: 'deny' };

/** Sections end with a blank line, so that they can be joined. */
const FELIX = `${formatFelixSection({ host: 'instance-1', ip: '127.0.0.1' })}\n`;

function endpoint(n: number, group: string, id = `ep${n}`): string {
  return `${formatEndpointSection({ id, ip: `192.168.1.${n}`, mac: `ee:ee:ee:ee:ee:0${n}`, host: 'instance-1', group })}\n`;
}

/** Prototype ACLs of an endpoint whose group has these addresses, rules in the manager's order. */
function acls(addrs: string[]): unknown {
  const own = addrs.map((a) => rule(`${a}/32`));
  return { v4: { inbound: own, outbound: [rule('0.0.0.0/0'), ...own], inbound_default: 'deny', outbound_default: 'deny' }, v6: deny };
}

describe('calico-acl-manager with plugin network (built commands)', function () {
  this.timeout(30000);
  let dir: string;
  const closers: Array<{ close(): void }> = [];

  afterEach(async () => {
    await stopAll();
    for (const c of closers.splice(0)) c.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Starts the built plugin network on `dataText` and the built ACL manager, and waits for their first sync. */
  async function startBoth(dataText: string) {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aclmgr-plugin-'));
    const [groupsPort, pubPort, aclReq, aclPub] = await freePorts(4);
    const data = path.join(dir, 'data.txt');
    fs.writeFileSync(data, `${FELIX}${dataText}`);
    const pluginArgs = [
      'network',
      '--data',
      data,
      '--log-dir',
      'none',
      '--bind',
      '127.0.0.1',
      '--groups-port',
      String(groupsPort),
      '--publish-port',
      String(pubPort),
      '--heartbeat-ms',
      '200',
    ];
    const plugin: Running = startCommand('src/plugin/main.js', pluginArgs);
    const cfg = path.join(dir, 'acl_manager.cfg');
    fs.writeFileSync(
      cfg,
      `[global]\nPluginAddress=127.0.0.1\nLocalAddress=127.0.0.1\nPluginGroupsPort=${groupsPort}\nPluginPublishPort=${pubPort}\nAclRequestPort=${aclReq}\nAclPublishPort=${aclPub}\nAclHeartbeatIntervalMillis=200\n[log]\nLogFilePath=None\nLogSeverityScreen=INFO\n[connection]\nConnectionTimeoutMillis=1000\nConnectionKeepaliveIntervalMillis=300\nPluginTimeoutMillis=1000\nResyncSettleMillis=200\n`,
    );
    const manager = startCommand('src/aclmgr/main.js', ['--config-file', cfg]);
    await waitFor('manager synced', () => manager.output().includes('resynchronised with the plugin'), 10000);
    return { data, pluginArgs, plugin, manager, aclReq, aclPub };
  }

  it('publishes the data file’s groups as ACLs, follows changes, and survives a plugin restart', async () => {
    const { data, pluginArgs, manager, aclReq, aclPub, ...started } = await startBoth(
      `${endpoint(1, 'group1')}${endpoint(2, 'group1')}${endpoint(3, 'group2')}`,
    );
    let plugin = started.plugin;
    const sub = new SubscribePeer(`tcp://127.0.0.1:${aclPub}`, ['ep1', 'ep2', 'ep3', 'aclheartbeat']);
    closers.push(sub);
    await sub.inbox.take((m) => m['topic'] === 'aclheartbeat', 'aclheartbeat');
    // What the manager published on the subscriptions themselves (SPEC §5 v2) came before that heartbeat: not what this test follows.
    for (let i; (i = sub.inbox.messages.findIndex((m) => m['type'] === 'ACLUPDATE')) >= 0;) sub.inbox.messages.splice(i, 1);
    const req = new RequestPeer(`tcp://127.0.0.1:${aclReq}`);
    closers.push(req);
    const update = (ep: string) => sub.inbox.take((m) => m['topic'] === ep && m['type'] === 'ACLUPDATE', `ACLUPDATE for ${ep}`, 8000);

    for (const ep of ['ep1', 'ep3'])
      expect(await req.request({ type: 'GETACLSTATE', endpoint_id: ep, issued: Date.now() })).to.include({ rc: 'SUCCESS', endpoint_id: ep });
    expect((await update('ep1'))['acls']).to.deep.equal(acls(['192.168.1.1', '192.168.1.2']));
    expect((await update('ep3'))['acls']).to.deep.equal(acls(['192.168.1.3']));

    // ep2 moves to group2: all three endpoints' ACLs change.
    writeFileAtomic(data, fs.readFileSync(data, 'utf8').replace('group=group1\n\n[endpoint 192_168_1_3]', 'group=group2\n\n[endpoint 192_168_1_3]'));
    expect((await update('ep1'))['acls']).to.deep.equal(acls(['192.168.1.1']));
    // The plugin publishes the two groups one after the other: if group1 comes first, ep2 is in no group for a
    // moment and gets deny-all (failing closed) before group2's update gives it its new ACLs.
    const ep2 = await update('ep2');
    if (JSON.stringify(ep2['acls']) === JSON.stringify({ v4: deny, v6: deny }))
      expect((await update('ep2'))['acls']).to.deep.equal(acls(['192.168.1.2', '192.168.1.3']));
    else expect(ep2['acls']).to.deep.equal(acls(['192.168.1.2', '192.168.1.3']));
    expect((await update('ep3'))['acls']).to.deep.equal(acls(['192.168.1.2', '192.168.1.3']));

    // The plugin stops; while it is away ep1 leaves the data; it comes back; the manager catches up by itself.
    await stop(plugin);
    fs.writeFileSync(data, `${FELIX}${endpoint(2, 'group2')}${endpoint(3, 'group2')}`);
    await new Promise((r) => setTimeout(r, 1500));
    plugin = startCommand('src/plugin/main.js', pluginArgs);
    expect((await update('ep1'))['acls']).to.deep.equal({ v4: deny, v6: deny });
    expect(manager.child.exitCode).to.equal(null);
  });

  it('endpoints named constructor, toString and __proto__ follow a move from group1 to group2 (issue #11)', async () => {
    // Names that `id in members` finds on every object; `__proto__` is lost by `members[id] = …`.
    const ids = ['constructor', 'toString', '__proto__'];
    const endpoints = (group: string) => `${endpoint(1, 'group1')}${ids.map((id, i) => endpoint(i + 2, group, id)).join('')}${endpoint(5, 'group2')}`;
    const { data, aclReq, aclPub } = await startBoth(endpoints('group1'));
    const sub = new SubscribePeer(`tcp://127.0.0.1:${aclPub}`, [...ids, 'aclheartbeat']);
    closers.push(sub);
    await sub.inbox.take((m) => m['topic'] === 'aclheartbeat', 'aclheartbeat');
    const req = new RequestPeer(`tcp://127.0.0.1:${aclReq}`);
    closers.push(req);
    /** Waits for `ep`'s ACLs (exact topic) to become `expected`, then asks again so a stale state cannot hide behind a passing update. */
    async function settles(ep: string, expected: unknown): Promise<void> {
      const deadline = Date.now() + 8000;
      let last: unknown;
      do {
        last = (await sub.inbox.take((m) => m['topic'] === ep && m['type'] === 'ACLUPDATE', `ACLUPDATE for ${ep}`, Math.max(deadline - Date.now(), 1)))['acls'];
      } while (JSON.stringify(last) !== JSON.stringify(expected));
      expect(await req.request({ type: 'GETACLSTATE', endpoint_id: ep, issued: Date.now() })).to.include({ rc: 'SUCCESS', endpoint_id: ep });
      expect((await sub.inbox.take((m) => m['topic'] === ep && m['type'] === 'ACLUPDATE', `ACLUPDATE for ${ep}`))['acls'], ep).to.deep.equal(expected);
    }

    for (const ep of ids)
      expect(await req.request({ type: 'GETACLSTATE', endpoint_id: ep, issued: Date.now() })).to.include({ rc: 'SUCCESS', endpoint_id: ep });
    for (const ep of ids) await settles(ep, acls(['192.168.1.1', '192.168.1.2', '192.168.1.3', '192.168.1.4']));

    writeFileAtomic(data, `${FELIX}${endpoints('group2')}`);
    for (const ep of ids) await settles(ep, acls(['192.168.1.2', '192.168.1.3', '192.168.1.4', '192.168.1.5']));
  });
});
