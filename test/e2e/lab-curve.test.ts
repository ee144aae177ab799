/**
 * End to end with CurveZMQ on every socket (`calico-lab up --curve`): the
 * seed's group rule still holds across two hosts, and a peer without the
 * lab's keys cannot read the ACL publications on 9906.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { type Lab, type LabContainer, type LabHost, endpointIdFor } from '../../src/lab/lab.js';
import { formatMatrix, measureMatrix, probeOk } from '../../src/lab/matrix.js';
import { waitFor } from '../../src/common/poll.js';
import { ROOT } from '../support/process.js';
import { useLab } from '../support/lab.js';

/**
 * A SUB socket subscribed to everything: prints the topics received as JSON, once `until` arrives or after `ms`.
 * With a server key and a key pair it is a CURVE client, without them a plain one.
 */
const SUBSCRIBER = `
import { Subscriber } from 'zeromq';
const [address, ms, until, serverKey, publicKey, secretKey] = process.argv.slice(1);
const sub = new Subscriber(serverKey ? { curveServerKey: serverKey, curvePublicKey: publicKey, curveSecretKey: secretKey } : {});
sub.connect(address);
sub.subscribe();
const topics = [];
setTimeout(() => sub.close(), Number(ms));
try {
  for await (const [topic] of sub) {
    topics.push(topic.toString());
    if (topics.at(-1) === until) break;
  }
} catch {}
process.stdout.write(JSON.stringify(topics));
process.exit(0);
`;

describe('lab end to end with CurveZMQ (two hosts, every socket authenticated)', function () {
  this.timeout(120000);
  const fixture = useLab('clc', { curve: true });
  let lab: Lab | undefined;
  let dir: string;
  let c1: LabContainer, c2: LabContainer, c4: LabContainer;

  before(async () => {
    ({ lab, dir } = fixture);
    c1 = await lab.addContainer('192.168.60.1', 'g1', 'instance-1');
    c2 = await lab.addContainer('192.168.60.2', 'g2', 'instance-1');
    c4 = await lab.addContainer('192.168.60.4', 'g1', 'instance-2');
  });

  /** Topics a SUB on the ACL manager's 9906 receives from inside host `h`, with the felix keys or none. */
  async function subscribe(h: LabHost, ms: number, until: string, keyed: boolean): Promise<string[]> {
    const keys = keyed ? [lab!.keyFile('aclmgr', 'pub'), lab!.keyFile('felix', 'pub'), lab!.keyFile('felix', 'key')].map((f) => fs.readFileSync(f, 'utf8').trim()) : [];
    const r = await execa('ip', ['netns', 'exec', h.ns, process.execPath, '--input-type=module', '-e', SUBSCRIBER, `tcp://${h.ip}:9906`, String(ms), until, ...keys], {
      cwd: ROOT,
      timeout: ms + 10000,
    });
    return JSON.parse(r.stdout) as string[];
  }

  it('configures every daemon with the lab’s keys', () => {
    const felixCfg = fs.readFileSync(path.join(dir, 'felix-instance-2.cfg'), 'utf8');
    expect(felixCfg).to.match(/^\[security\]\nCurveSecretKeyFile = .*\/keys\/felix\.key$/m);
    expect(fs.readFileSync(path.join(dir, 'acl_manager.cfg'), 'utf8')).to.match(/^CurveClientKeysFile = .*\/keys\/clients\.txt$/m);
    expect(fs.readFileSync(path.join(dir, 'keys', 'clients.txt'), 'utf8').trim().split('\n')).to.have.length(3);
  });

  it('lets containers of one group talk, across hosts too, and keeps groups apart', async () => {
    await waitFor('the seed’s connectivity rule', async () => (await measureMatrix(lab!)).every(probeOk), 30000, 200).catch(async (err: Error) => {
      throw new Error(`${err.message}\n${formatMatrix(await measureMatrix(lab!))}`);
    });
    expect(await lab!.ping(c1, c4.ip)).to.equal(true);
    expect(await lab!.tcp(c4, c1.ip)).to.equal(true);
    expect(await lab!.ping(c2, c1.ip)).to.equal(false);
    expect(await lab!.tcp(c2, c4.ip)).to.equal(false);
  });

  it('publishes ACLs only to keyed subscribers: an unkeyed SUB on 9906 receives nothing', async () => {
    const h1 = lab!.hosts[0]!;
    const moved = endpointIdFor(c2.ip);
    // Both listen while the ACL manager heartbeats (every 2 s) and publishes the moved endpoint's new ACLs.
    const unkeyed = subscribe(h1, 4000, moved, false);
    const keyed = subscribe(h1, 20000, moved, true);
    await new Promise((r) => setTimeout(r, 500));
    lab!.setGroup(c2.ip, 'g1');
    const [plain, curve] = await Promise.all([unkeyed, keyed]);
    expect(curve, 'the keyed control subscriber').to.include(moved);
    expect(plain, 'the unkeyed subscriber').to.deep.equal([]);
    await waitFor(`${c2.ip} to reach g1 after the move`, async () => (await lab!.ping(c2, c4.ip)) && (await lab!.tcp(c1, c2.ip)), 20000, 100);
  });
});
