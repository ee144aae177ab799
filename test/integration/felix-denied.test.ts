/**
 * Denied-packet counters (issue #16) from the built `calico-felix` in a
 * network namespace of its own, with real packets between container
 * namespaces: A and B in one group, C in another, D on a tap interface no
 * endpoint owns. What an operator reads — `/metrics`
 * (`calico_felix_denied_packets_total`), `/status` and `calico-status` —
 * rises when C pings A, never goes down when an ACL change rewrites A's
 * chain (Felix edits it in place, so the kernel keeps the DROP's counter),
 * and stays put for pings the ACLs allow.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Container, Netns, createNetns, deleteAllNetns, plugContainer } from '../support/netns.js';
import { FakeAclManager, FakePlugin, createMsg, ipc, suffix, tap, writeFelixConfig } from '../support/felix-peers.js';
import { Running, runCommand, startCommand, stopAll, waitFor } from '../support/process.js';
import { errorMessage } from '../../src/common/errors.js';

type Json = Record<string, unknown>;
const FELIX = 'src/felix/main.js';
const STATUS = 'src/status/main.js';
const METRICS_PORT = 9091;

const A = { id: 'd1d1d1d1d1d1aa01', ip: '192.168.41.1', ip6: 'fd00:41::1' };
const B = { id: 'd2d2d2d2d2d2aa02', ip: '192.168.41.2' };
const C = { id: 'd3d3d3d3d3d3aa03', ip: '192.168.41.3', ip6: 'fd00:41::3' };
/** On a tap interface Felix was never told about. */
const D = { ip: '192.168.41.4', ifname: 'tapd4d4d4d4d4d' };

const rule = (cidr: string, extra: Json = {}) => ({ group: null, cidr, protocol: null, port: null, ...extra });
/** The prototype's group model: inbound from the group's members, outbound anywhere. */
const acls = (v4: Json[], v6: Json[] = []) => ({
  v4: { inbound: v4, outbound: [rule('0.0.0.0/0')], inbound_default: 'deny', outbound_default: 'deny' },
  v6: { inbound: v6, outbound: [rule('::/0')], inbound_default: 'deny', outbound_default: 'deny' },
});
const WEB = [rule(`${A.ip}/32`), rule(`${B.ip}/32`)];

describe('calico-felix denied-packet counters (built command, real packets, issue #16)', function () {
  this.timeout(90000);
  let dir: string;
  let host: Netns;
  let a: Container;
  let b: Container;
  let c: Container;
  let aclmgr: FakeAclManager;
  let plugin: FakePlugin;
  let felix: Running;

  async function metrics(): Promise<string> {
    return host.run(process.execPath, ['-e', `fetch('http://127.0.0.1:${METRICS_PORT}/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))`]);
  }

  /** calico_felix_denied_packets_total for one endpoint (`""`: dispatch), direction and family, as scraped now; undefined if absent. */
  async function denied(endpoint: string, direction: 'inbound' | 'outbound', family: 4 | 6 = 4): Promise<number | undefined> {
    const name = `calico_felix_denied_packets_total{endpoint="${endpoint}",direction="${direction}",family="ipv${family}"} `;
    const line = (await metrics()).split('\n').find((l) => l.startsWith(name));
    return line === undefined ? undefined : Number(line.slice(name.length));
  }

  /** calico-status --json: each endpoint's deniedPackets. */
  async function statusDenied(): Promise<Record<string, { inbound: number; outbound: number } | null>> {
    const r = await runCommand(STATUS, ['--url', `http://127.0.0.1:${METRICS_PORT}`, '--json'], { netns: host.name });
    const status = (JSON.parse(r.output) as Json[])[0]!['status'] as {
      endpoints: Array<{ id: string; deniedPackets: { inbound: number; outbound: number } | null }>;
    };
    return Object.fromEntries(status.endpoints.map((e) => [e.id, e.deniedPackets]));
  }

  /** Felix reuses a counter reading for 10 times what it took (tens of ms here): wait that out, so the next read is fresh. */
  const fresh = () => new Promise((r) => setTimeout(r, 500));

  /** Pings `n` times (200 ms apart); returns how many were answered. */
  async function pings(from: Container, to: string, n: number): Promise<number> {
    const r = await from.ns.exec('ping', ['-c', String(n), '-i', '0.2', '-W', '1', to], { timeoutMs: 15000 });
    const m = /(\d+) received/.exec(r.stdout);
    return m ? Number(m[1]) : 0;
  }

  /** The kernel's counter of the last rule (the final DROP) of one of A's chains. */
  async function kernelDrop(chain: string, tool = 'iptables-save'): Promise<{ rules: number; drop: string }> {
    const lines = (await host.run(tool, ['-c', '-t', 'filter'])).split('\n').filter((l) => l.includes(`-A ${chain} `));
    return { rules: lines.length, drop: lines.at(-1) ?? '' };
  }

  const TO_A = `felix-to-${suffix(A.id)}`;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'felix-denied-'));
    host = await createNetns('dnhost', 'cdnd');
    a = await plugContainer(host, 'dna', `${A.ip},${A.ip6}`, tap(A.id));
    b = await plugContainer(host, 'dnb', B.ip, tap(B.id));
    c = await plugContainer(host, 'dnc', `${C.ip},${C.ip6}`, tap(C.id));
    const cfg = writeFelixConfig(dir, `[metrics]\nMetricsPort = ${METRICS_PORT}\n`);
    plugin = new FakePlugin(ipc(dir, 'plugin.sock'), ipc(dir, 'felix.sock'));
    plugin.endpoints.set(A.id, { ...createMsg(A, a.mac), addrs: [{ addr: A.ip }, { addr: A.ip6 }] });
    plugin.endpoints.set(B.id, createMsg(B, b.mac));
    plugin.endpoints.set(C.id, { ...createMsg(C, c.mac), addrs: [{ addr: C.ip }, { addr: C.ip6 }] });
    await plugin.listen();
    aclmgr = new FakeAclManager();
    await aclmgr.bind(ipc(dir, 'acl.sock'), ipc(dir, 'aclpub.sock'));
    aclmgr.acls.set(A.id, acls(WEB, [rule(`${A.ip6}/128`)]));
    aclmgr.acls.set(B.id, acls(WEB));
    aclmgr.acls.set(C.id, acls([rule(`${C.ip}/32`)], [rule(`${C.ip6}/128`)]));
    felix = startCommand(FELIX, ['--config-file', cfg], { netns: host.name });
    await waitFor(
      'every endpoint programmed with its ACLs, B reaching A',
      async () => {
        const r = await runCommand(STATUS, ['--url', `http://127.0.0.1:${METRICS_PORT}`, '--json'], { netns: host.name });
        const eps = ((JSON.parse(r.output) as Json[])[0]?.['status'] as Json | undefined)?.['endpoints'] as Json[] | undefined;
        return eps?.length === 3 && eps.every((e) => e['programmed'] === true && e['aclAgeSeconds'] !== null) && (await pings(b, A.ip, 1)) === 1;
      },
      30000,
    ).catch((err: unknown) => {
      throw new Error(`${errorMessage(err)}\n${felix.output()}`);
    });
  });

  after(async () => {
    // Unset if the before hook failed.
    (plugin as FakePlugin | undefined)?.close();
    (aclmgr as FakeAclManager | undefined)?.close();
    await stopAll();
    await deleteAllNetns();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  let afterPings = 0;

  it('C (another group) pings A: A’s inbound denied counter rises by the pings, on /metrics, /status and calico-status; C’s outbound does not', async () => {
    const before = (await denied(A.id, 'inbound'))!;
    expect(before).to.be.a('number');
    const cOutBefore = (await denied(C.id, 'outbound'))!;
    expect(await pings(c, A.ip, 5)).to.equal(0, 'denied');
    afterPings = (await denied(A.id, 'inbound'))!;
    expect(afterPings - before).to.be.at.least(5);
    // The pinger's packets left its own chains allowed: they were denied at A's.
    expect(await denied(C.id, 'outbound')).to.equal(cOutBefore);
    // B, in A's group, is allowed: no change.
    expect(await pings(b, A.ip, 3)).to.equal(3);
    await fresh();
    expect(await denied(A.id, 'inbound')).to.equal(afterPings);
    // /status sums both families: IPv4 only so far.
    const v6 = (await denied(A.id, 'inbound', 6))!;
    expect((await statusDenied())[A.id]).to.deep.include({ inbound: afterPings + v6 });
    const text = await runCommand(STATUS, ['--url', `http://127.0.0.1:${METRICS_PORT}`], { netns: host.name });
    expect(text.output).to.match(/^ {2}endpoint\s+interface\s+addresses\s+.*\bdenied in\/out\s+state$/m);
    expect(text.output).to.match(new RegExp(`^ {2}${A.id}\\s+${tap(A.id)}\\s+.*\\s${afterPings + v6}/\\d+\\s+programmed$`, 'm'));
  });

  it('over IPv6 too: the family="ipv6" counter rises, the IPv4 one does not', async () => {
    const v6Before = (await denied(A.id, 'inbound', 6))!;
    expect(v6Before).to.be.a('number');
    expect(await pings(c, A.ip6, 3)).to.equal(0);
    expect((await denied(A.id, 'inbound', 6))! - v6Before).to.be.at.least(3);
    expect(await denied(A.id, 'inbound', 4)).to.equal(afterPings);
  });

  it('an ACL change that rewrites A’s chain (adds rules) keeps the count: it never goes down, and grows with more pings', async () => {
    const chainBefore = await kernelDrop(TO_A);
    await aclmgr.set(
      A.id,
      acls([...WEB, rule(`${C.ip}/32`, { protocol: 'tcp', port: 7000 }), rule('10.0.0.0/8', { protocol: 'udp' })], [rule(`${A.ip6}/128`)]),
    );
    const chainAfter = (await waitFor('A’s chain rewritten with the new rules', async () => {
      const k = await kernelDrop(TO_A);
      return k.rules > chainBefore.rules ? k : null;
    }))!;
    // The kernel's counter of the DROP carried across the rewrite.
    expect(chainAfter.drop).to.equal(chainBefore.drop);
    expect(chainAfter.drop).to.match(/^\[[1-9]\d*:\d+\] -A felix-to-\S+ -j DROP$/);
    expect(await denied(A.id, 'inbound')).to.equal(afterPings);
    expect(await pings(c, A.ip, 3)).to.equal(0, 'still denied: only tcp 7000 was opened');
    const more = (await denied(A.id, 'inbound'))!;
    expect(more - afterPings).to.be.at.least(3);
    afterPings = more;
  });

  it('pings the ACLs then allow do not raise it', async () => {
    await aclmgr.set(A.id, acls([...WEB, rule(`${C.ip}/32`, { protocol: 'icmp' })], [rule(`${A.ip6}/128`)]));
    // Pinged only once the kernel has the rule: a ping before it would rightly count.
    await waitFor('A’s chain allowing icmp', async () =>
      (await host.run('iptables-save', ['-t', 'filter'])).includes(`-A ${TO_A} -p icmp -m set --match-set `),
    );
    expect(await pings(c, A.ip, 5)).to.equal(5);
    await fresh();
    expect(await denied(A.id, 'inbound')).to.equal(afterPings);
    expect((await statusDenied())[A.id]!.inbound).to.be.at.least(afterPings);
  });

  it('a tap interface no endpoint owns: its packets meet the dispatch chain’s DROP, counted under endpoint ""', async () => {
    const before = (await denied('', 'outbound'))!;
    expect(before).to.be.a('number');
    const d = await plugContainer(host, 'dnd', D.ip, D.ifname);
    // Felix knows nothing of D: route its address to its interface (so the reverse-path check passes) and skip ARP.
    await host.run('ip', ['route', 'add', `${D.ip}/32`, 'dev', D.ifname]);
    const mac = (await host.run('cat', [`/sys/class/net/${D.ifname}/address`])).trim();
    await d.ns.run('ip', ['neigh', 'replace', A.ip, 'lladdr', mac, 'dev', 'eth0', 'nud', 'permanent']);
    expect(await pings(d, A.ip, 4)).to.equal(0);
    expect((await denied('', 'outbound'))! - before).to.be.at.least(4);
    expect(await denied(A.id, 'inbound')).to.equal(afterPings, 'never reached A’s chain');
  });
});
