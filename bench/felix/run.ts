/**
 * Felix benchmark over the wire: what a user feels. Printed, not asserted.
 *
 * For each workload and size N, each run in a fresh network namespace with N
 * veth endpoint interfaces:
 *   ours         the built `calico-felix` (dist/src/felix/main.js) in the namespace, fed the way its
 *                peers feed it over ZeroMQ (ipc:// sockets in a temp dir): a plugin stand-in answers
 *                RESYNCSTATE (0 endpoints at start) and then pushes one ENDPOINTCREATED per endpoint
 *                (resync_id null) on its REQ socket, one request at a time; an ACL-manager stand-in
 *                publishes each endpoint's ACLUPDATE as soon as its create has been answered, and answers
 *                GETACLSTATE by publishing. Measured: first ENDPOINTCREATED sent → every endpoint
 *                programmed with its ACLs, and last ENDPOINTCREATED answered → all programmed, as seen
 *                from outside Felix (its /metrics, polled from inside the namespace), then confirmed
 *                in the kernel (endpoint chains, routes, neighbours, a sample of set entries). Then one
 *                ACL change for one endpoint with N present: changed ACLUPDATE published → the new entry
 *                in a set the endpoint's chain references (iptables + ipset, polled).
 *   floor        the version-1 layout (per-endpoint sets and chains with conntrack rules, flat
 *                dispatch, routes) in one ipset restore, one iptables-restore, one ip -batch
 *                (./baseline.ts, ./v1-layout.ts)
 *   per-command  the same, one iptables / ipset / ip command per rule (only up to --per-command-max)
 *
 * Workloads (./workload.ts): distinct (~35 ACL entries of its own per endpoint) and group (N endpoints
 * in 10 groups, members of a group with identical ACLs).
 *
 * Usage: node dist/bench/felix/run.js [--sizes 100,1000,5000] [--repeat 3] [--workload distinct|group|both]
 *          [--group-sizes 1000] [--per-command-max 100] [--log-dir DIR]
 * The group workload runs at --group-sizes: 1000 by default, the --sizes given otherwise. ours and
 * floor alternate `--repeat` times; medians are printed with the individual runs (2 shared cores: noisy).
 * --log-dir keeps each run's felix.log. Progress goes to stderr. Needs root; touches nothing outside the namespaces it creates.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { endpointSuffix } from '../../src/common/endpoint-names.js';
import { createNetns, deleteAllNetns, deleteNetns, Netns } from '../../test/support/netns.js';
import { ipc } from '../../test/support/felix-peers.js';
import { Running, startCommand, stop, stopAll } from '../../test/support/process.js';
import { BenchAclManager, BenchPlugin, NsWatch, wall } from './wire-peers.js';
import { Workload, WorkloadKind, aclChange, workloadOf } from './workload.js';
import { plugInterfaces } from './interfaces.js';

const given = (name: string): boolean => process.argv.includes(`--${name}`);
function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}
const list = (s: string): number[] => s.split(',').filter(Boolean).map(Number);
const sizes = list(arg('sizes', '100,1000,5000'));
const groupSizes = list(arg('group-sizes', given('sizes') ? sizes.join(',') : '1000'));
const perCommandMax = Number(arg('per-command-max', '100'));
const repeat = Number(arg('repeat', '3'));
const which = arg('workload', 'both');
/** If given, each run's felix.log is copied there. */
const logDir = given('log-dir') ? path.resolve(arg('log-dir', '.')) : null;
if (!['distinct', 'group', 'both'].includes(which) || !(repeat >= 1) || [...sizes, ...groupSizes].some((n) => !(n > 0))) {
  console.error(
    'usage: run.js [--sizes 100,1000,5000] [--repeat 3] [--workload distinct|group|both] [--group-sizes 1000] [--per-command-max 100] [--log-dir DIR]',
  );
  process.exit(2);
}

const FELIX = 'src/felix/main.js';
const BASELINE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'baseline.js');
const METRICS_PORT = 9091;
const TIMEOUT_MS = 10 * 60 * 1000;
/** Felix's connection settings: realistic (the spec's defaults), not the tests' quick ones. */
const CONNECTION_TIMEOUT_MS = 40000;
const KEEPALIVE_MS = 5000;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const secs = (ms: number): string => (ms / 1000).toFixed(2);
/** Temp dirs (sockets, felix.cfg, felix.log) of runs in progress: removed on a signal too. */
const tempDirs = new Set<string>();
const progress = (msg: string): void => void process.stderr.write(`    … ${msg}\n`);

function writeConfig(dir: string): string {
  const cfg = path.join(dir, 'felix.cfg');
  fs.writeFileSync(
    cfg,
    `[global]\nPluginAddress = ${ipc(dir, 'plugin.sock')}\nACLAddress = ${ipc(dir, 'acl.sock')}\nACLPublishAddress = ${ipc(dir, 'aclpub.sock')}\n` +
      `LocalAddress = ${ipc(dir, 'felix.sock')}\nFelixHostname = bench.example.com\nMetadataAddr = None\n\n` +
      `[log]\nLogFilePath = ${path.join(dir, 'felix.log')}\nLogSeverityFile = ${process.env['FELIX_LOG_LEVEL'] ?? 'INFO'}\nLogSeverityScreen = ERROR\n\n` +
      `[connection]\nConnectionTimeoutMillis = ${CONNECTION_TIMEOUT_MS}\nConnectionKeepaliveIntervalMillis = ${KEEPALIVE_MS}\n\n` +
      `[metrics]\nMetricsPort = ${METRICS_PORT}\nMetricsAddress = 127.0.0.1\n`,
  );
  return cfg;
}

async function freshHost(w: Workload[], label: string): Promise<Netns> {
  const ns = await createNetns(label, 'cfbw');
  const started = Date.now();
  if (w.length >= 1000) progress(`${ns.name}: creating ${w.length} veth pairs`);
  await plugInterfaces(ns, w, TIMEOUT_MS);
  if (w.length >= 1000) progress(`veths ready (and the kernel settled) in ${secs(Date.now() - started)} s`);
  return ns;
}

interface Baseline {
  ms: number;
  commands: number;
  rules: number;
}

async function baseline(mode: 'floor' | 'per-command', kind: WorkloadKind, n: number): Promise<Baseline> {
  const ns = await freshHost(workloadOf(kind, n), mode === 'floor' ? `fl${n}` : `pc${n}`);
  try {
    if (mode === 'per-command') progress(`per-command, ${kind} N=${n}: one process per rule, this takes a while`);
    const out = await ns.run(process.execPath, [BASELINE, mode, String(n), kind], { timeoutMs: 3 * TIMEOUT_MS });
    return JSON.parse(out) as Baseline;
  } finally {
    await deleteNetns(ns);
  }
}

interface Ours {
  /** First ENDPOINTCREATED sent → all programmed. */
  ms: number;
  /** Last ENDPOINTCREATED answered → all programmed. */
  afterLastMs: number;
  createsMs: number;
  changeMs: number;
  changePollMs: number;
  routes: number;
  neighbours: number;
  chains: number;
  sets: number;
  rules: number;
  getAclStates: number;
  resyncs: number;
  polls: number;
  pollMs: number;
  intervalMs: number;
  idleScrapeMs: number;
  /** Felix's own account of its applies until all were programmed: part → count, seconds. */
  applies: Record<string, { count: number; seconds: number }>;
}

/** Rejects as soon as Felix exits, with the tail of its output and log. */
function whileAlive<T>(felix: Running, dir: string, p: Promise<T>): Promise<T> {
  const died = felix.exited.then((code) => {
    let log = '';
    try {
      log = fs.readFileSync(path.join(dir, 'felix.log'), 'utf8').slice(-2000);
    } catch {
      /* no log */
    }
    throw new Error(`calico-felix exited (${code}): ${felix.output().slice(-2000)}\n${log}`);
  });
  died.catch(() => {});
  return Promise.race([p, died]);
}

let logCount = 0;

async function ours(kind: WorkloadKind, n: number): Promise<Ours> {
  const w = workloadOf(kind, n);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'felix-bench-'));
  tempDirs.add(dir);
  const ns = await freshHost(w, `dp${n}`);
  const plugin = new BenchPlugin(ipc(dir, 'plugin.sock'), ipc(dir, 'felix.sock'), { timeoutMs: CONNECTION_TIMEOUT_MS, keepaliveMs: KEEPALIVE_MS });
  const aclmgr = new BenchAclManager(KEEPALIVE_MS);
  let felix: Running | undefined;
  let watch: NsWatch | undefined;
  try {
    await plugin.listen();
    await aclmgr.bind(ipc(dir, 'acl.sock'), ipc(dir, 'aclpub.sock'));
    felix = startCommand(FELIX, ['--config-file', writeConfig(dir)], { netns: ns.name });
    const alive = <T>(p: Promise<T>) => whileAlive(felix!, dir, p);
    watch = new NsWatch(ns.name);
    await alive(watch.send({ op: 'ready', port: METRICS_PORT, intervalMs: 50, timeoutMs: 60000 }));

    // The plugin pushes the containers one by one; the ACL manager publishes each one's ACLs once it is answered.
    const t0 = wall();
    let lastProgress = t0;
    for (const [i, { spec, acls }] of w.entries()) {
      await alive(plugin.create(spec));
      await aclmgr.set(spec.id, acls);
      if (wall() - lastProgress > 5000) {
        lastProgress = wall();
        progress(`ENDPOINTCREATED ${i + 1}/${n} answered (${secs(lastProgress - t0)} s)`);
      }
      if (wall() - t0 > TIMEOUT_MS) throw new Error(`only ${i + 1} of ${n} ENDPOINTCREATED answered after ${TIMEOUT_MS / 60000} min`);
    }
    const tLast = wall();
    const intervalMs = n <= 200 ? 20 : 50;
    const prog = await alive(
      watch.send<{ at: number; polls: number; pollMs: number }>(
        { op: 'programmed', port: METRICS_PORT, n, intervalMs, pace: true, timeoutMs: TIMEOUT_MS },
        (f) => {
          const facts = f as Record<string, number> | null;
          if (facts)
            progress(`programmed ${facts['programmed']}/${n}, without ACLs ${facts['withoutAcls']}, failed ${facts['failed']} (${secs(wall() - t0)} s)`);
        },
      ),
    );

    const scrape = await watch.send<{ ms: number; applies: Record<string, { count: number; seconds: number }> }>({
      op: 'scrape',
      port: METRICS_PORT,
      count: 5,
    });

    // Confirm from the kernel itself.
    const suffixes = new Set(w.map(({ spec }) => endpointSuffix(spec.id)));
    const save = await ns.run('iptables-save', ['-t', 'filter'], { timeoutMs: 120000 });
    const declared = save
      .split('\n')
      .filter((l) => l.startsWith(':felix-'))
      .map((l) => l.slice(1).split(' ')[0]!);
    const chainsOf = (dir: 'to' | 'from') => declared.filter((c) => c.startsWith(`felix-${dir}-`) && suffixes.has(c.slice(`felix-${dir}-`.length))).length;
    const [toChains, fromChains] = [chainsOf('to'), chainsOf('from')];
    if (toChains !== n || fromChains !== n) throw new Error(`kernel has ${toChains} felix-to-S and ${fromChains} felix-from-S chains for ${n} endpoints`);
    const wanted = new Set(w.flatMap(({ spec }) => spec.addrs.map((a) => `${a} dev ${spec.ifname} `)));
    const routes = (await ns.run('ip', ['-4', 'route', 'show'])).split('\n').filter((l) => {
      const m = /^(\S+) dev (\S+) /.exec(l);
      return m !== null && wanted.has(`${m[1]} dev ${m[2]} `);
    }).length;
    const neighbours = (await ns.run('ip', ['-4', 'neigh', 'show', 'nud', 'permanent'])).split('\n').filter((l) => / dev tap\S+ lladdr /.test(l)).length;
    if (routes !== n || neighbours !== n) throw new Error(`kernel has ${routes} routes and ${neighbours} permanent neighbours for ${n} endpoints`);
    for (const i of [...new Set([0, Math.floor(n / 2), n - 1])]) {
      const { spec, expect } = w[i]!;
      const sets = await watch.send<Record<string, string[]>>({ op: 'members', chain: `felix-to-${endpointSuffix(spec.id)}` });
      if (!Object.values(sets).some((m) => m.includes(expect)))
        throw new Error(`endpoint ${spec.id}: ${expect} not in the sets felix-to-${endpointSuffix(spec.id)} references (${Object.keys(sets).join(', ')})`);
    }
    const rules = save.split('\n').filter((l) => l.startsWith('-A felix-')).length;
    const ipsets = (await ns.run('ipset', ['save'], { timeoutMs: 120000 })).split('\n');
    const sets = ipsets.filter((l) => l.startsWith('create felix-')).length;
    const entries = ipsets.filter((l) => l.startsWith('add felix-')).length;

    // One ACL change with N present.
    const mid = Math.floor(n / 2);
    const { spec } = w[mid]!;
    const change = aclChange(kind, w, mid);
    const chain = `felix-to-${endpointSuffix(spec.id)}`;
    const before = await watch.send<Record<string, string[]>>({ op: 'members', chain });
    if (Object.values(before).some((m) => m.includes(change.entry))) throw new Error(`${change.entry} already programmed before the change`);
    const t1 = wall();
    await aclmgr.set(spec.id, change.acls);
    const ch = await alive(watch.send<{ at: number; pollMs: number }>({ op: 'waitEntry', chain, entry: change.entry, intervalMs: 20, timeoutMs: TIMEOUT_MS }));
    return {
      ms: prog.at - t0,
      afterLastMs: prog.at - tLast,
      createsMs: tLast - t0,
      changeMs: ch.at - t1,
      changePollMs: ch.pollMs,
      routes,
      neighbours,
      chains: declared.length,
      sets,
      rules: rules + entries,
      getAclStates: aclmgr.getAclStates,
      resyncs: plugin.resyncs,
      polls: prog.polls,
      pollMs: prog.pollMs,
      intervalMs,
      idleScrapeMs: scrape.ms,
      applies: scrape.applies,
    };
  } finally {
    await watch?.stop();
    if (felix) await stop(felix);
    if (logDir) {
      fs.mkdirSync(logDir, { recursive: true });
      const to = path.join(logDir, `felix-${kind}-${n}-${++logCount}.log`);
      try {
        fs.copyFileSync(path.join(dir, 'felix.log'), to);
        progress(`felix.log → ${to}`);
      } catch {
        /* no log */
      }
    }
    plugin.close();
    aclmgr.close();
    await deleteNetns(ns);
    fs.rmSync(dir, { recursive: true, force: true });
    tempDirs.delete(dir);
  }
}

const runs = (xs: number[], f: (x: number) => string): string => xs.map(f).join(' ');
const ratio = (a: number, b: number): string => (Number.isFinite(a / b) ? `${(a / b).toFixed(a / b >= 10 ? 0 : 2)}×` : '-');

/** Per-command time per rule at the largest size measured, by workload (for extrapolation). */
const perCommandRate = new Map<WorkloadKind, number>();

async function measure(kind: WorkloadKind, n: number): Promise<void> {
  const oursRuns: Ours[] = [];
  const floorRuns: Baseline[] = [];
  for (let r = 0; r < repeat; r++) {
    progress(`${kind} N=${n}, run ${r + 1}/${repeat}: ours`);
    oursRuns.push(await ours(kind, n));
    progress(`${kind} N=${n}, run ${r + 1}/${repeat}: floor`);
    floorRuns.push(await baseline('floor', kind, n));
  }
  const o = oursRuns[0]!;
  const oMs = median(oursRuns.map((x) => x.ms));
  const afterLast = median(oursRuns.map((x) => x.afterLastMs));
  const change = median(oursRuns.map((x) => x.changeMs));
  const floorMs = median(floorRuns.map((x) => x.ms));
  const floorRules = floorRuns[0]!.rules;
  let pc: { ms: number; note: string };
  if (n <= perCommandMax) {
    const r = await baseline('per-command', kind, n);
    perCommandRate.set(kind, r.rules / r.ms);
    pc = { ms: r.ms, note: `measured, ${r.commands} commands` };
  } else if (perCommandRate.has(kind)) {
    pc = { ms: floorRules / perCommandRate.get(kind)!, note: 'extrapolated linearly from the largest measured size (optimistic)' };
  } else {
    pc = { ms: NaN, note: `skipped: N > --per-command-max ${perCommandMax}` };
  }
  const what = kind === 'distinct' ? '~35 ACL entries of its own per endpoint' : `10 groups of ~${Math.round(n / 10)}, identical ACLs within a group`;
  console.log(`\n[${kind}] N=${n}: ${what}`);
  console.log(
    `  kernel after ours: ${o.routes} routes, ${o.neighbours} neighbours, ${o.chains} felix chains, ${o.sets} sets, ${o.rules} iptables rules + set entries; version-1 layout: ${floorRules}`,
  );
  console.log(
    `  ours         ${secs(oMs).padStart(7)} s   first create → all programmed   runs: ${runs(
      oursRuns.map((x) => x.ms),
      secs,
    )}`,
  );
  console.log(
    `               ${secs(afterLast).padStart(7)} s   last create answered → all programmed   runs: ${runs(
      oursRuns.map((x) => x.afterLastMs),
      secs,
    )}` +
      ` (creates took ${runs(
        oursRuns.map((x) => x.createsMs),
        secs,
      )} s)`,
  );
  console.log(
    `  floor        ${secs(floorMs).padStart(7)} s   runs: ${runs(
      floorRuns.map((x) => x.ms),
      secs,
    )} (version-1 layout: one ipset restore, one iptables-restore, one ip -batch)`,
  );
  console.log(`  per-command  ${Number.isNaN(pc.ms) ? '      -' : secs(pc.ms).padStart(7)} s   (${pc.note})`);
  console.log(
    `  ratios: ours/floor = ${ratio(oMs, floorMs)} (goal ≤1.0× at 1000); per-command/ours = ${ratio(pc.ms, oMs)} (goal ≥10× at 100); after last create ${secs(afterLast)} s (goal ≤0.3 s at 100)`,
  );
  console.log(
    `  one ACL change with ${n} present: ${change.toFixed(1)} ms until in the kernel (median; runs: ${runs(
      oursRuns.map((x) => x.changeMs),
      (x) => x.toFixed(1),
    )}; ` + `kernel poll ${o.changePollMs.toFixed(0)} ms each, every ≥20 ms; goal <100 ms at 1000)`,
  );
  console.log(
    `  wire: GETACLSTATE answered ${runs(
      oursRuns.map((x) => x.getAclStates),
      String,
    )}, RESYNCSTATE ${runs(
      oursRuns.map((x) => x.resyncs),
      String,
    )}; ` +
      `/metrics polled every ${o.intervalMs} ms or twice a poll's time (${runs(
        oursRuns.map((x) => x.pollMs),
        (x) => x.toFixed(0),
      )} ms each; ` +
      `${runs(
        oursRuns.map((x) => x.idleScrapeMs),
        (x) => x.toFixed(1),
      )} ms once Felix is idle)`,
  );
  const applies = oursRuns
    .map((x) =>
      Object.entries(x.applies)
        .map(([part, a]) => `${part} ${a.count}× ${a.seconds.toFixed(2)} s`)
        .join(', '),
    )
    .filter(Boolean);
  if (applies.length) console.log(`  felix's applies until all programmed (its apply_seconds metric), per run: ${applies.join(' | ')}`);
}

async function main(): Promise<void> {
  const { stdout: version } = await execa('iptables', ['--version']);
  console.log(
    `Felix over the wire — built calico-felix in a namespace, endpoints pushed one ENDPOINTCREATED at a time, ACLUPDATE per endpoint; ${version}; ` +
      `${os.cpus().length} cores; times: median of ${repeat}, individual runs listed`,
  );
  const kinds: WorkloadKind[] = which === 'both' ? ['distinct', 'group'] : [which as WorkloadKind];
  for (const kind of kinds) for (const n of kind === 'distinct' ? sizes : groupSizes) await measure(kind, n);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.on(signal, () => {
    process.stderr.write(`${signal}: cleaning up namespaces\n`);
    void stopAll()
      .finally(() => deleteAllNetns())
      .finally(() => {
        for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
        process.exit(130);
      });
  });

main()
  .catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(async () => {
    await stopAll();
    await deleteAllNetns();
  });
