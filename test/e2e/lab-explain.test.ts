/**
 * End to end, issue #16 ("Why can't A reach B?"): the demo's two-host lab
 * with every real component. Every ordered pair of the demo's matrix, IPv4
 * and IPv6, is explained for TCP, UDP and ICMP from what the daemons report,
 * and a real probe of that protocol and port must agree with the verdict;
 * the verdict must be the seed's rule (same group: allowed). Then the built
 * commands, as a user runs them: `calico-lab explain` and `calico-status
 * explain --lab-dir`.
 */
import { expect } from 'chai';
import type { Lab } from '../../src/lab/lab.js';
import { matrixPairs } from '../../src/lab/matrix.js';
import { LabExplanation, agrees, explainInLab, labExplainSession } from '../../src/lab/explain.js';
import type { QueryResult } from '../../src/status/format.js';
import { runCommand } from '../support/process.js';
import { useLab } from '../support/lab.js';

/** The demo's containers (src/lab/demo.ts): address or pair, group, host. */
const CONTAINERS: Array<[string, string, string]> = [
  ['192.168.1.1', 'group1', 'instance-1'],
  ['192.168.1.2', 'group2', 'instance-1'],
  ['192.168.1.4', 'group1', 'instance-2'],
  ['192.168.1.3', 'group1', 'instance-1'],
  ['fd00:192:168::1:1', 'group1', 'instance-1'],
  ['fd00:192:168::1:2', 'group2', 'instance-1'],
  ['fd00:192:168::1:4', 'group1', 'instance-2'],
  ['192.168.1.5,fd00:192:168::1:5', 'group1', 'instance-2'],
];

/** Runs `work` over `items`, at most `limit` at a time, results in order. */
async function inBatches<T, R>(items: T[], limit: number, work: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await work(items[i]!, i);
      }
    }),
  );
  return out;
}

describe('lab end to end: explain agrees with the kernel for the whole demo matrix (issue #16)', function () {
  this.timeout(300000);
  const fixture = useLab('clx');
  let dir: string;
  let lab: Lab | undefined;

  const run = (script: string, ...args: string[]) => runCommand(script, args, { timeoutMs: 60000 });

  before(async () => {
    ({ lab, dir } = fixture);
    for (const [ip, group, host] of CONTAINERS) await lab.addContainer(ip, group, host);
  });

  it('every pair × tcp, udp, icmp: the verdict is the seed rule and a real probe agrees', async () => {
    const pairs = matrixPairs(lab!.containers);
    expect(pairs.length).to.equal(32);
    const cases = pairs.flatMap((p, i) =>
      (['tcp', 'udp', 'icmp'] as const).map((protocol) => ({ ...p, packet: { protocol, port: protocol === 'icmp' ? null : 20000 + i } })),
    );
    // The daemons need a moment after the last container: wait until every pair is explained as the rule says.
    const session = () => labExplainSession(lab!);
    let results: LabExplanation[] = [];
    for (let attempt = 0; attempt < 20; attempt++) {
      const s = session();
      const tried = await inBatches(cases, 8, (c) =>
        explainInLab(lab!, s, { src: c.fromIp, dst: c.toIp, packet: c.packet }).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err)))),
      );
      const failed = tried.find((r): r is Error => r instanceof Error);
      if (failed && attempt === 19) throw failed;
      results = tried.filter((r): r is LabExplanation => !(r instanceof Error));
      if (!failed && results.every((r, i) => (r.explanation.verdict === 'ALLOW') === cases[i]!.expected && agrees(r))) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    const wrong = results.flatMap((r, i) => {
      const c = cases[i]!;
      const verdictOk = (r.explanation.verdict === 'ALLOW') === c.expected;
      return verdictOk && agrees(r) === true
        ? []
        : [`${c.fromIp} -> ${c.toIp} ${c.packet.protocol}: expected ${c.expected ? 'ALLOW' : 'DENY'}, ${r.explanation.summary}; probe ${r.probe}`];
    });
    expect(wrong, wrong.join('\n')).to.deep.equal([]);
    // Denials land where the rules put them: IPv4 at the destination's inbound chain (the prototype's
    // outbound 0.0.0.0/0 lets it out), IPv6 at the source's outbound chain (no ::/0 outbound).
    for (const [i, r] of results.entries()) {
      const c = cases[i]!;
      if (c.expected) continue;
      expect(r.explanation.deniedAt, r.explanation.summary).to.deep.equal(
        c.family === 4 ? { host: c.to.host, hop: 'inbound' } : { host: c.from.host, hop: 'outbound' },
      );
      expect(r.explanation.summary).to.include('it is in ').and.include('allows only members of');
    }
  });

  it('calico-lab explain, as the README shows it: verdict, hop, reason, and the kernel agreeing', async () => {
    const c2 = lab!.container('192.168.1.2');
    const c4 = lab!.container('192.168.1.4');
    const r = await run('src/lab/main.js', 'explain', '192.168.1.2', '192.168.1.4', '--protocol', 'tcp', '--port', '80', '--dir', dir);
    expect(r.code, r.output).to.equal(0);
    const lines = r.output.trimEnd().split('\n');
    expect(lines[0]).to.equal(`explain IPv4 192.168.1.2 (${c2.id} on instance-1) → 192.168.1.4 (${c4.id} on instance-2), tcp port 80, a new connection`);
    expect(r.output).to.match(
      /^ {2}route +\[instance-1\] 192\.168\.1\.4 via 198\.18\.0\.2 dev \S+ proto bird \(next hop towards instance-2, learned over BGP\)$/m,
    );
    expect(lines.at(-2)).to.equal(
      `DENY at instance-2 inbound to ${c4.id}: 192.168.1.2 is not in any allowed cidr; it is in group2; group1 allows only members of group1`,
    );
    expect(lines.at(-1)).to.equal('probe: 192.168.1.2 → 192.168.1.4 tcp port 80 was dropped; the kernel AGREES with the explanation');

    const ok = await run('src/lab/main.js', 'explain', '192.168.1.1', '192.168.1.4', '--protocol', 'udp', '--port', '5353', '--dir', dir, '--json');
    expect(ok.code, ok.output).to.equal(0);
    const doc = JSON.parse(ok.output) as LabExplanation & { agrees: boolean };
    expect(doc.explanation.verdict).to.equal('ALLOW');
    expect(doc.probe).to.equal(true);
    expect(doc.agrees).to.equal(true);
  });

  it('the denied counter of an endpoint rises when the other group pings it, and explain shows it', async () => {
    const c2 = lab!.container('192.168.1.2');
    const c4 = lab!.container('192.168.1.4');
    const deniedInbound = async (): Promise<number> => {
      const r = await run('src/status/main.js', '--lab-dir', dir, '--json');
      const hosts = JSON.parse(r.output) as Array<{ host: string; results: QueryResult[] }>;
      const row = hosts.flatMap((h) => h.results.flatMap((q) => q.status?.endpoints ?? [])).find((e) => e.id === c4.id);
      return row!.deniedPackets!.inbound;
    };
    const before = await deniedInbound();
    for (let i = 0; i < 3; i++) expect(await lab!.ping(c2, '192.168.1.4')).to.equal(false);
    expect(await deniedInbound()).to.be.at.least(before + 3);
    const x = await run('src/status/main.js', 'explain', '192.168.1.2', '192.168.1.4', '--lab-dir', dir);
    expect(x.output).to.match(/felix-to chain of \S+: programmed, .*; \d+ packets denied inbound so far/);
  });

  it('calico-status explain --lab-dir: exit 0 allowed, 1 denied, 2 for an address no endpoint has; ids work as well as addresses', async () => {
    const c1 = lab!.container('192.168.1.1');
    const c6 = lab!.container('fd00:192:168::1:2');
    const allowed = await run('src/status/main.js', 'explain', c1.id, '192.168.1.3', '--lab-dir', dir);
    expect(allowed.code, allowed.output).to.equal(0);
    expect(allowed.output).to.include('ALLOW 192.168.1.1 → 192.168.1.3 icmp: out of').and.include('(local)');
    const denied = await run('src/status/main.js', 'explain', c6.id, 'fd00:192:168::1:4', '--protocol', 'tcp', '--port', '22', '--lab-dir', dir);
    expect(denied.code, denied.output).to.equal(1);
    expect(denied.output).to.include(
      `DENY at instance-1 outbound from ${c6.id}: fd00:192:168::1:4 is not in any allowed cidr; it is in group1; group2 allows only members of group2`,
    );
    const unknown = await run('src/status/main.js', 'explain', '192.168.1.1', '192.168.1.99', '--lab-dir', dir);
    expect(unknown.code, unknown.output).to.equal(2);
    expect(unknown.output.trim()).to.equal('calico-status: DST 192.168.1.99: no endpoint with that address on the Felixes asked (instance-1, instance-2)');
    const noPort = await run('src/status/main.js', 'explain', '192.168.1.1', '192.168.1.4', '--protocol', 'tcp', '--lab-dir', dir);
    expect(noPort.code, noPort.output).to.equal(2);
    expect(noPort.output).to.include('--port is needed with protocol tcp');
  });
});
