/**
 * Churn benchmark (issue #13): large groups under a stream of data edits,
 * as a busy orchestrator drives the system. Printed, not asserted.
 *
 * For each size N and edit rate: one host (./stack.ts) with N endpoint
 * interfaces and the built plugin ep + network, ACL manager and Felix, fed
 * one data file per endpoint (./model.ts). About 80% of the slots start
 * present, in G groups. Once the kernel matches the data, for --duration
 * seconds a seeded random stream of edits (an endpoint appears, vanishes or
 * changes group) is written at the given rate; then no more edits.
 * Measured, side by side with the baselines of the same run:
 *   settle      last edit → the kernel matches the data (routes, endpoint chains, every endpoint's
 *               inbound set = its group's addresses; ./kernel.ts), polled; then checked again 3 s later
 *   ACLUPDATEs  published by the ACL manager during the churn (its log), against what publishing every
 *               intermediate state would have sent, the endpoints whose ACLs changed at least once, and the
 *               edits; and how many Felix received
 *   RSS         of each daemon: idle before the churn → peak → after settling
 *
 * Usage: node dist/bench/churn/run.js [--sizes 120,1000] [--rates 5,20] [--groups 4] [--duration 30] [--seed 1] [--log-dir DIR]
 * Needs root; touches nothing outside the namespaces it creates (prefix cchurn-). Progress goes to stderr.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { deleteAllNetns } from '../../test/support/netns.js';
import { stopAll } from '../../test/support/process.js';
import { differences, readKernel } from './kernel.js';
import { ChurnModel } from './model.js';
import { DAEMONS, OneHostStack } from './stack.js';

const argv = yargs(hideBin(process.argv))
  .options({
    sizes: { type: 'string', default: '120,1000', describe: 'endpoint slots per run, comma-separated' },
    rates: { type: 'string', default: '5,20', describe: 'edits per second, comma-separated' },
    groups: { type: 'number', default: 4 },
    duration: { type: 'number', default: 30, describe: 'seconds of edits' },
    seed: { type: 'number', default: 1 },
    'log-dir': { type: 'string', describe: "keep each run's daemon logs here" },
  })
  .strict()
  .parseSync();
const list = (s: string): number[] => s.split(',').filter(Boolean).map(Number);
const sizes = list(argv.sizes);
const rates = list(argv.rates);

const SETTLE_TIMEOUT_MS = Number(process.env['CHURN_SETTLE_TIMEOUT_MS'] ?? 180_000);
const wall = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const progress = (msg: string): void => void process.stderr.write(`    … ${msg}\n`);
const secs = (ms: number): string => (ms / 1000).toFixed(2);

interface Result {
  n: number;
  rate: number;
  groupSize: number;
  initialMs: number;
  edits: number;
  settleMs: number;
  /** Last edit → the start of the kernel read that matched (the kernel matched no later than settleMs). */
  settleReadBeganMs: number;
  pollMs: number;
  present: number;
  stable: boolean;
  orphanSets: number;
  published: number;
  felixReceived: number;
  intermediate: number;
  changed: number;
  rss: Record<string, { idle: number; peak: number; last: number }>;
}

/** Polls the kernel until it matches the model; when the matching read began and finished, and how long it took. */
async function untilMatch(stack: OneHostStack, model: ChurnModel, label: string, since = wall()): Promise<{ began: number; at: number; pollMs: number }> {
  const deadline = wall() + SETTLE_TIMEOUT_MS;
  let lastReport = wall();
  let lastText = '';
  for (;;) {
    stack.checkAlive();
    const started = wall();
    const diff = differences(await readKernel(stack.ns), model);
    const at = wall();
    if (diff.length === 0) return { began: started, at, pollMs: at - started };
    if (at > deadline) throw new Error(`${label}: the kernel did not match the data within ${SETTLE_TIMEOUT_MS / 1000} s: ${diff.join('; ')}`);
    const text = diff.join('; ');
    if (at - lastReport > 5000 || text !== lastText) {
      lastReport = at;
      lastText = text;
      progress(`${label}, ${secs(at - since)} s: ${text}`);
    }
    await sleep(50);
  }
}

async function run(n: number, rate: number): Promise<Result> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'churn-bench-'));
  const model = new ChurnModel(n, argv.groups, path.join(dir, 'data'), argv.seed);
  progress(`N=${n}, ${rate} edits/s: creating ${n} veth pairs`);
  const stack = await OneHostStack.create(dir, `n${n}r${rate}`, model.slots);
  try {
    model.writeAll();
    const t0 = wall();
    stack.start();
    const initial = await untilMatch(stack, model, 'initial programming');
    const initialMs = initial.at - t0;
    progress(`initial state programmed in ${secs(initialMs)} s; ${model.present().length} endpoints present`);
    await sleep(2000);
    stack.resetRss();
    const published0 = stack.countLogLines('acl-manager', '"msg":"publishing');
    const received0 = stack.countLogLines('felix', '"msg":"ACLs received"');
    const groupSize = Math.round(model.present().length / argv.groups);

    const edits = Math.round(rate * argv.duration);
    const start = wall();
    for (let k = 0; k < edits; k++) {
      const due = start + (k * 1000) / rate;
      if (due > wall()) await sleep(due - wall());
      model.edit();
      if (k > 0 && k % (rate * 5) === 0) {
        stack.checkAlive();
        const rss = DAEMONS.map((d) => `${d} ${stack.rss.get(d)!.last.toFixed(0)}`).join(', ');
        progress(`${k}/${edits} edits; RSS MB ${rss}`);
      }
    }
    const lastEdit = wall();
    const settled = await untilMatch(stack, model, 'after the last edit', lastEdit);
    await sleep(3000);
    const again = await readKernel(stack.ns);
    const stable = differences(again, model).length === 0;
    const rss = Object.fromEntries(DAEMONS.map((d) => [d, { ...stack.rss.get(d)! }]));
    return {
      n,
      rate,
      groupSize,
      initialMs,
      edits,
      settleMs: settled.at - lastEdit,
      settleReadBeganMs: settled.began - lastEdit,
      pollMs: settled.pollMs,
      present: model.present().length,
      stable,
      orphanSets: again.orphanSets,
      published: stack.countLogLines('acl-manager', '"msg":"publishing') - published0,
      felixReceived: stack.countLogLines('felix', '"msg":"ACLs received"') - received0,
      intermediate: model.intermediate,
      changed: model.changed.size,
      rss,
    };
  } finally {
    await stack.stop();
    if (argv['log-dir']) fs.cpSync(path.join(dir, 'logs'), path.join(argv['log-dir'], `n${n}-r${rate}`), { recursive: true });
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(`${path.join(dir, 'data')}.staging`, { recursive: true, force: true });
  }
}

function print(r: Result): void {
  const mb = (x: number) => x.toFixed(0).padStart(4);
  console.log(
    `N=${r.n} endpoint slots, ${argv.groups} groups of ~${r.groupSize}, ${r.rate} edits/s for ${argv.duration} s (${r.edits} edits), seed ${argv.seed}`,
  );
  console.log(`  initial programming           ${secs(r.initialMs)} s`);
  console.log(
    `  settle after the last edit    ${secs(r.settleMs)} s (the matching kernel read began at ${secs(Math.max(0, r.settleReadBeganMs))} s and took ${secs(r.pollMs)} s; goal 1 s; before issue #13: 16.8–20.4 s at N=1000, 21/s)` +
      `${r.stable ? '' : '  NOT STABLE 3 s later'}${r.orphanSets ? `  ${r.orphanSets} orphaned sets` : ''}`,
  );
  const perEndpointSecond = (x: number) => (x / Math.max(r.present, 1) / argv.duration).toFixed(1);
  console.log(
    `  ACLUPDATEs published          ${r.published}  vs every intermediate state ${r.intermediate} (${(r.intermediate / Math.max(r.published, 1)).toFixed(1)}× more); endpoints whose ACLs changed ${r.changed}; edits ${r.edits}; received by Felix ${r.felixReceived}`,
  );
  console.log(`    per endpoint and second     ${perEndpointSecond(r.published)} published vs ${perEndpointSecond(r.intermediate)} changes of its ACLs`);
  console.log(
    `  RSS MB (idle → peak → final)  ${DAEMONS.map((d) => `${d} ${mb(r.rss[d]!.idle)} →${mb(r.rss[d]!.peak)} →${mb(r.rss[d]!.last)}`).join(';  ')}  (goal: peak under 250; before issue #13: acl-manager 773–1259, felix 316–324 at N=1000)`,
  );
}

async function main(): Promise<void> {
  console.log(
    `churn benchmark: one host, built plugin ep + network, calico-acl-manager and calico-felix in a namespace; node ${process.version}, ${os.cpus().length} cores\n`,
  );
  for (const n of sizes) {
    for (const rate of rates) {
      print(await run(n, rate));
      console.log('');
    }
  }
}

const cleanup = async (): Promise<void> => {
  await stopAll();
  await deleteAllNetns();
};
process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));
main().then(
  async () => {
    await cleanup();
    process.exit(0);
  },
  async (err: unknown) => {
    console.error(err);
    await cleanup();
    process.exit(1);
  },
);
