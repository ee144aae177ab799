#!/usr/bin/env node
/**
 * bench/converge: from `network-container` to the first ping from the new
 * container to its group across hosts, in a two-host lab; median of N runs
 * (default 5), with each step's breakdown. Printed, not asserted.
 * Run as root: node dist/bench/converge/run.js [--runs N]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Lab } from '../../src/lab/lab.js';
import { ConvergenceStep, networkAndTime } from '../../src/lab/converge.js';
import { errorMessage } from '../../src/common/errors.js';

const runsArg = process.argv.indexOf('--runs');
const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 5;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'calico-bench-converge-'));
  const lab = await Lab.up({ dir, hosts: 2, prefix: `cbc${process.pid.toString(36)}`, say: (l) => console.log(`# ${l}`) });
  try {
    const c1 = await lab.addContainer('192.168.1.1', 'group1', 'instance-1');
    const c4 = await lab.addContainer('192.168.1.4', 'group1', 'instance-2');
    const all: ConvergenceStep[][] = [];
    for (let i = 1; i <= runs; i++) {
      const ip = `192.168.2.${i}`;
      const { steps } = await networkAndTime(lab, ip, 'group1', 'instance-1', c1, c4);
      all.push(steps);
      console.log(`# run ${i}/${runs}: ${steps.map((s) => `${s.what} ${s.ms} ms`).join('; ')}`);
      await lab.removeContainer(ip);
    }
    console.log(`\nconvergence of a new container, median of ${runs} (ms from the start of network-container)`);
    for (const what of all[0]!.map((s) => s.what)) {
      const values = all.map((steps) => steps.find((s) => s.what === what)?.ms).filter((v): v is number => v !== undefined);
      console.log(`  ${what.padEnd(48)} ${String(median(values)).padStart(6)}   (min ${Math.min(...values)}, max ${Math.max(...values)})`);
    }
    const key = all.map((steps) => steps.find((s) => s.what === 'first ping new -> 192.168.1.4 (across hosts)')!.ms);
    console.log(
      `\nfirst ping across hosts: median ${median(key)} ms  |  goal < 3000 ms  |  2014 prototype: up to minutes (plugin and Felix polled; seed guide: "up to a minute or two")`,
    );
  } finally {
    await lab.down();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(`bench/converge: ${errorMessage(err)}`);
  process.exit(1);
});
