/**
 * Felix dataplane benchmark (printed, not asserted). For each size N, each in
 * a fresh network namespace with N veth endpoints:
 *   ours        — Dataplane: time from the first upsert to all programmed; then one ACL change with N present
 *   floor       — the same rules, sets and routes in one batch per tool
 *   per-command — one iptables / ipset / ip command per rule (the 2014 way)
 *
 * Usage: node dist/bench/felix/run.js [--sizes 100,300,1000] [--per-command-max 100] [--repeat 3]
 * ours and floor run alternately `--repeat` times (the median is printed): the
 * machine is shared, and one run's noise can exceed the difference measured.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { createNetns, deleteAllNetns, deleteNetns, Netns } from '../../test/support/netns.js';
import { DataplaneDriver } from './driver-client.js';
import { aclsFor, vethBatch, workload } from './workload.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}
const sizes = arg('sizes', '100,300,1000').split(',').map(Number);
const perCommandMax = Number(arg('per-command-max', '100'));
const repeat = Number(arg('repeat', '3'));
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const BASELINE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'baseline.js');

async function freshHost(n: number, label: string): Promise<Netns> {
  const ns = await createNetns(`${label}${n}`);
  await ns.run('ip', ['-batch', '-'], { input: vethBatch(workload(n)), timeoutMs: 600000 });
  return ns;
}

async function baseline(mode: string, n: number): Promise<{ ms: number; commands: number; rules: number }> {
  const ns = await freshHost(n, mode === 'floor' ? 'fl' : 'pc');
  try {
    const out = await ns.run(process.execPath, [BASELINE, mode, String(n)], { timeoutMs: 3600000 });
    return JSON.parse(out) as { ms: number; commands: number; rules: number };
  } finally {
    await deleteNetns(ns);
  }
}

async function ours(n: number): Promise<{ ms: number; changeMs: number; commands: Record<string, number>; routes: number; rules: number }> {
  const ns = await freshHost(n, 'dp');
  const driver = new DataplaneDriver(ns.name);
  try {
    const w = workload(n);
    await driver.send({ op: 'start' });
    const items = [...w.map(({ spec }) => ({ op: 'upsert', ep: spec })), ...w.map(({ spec, acls }) => ({ op: 'acls', id: spec.id, acls }))];
    const load = await driver.send({ op: 'batch', items, wait: true });
    const notProgrammed = (await Promise.all(w.map(({ spec }) => driver.send({ op: 'status', id: spec.id }))))
      .filter((r) => !(r.result as { programmed: boolean }).programmed).length;
    if (notProgrammed) throw new Error(`${notProgrammed} endpoints not programmed`);
    const mid = w[Math.floor(n / 2)]!;
    const change = await driver.send({ op: 'acls', id: mid.spec.id, acls: aclsFor(Math.floor(n / 2), n, 1), wait: true });
    const members = await ns.run('ipset', ['list', `felix-to-port-${mid.spec.id.slice(0, 11)}`]);
    if (!members.includes('tcp:9001')) throw new Error('ACL change not enforced');
    const commands = (await driver.send({ op: 'stats' })).result as Record<string, number>;
    const routes = (await ns.run('ip', ['route'])).split('\n').filter((l) => l.includes(' dev tap')).length;
    const rules = (await ns.run('iptables-save')).split('\n').filter((l) => l.startsWith('-A felix-')).length
      + (await ns.run('ipset', ['save'])).split('\n').filter((l) => l.startsWith('add ')).length;
    return { ms: load.ms, changeMs: change.ms, commands, routes, rules };
  } finally {
    await driver.stop();
    await deleteNetns(ns);
  }
}

const fmt = (ms: number): string => (ms / 1000).toFixed(2).padStart(7);
const rate = (rules: number, ms: number): string => String(Math.round(rules / (ms / 1000))).padStart(8);

async function main(): Promise<void> {
  const { stdout: version } = await execa('iptables', ['--version']);
  console.log(`Felix dataplane benchmark — ${version}; ~35 ACL set entries per endpoint; times in seconds, median of ${repeat}`);
  let perCommandRate: number | null = null;
  for (const n of sizes) {
    const oursRuns: Awaited<ReturnType<typeof ours>>[] = [];
    const floorRuns: Awaited<ReturnType<typeof baseline>>[] = [];
    for (let r = 0; r < repeat; r++) {
      oursRuns.push(await ours(n));
      floorRuns.push(await baseline('floor', n));
    }
    const o = { ...oursRuns[0]!, ms: median(oursRuns.map((x) => x.ms)), changeMs: median(oursRuns.map((x) => x.changeMs)) };
    const floor = { ...floorRuns[0]!, ms: median(floorRuns.map((x) => x.ms)) };
    const spread = (xs: number[]): string => xs.map((x) => (x / 1000).toFixed(2)).join(' ');
    let pc: { ms: number; note: string };
    if (n <= perCommandMax) {
      const r = await baseline('per-command', n);
      perCommandRate = r.rules / r.ms;
      pc = { ms: r.ms, note: `measured, ${r.commands} commands` };
    } else if (perCommandRate !== null) {
      pc = { ms: floor.rules / perCommandRate, note: 'extrapolated linearly from the largest measured size (optimistic: nft per-command cost grows with the ruleset)' };
    } else {
      pc = { ms: NaN, note: 'skipped' };
    }
    console.log(`\nN=${n}: ${o.routes} routes, ${o.rules} iptables rules + ipset entries`);
    console.log(`  ours         ${fmt(o.ms)} s ${rate(o.rules, o.ms)} rules/s   runs: ${spread(oursRuns.map((x) => x.ms))}; commands: ${JSON.stringify(o.commands)}`);
    console.log(`  floor        ${fmt(floor.ms)} s ${rate(floor.rules, floor.ms)} rules/s   runs: ${spread(floorRuns.map((x) => x.ms))} (one ipset restore, one iptables-restore, one ip -batch)`);
    console.log(`  per-command  ${fmt(pc.ms)} s ${Number.isNaN(pc.ms) ? '       -' : rate(floor.rules, pc.ms)} rules/s   (${pc.note})`);
    console.log(`  ratios: per-command/ours = ${(pc.ms / o.ms).toFixed(1)}× (goal ≥10× at 100); ours/floor = ${(o.ms / floor.ms).toFixed(2)}× (goal ≤1.5× at 300, 1000)`);
    console.log(`  one ACL change with ${n} present: ${o.changeMs.toFixed(1)} ms until enforced (median; runs: ${oursRuns.map((x) => x.changeMs.toFixed(1)).join(' ')}; goal <100 ms at 1000)`);
  }
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => void deleteAllNetns());
