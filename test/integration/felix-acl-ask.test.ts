/**
 * Felix's GETACLSTATE policy (SPEC §5 "No lost first ACLs (v2)"), in process
 * over real ZeroMQ sockets (ipc) and real timers against a fake plugin and
 * fake ACL manager: no GETACLSTATE when the ACLUPDATE arrives within 100 ms
 * of subscribing; an ask after 100 ms otherwise. The exact waits (100, 200,
 * 400 … ms from each reply, one at a time, none once the ACLs came) are
 * proven on a fake clock in test/unit/felix-agent/agent.test.ts.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../../src/common/logging.js';
import type { Acls } from '../../src/common/wire/acl-api.js';
import { FelixAgent } from '../../src/felix/agent.js';
import { loadFelixConfig } from '../../src/felix/config.js';
import type { DataplaneSink } from '../../src/felix/endpoints.js';
import { FakeAclManager, FakePlugin, createMsg, ipc, writeFelixConfig } from '../support/felix-peers.js';
import { waitFor } from '../support/process.js';

type Json = Record<string, unknown>;
const noRules = { inbound: [], outbound: [], inbound_default: 'deny', outbound_default: 'deny' };
const allowAll: Json = { v4: { ...noRules, inbound: [{ group: null, cidr: '0.0.0.0/0', protocol: null, port: null }] }, v6: noRules };

class RecordingDataplane implements DataplaneSink {
  readonly acls = new Map<string, { acls: Acls; at: number }>();
  addressProblem(): Promise<string | null> {
    return Promise.resolve(null);
  }
  upsertEndpoint(): void {}
  setAcls(id: string, acls: Acls): void {
    this.acls.set(id, { acls, at: Date.now() });
  }
  removeEndpoint(): void {}
  cleanupStale(): void {}
}

describe('Felix asks GETACLSTATE only when the ACLUPDATE is late (in process, real sockets)', function () {
  this.timeout(20000);
  let dir: string;
  let plugin: FakePlugin;
  let aclmgr: FakeAclManager;
  let agent: FelixAgent | undefined;
  let dataplane: RecordingDataplane;

  async function start(publishOnSubscribe: boolean, endpoints: Array<{ id: string; ip: string }>): Promise<void> {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'felix-ask-'));
    const cfg = writeFelixConfig(dir);
    plugin = new FakePlugin(ipc(dir, 'plugin.sock'), ipc(dir, 'felix.sock'));
    for (const [i, ep] of endpoints.entries()) plugin.endpoints.set(ep.id, createMsg(ep, `02:00:00:00:00:${(i + 16).toString(16)}`));
    await plugin.listen();
    aclmgr = new FakeAclManager({}, publishOnSubscribe);
    await aclmgr.bind(ipc(dir, 'acl.sock'), ipc(dir, 'aclpub.sock'));
    const { config } = loadFelixConfig(cfg);
    dataplane = new RecordingDataplane();
    agent = await FelixAgent.start({ config, log: createLogger({ name: 'felix', file: null, fileLevel: 'NONE', screenLevel: 'NONE' }), dataplane });
  }

  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
    // Unset if the before hook failed.
    (plugin as FakePlugin | undefined)?.close();
    (aclmgr as FakeAclManager | undefined)?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('sends no GETACLSTATE when the manager publishes on the subscription', async () => {
    const eps = Array.from({ length: 20 }, (_, i) => ({ id: `ep-sub-${String(i).padStart(4, '0')}`, ip: `10.2.0.${i + 1}` }));
    await start(true, []);
    for (const ep of eps) aclmgr.acls.set(ep.id, allowAll);
    for (const ep of eps) await plugin.send(createMsg(ep, '02:00:00:00:00:aa'));
    const subscribed = Date.now();
    await waitFor('ACLs of every endpoint applied', () => eps.every((ep) => dataplane.acls.has(ep.id)), 5000);
    // Felix's REQ to the manager sends a HEARTBEAT only when nothing is queued: one sent after every
    // 100 ms wait has run out shows that no GETACLSTATE was (or it would have gone first).
    const heartbeats = () => aclmgr.rep.inbox.messages.filter((m) => m['type'] === 'HEARTBEAT').length;
    let before = -1;
    await waitFor(
      'a HEARTBEAT from Felix after every first wait ran out',
      () => {
        if (before < 0 && Date.now() - subscribed > 150) before = heartbeats();
        return before >= 0 && heartbeats() > before;
      },
      5000,
      10,
    );
    for (const ep of eps) expect(aclmgr.requestsFor(ep.id), ep.id).to.equal(0);
  });

  it('asks after 100 ms when no ACLUPDATE comes (a 2014 manager), and gets the ACLs', async () => {
    const ep = { id: 'ep-old-0001', ip: '10.2.1.1' };
    await start(false, []);
    aclmgr.acls.set(ep.id, allowAll);
    const sent = Date.now();
    await plugin.send(createMsg(ep, '02:00:00:00:00:bb'));
    await waitFor('ACLs applied', () => dataplane.acls.has(ep.id), 5000);
    const first = aclmgr.rep.inbox.messages.find((m) => m['type'] === 'GETACLSTATE' && m['endpoint_id'] === ep.id);
    expect(first, 'GETACLSTATE').to.not.equal(undefined);
    expect(Number(first!['issued']) - sent).to.be.at.least(90);
    // The next ask would come 200 ms after the reply, Felix's HEARTBEAT (keepalive 300 ms) only after it:
    // with the HEARTBEAT in, there was no second ask.
    const afterAsk = (m: Record<string, unknown>) => aclmgr.rep.inbox.messages.indexOf(m) > aclmgr.rep.inbox.messages.indexOf(first!);
    await waitFor(
      'a HEARTBEAT from Felix after the GETACLSTATE',
      () => aclmgr.rep.inbox.messages.some((m) => m['type'] === 'HEARTBEAT' && afterAsk(m)),
      5000,
      10,
    );
    expect(aclmgr.requestsFor(ep.id)).to.equal(1);
  });
});
