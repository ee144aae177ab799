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
import { LAB_METRICS_PORTS } from '../../src/lab/state.js';
import { formatMatrix, measureMatrix, probeOk } from '../../src/lab/matrix.js';
import { waitFor } from '../../src/common/poll.js';
import { ROOT } from '../support/process.js';
import { useLab } from '../support/lab.js';
import { errorMessage } from '../../src/common/errors.js';

/**
 * A SUB socket subscribed to everything: prints each topic received as a JSON line as it comes, and
 * stops when its stdin ends (or after `ms`, should nobody end it). With a server key and a key pair
 * it is a CURVE client, without them a plain one.
 */
const SUBSCRIBER = `
import { Subscriber } from 'zeromq';
const [address, ms, serverKey, publicKey, secretKey] = process.argv.slice(1);
const sub = new Subscriber(serverKey ? { curveServerKey: serverKey, curvePublicKey: publicKey, curveSecretKey: secretKey } : {});
sub.connect(address);
sub.subscribe();
const stop = () => sub.close();
setTimeout(stop, Number(ms));
process.stdin.on('end', stop);
process.stdin.resume();
try {
  for await (const [topic] of sub) process.stdout.write(JSON.stringify(topic.toString()) + '\\n');
} catch {}
process.exit(0);
`;

/** A SUBSCRIBER running in a host's namespace: the topics it has received so far, and a way to stop it. */
interface Listening {
  topics: string[];
  /** Ends its stdin; resolves with every topic it received. */
  stop(): Promise<string[]>;
}

/** The sum of a counter's samples (every label set) in Prometheus text. */
function counterTotal(text: string, name: string): number {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

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

  /** A SUB on the ACL manager's 9906 from inside host `h`, with the felix keys or none, listening until stopped. */
  function subscribe(h: LabHost, keyed: boolean): Listening {
    const keys = keyed
      ? [lab!.keyFile('aclmgr', 'pub'), lab!.keyFile('felix', 'pub'), lab!.keyFile('felix', 'key')].map((f) => fs.readFileSync(f, 'utf8').trim())
      : [];
    const child = execa('ip', ['netns', 'exec', h.ns, process.execPath, '--input-type=module', '-e', SUBSCRIBER, `tcp://${h.ip}:9906`, '60000', ...keys], {
      cwd: ROOT,
      timeout: 70000,
    });
    const topics: string[] = [];
    let partial = '';
    child.stdout.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop()!;
      for (const l of lines) if (l) topics.push(JSON.parse(l) as string);
    });
    return {
      topics,
      stop: async () => {
        child.stdin.end();
        await child;
        return topics;
      },
    };
  }

  /** Handshakes the ACL manager has refused (the CURVE refusal counter on its /metrics, in host 1). */
  async function refusals(): Promise<number> {
    const script = `fetch('http://127.0.0.1:${LAB_METRICS_PORTS['acl-manager']}/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))`;
    const r = await execa('ip', ['netns', 'exec', lab!.hosts[0]!.ns, process.execPath, '-e', script]);
    return counterTotal(r.stdout, 'calico_curve_handshakes_refused_total');
  }

  it('configures every daemon with the lab’s keys', () => {
    const felixCfg = fs.readFileSync(path.join(dir, 'felix-instance-2.cfg'), 'utf8');
    expect(felixCfg).to.match(/^\[security\]\nCurveSecretKeyFile = .*\/keys\/felix\.key$/m);
    expect(fs.readFileSync(path.join(dir, 'acl_manager.cfg'), 'utf8')).to.match(/^CurveClientKeysFile = .*\/keys\/clients\.txt$/m);
    expect(
      fs
        .readFileSync(path.join(dir, 'keys', 'clients.txt'), 'utf8')
        .trim()
        .split('\n'),
    ).to.have.length(3);
  });

  it('lets containers of one group talk, across hosts too, and keeps groups apart', async () => {
    await waitFor('the seed’s connectivity rule', async () => (await measureMatrix(lab!)).every(probeOk), 30000, 200).catch(async (err: unknown) => {
      throw new Error(`${errorMessage(err)}\n${formatMatrix(await measureMatrix(lab!))}`);
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
    const refusedBefore = await refusals();
    const unkeyed = subscribe(h1, false);
    const keyed = subscribe(h1, true);
    try {
      // The keyed one is in (a heartbeat came), then the move goes out and reaches it.
      await waitFor('a heartbeat at the keyed subscriber', () => keyed.topics.includes('aclheartbeat'), 20000, 50);
      lab!.setGroup(c2.ip, 'g1');
      await waitFor('the moved endpoint’s ACLs at the keyed subscriber', () => keyed.topics.includes(moved), 20000, 50);
      // The unkeyed one, started at the same time, has had as long, and tried: the manager refused it.
      await waitFor('the unkeyed handshake refused', async () => (await refusals()) > refusedBefore, 20000, 200);
    } finally {
      await Promise.all([unkeyed.stop(), keyed.stop()]);
    }
    expect(unkeyed.topics, 'the unkeyed subscriber').to.deep.equal([]);
    await waitFor(`${c2.ip} to reach g1 after the move`, async () => (await lab!.ping(c2, c4.ip)) && (await lab!.tcp(c1, c2.ip)), 20000, 100);
  });
});
