/**
 * Felix's GETACLSTATE policy (SPEC §5 "No lost first ACLs (v2)"), in process
 * over real ZeroMQ sockets (ipc) against a fake plugin and fake ACL manager:
 * no GETACLSTATE when the ACLUPDATE arrives within 100 ms of subscribing; an
 * ask after 100 ms otherwise, one at a time, each twice as late as the last.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../../src/common/logging.js';
import type { Acls } from '../../src/common/wire/acl-api.js';
import { FelixAgent } from '../../src/felix/agent.js';
import { loadFelixConfig } from '../../src/felix/config.js';
import type { DataplaneSink, EndpointSpec } from '../../src/felix/endpoints.js';
import { FakeAclManager, FakePlugin, createMsg, ipc, writeFelixConfig } from '../support/felix-peers.js';
import { waitFor } from '../support/process.js';

type Json = Record<string, unknown>;
const noRules = { inbound: [], outbound: [], inbound_default: 'deny', outbound_default: 'deny' };
const allowAll: Json = { v4: { ...noRules, inbound: [{ group: null, cidr: '0.0.0.0/0', protocol: null, port: null }] }, v6: noRules };

class RecordingDataplane implements DataplaneSink {
  readonly acls = new Map<string, { acls: Acls; at: number }>();
  async addressProblem(): Promise<string | null> {
    return null;
  }
  upsertEndpoint(_ep: EndpointSpec): void {}
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
    plugin?.close();
    aclmgr?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('sends no GETACLSTATE when the manager publishes on the subscription', async () => {
    const eps = Array.from({ length: 20 }, (_, i) => ({ id: `ep-sub-${String(i).padStart(4, '0')}`, ip: `10.2.0.${i + 1}` }));
    await start(true, []);
    for (const ep of eps) aclmgr.acls.set(ep.id, allowAll);
    for (const ep of eps) await plugin.send(createMsg(ep, '02:00:00:00:00:aa'));
    await waitFor('ACLs of every endpoint applied', () => eps.every((ep) => dataplane.acls.has(ep.id)), 5000);
    // Well past the 100 ms wait (and a doubled one): still no request.
    await new Promise((r) => setTimeout(r, 600));
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
    await new Promise((r) => setTimeout(r, 500));
    expect(aclmgr.requestsFor(ep.id)).to.equal(1);
  });

  it('keeps asking for unknown ACLs, one request at a time, each wait twice the last (100, 200, 400, … ms)', async () => {
    const ep = { id: 'ep-unknown-01', ip: '10.2.2.1' };
    await start(false, []);
    const sent = Date.now();
    await plugin.send(createMsg(ep, '02:00:00:00:00:cc'));
    await new Promise((r) => setTimeout(r, 1650));
    const asks = aclmgr.rep.inbox.messages.filter((m) => m['type'] === 'GETACLSTATE' && m['endpoint_id'] === ep.id).map((m) => Number(m['issued']) - sent);
    // ≈100, ≈300, ≈700, ≈1500 ms (each measured from the previous reply): 4, not the 16 a 100 ms poll would make.
    expect(asks.length, JSON.stringify(asks)).to.be.within(3, 4);
    for (let i = 1; i < asks.length; i++) expect(asks[i]! - asks[i - 1]!, JSON.stringify(asks)).to.be.at.least(100 * 2 ** i - 20);
  });
});
