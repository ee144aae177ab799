#!/usr/bin/env node
/**
 * bench/scale (issue #15): a lab of N hosts × M containers (3 groups), as an
 * operator scaling the lab would build it, to show where the next wall is.
 * Printed, not asserted, not part of `npm test`. Reports: time to bring the
 * lab up (namespaces, daemons, the full BGP mesh), time until the whole
 * connectivity matrix is as the groups say, the matrix (pairs as expected,
 * mismatches, pairs failed on a full neighbour table), memory of each kind
 * of daemon, and BGP sessions (established of configured, per host and in
 * all). A lab the machine's neighbour table cannot hold is refused by the
 * lab itself with the `sysctl -w` that makes room; that line is printed and
 * the run stops there (this benchmark changes no setting of the machine).
 *
 * Usage (root): node dist/bench/scale/run.js [--hosts 30] [--per-host 1] [--timeout 300]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { waitFor } from '../../src/common/poll.js';
import { Lab } from '../../src/lab/lab.js';
import { Probe, measureMatrix, probeOk } from '../../src/lab/matrix.js';

const argv = yargs(hideBin(process.argv))
  .options({
    hosts: { type: 'number', default: 30, describe: 'hosts (namespaces with Felix and BIRD; host one also runs plugin and ACL manager)' },
    'per-host': { type: 'number', default: 1, describe: 'containers per host, in groups group1..group3 round robin' },
    timeout: { type: 'number', default: 300, describe: 'seconds to wait for the matrix to be as expected' },
  })
  .strict()
  .parseSync();

const secs = (ms: number) => (ms / 1000).toFixed(1);
const now = () => performance.now();

/** VmRSS of a process in MB, or 0 if it is gone. */
function rssMb(pid: number): number {
  try {
    const kb = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) / 1024 : 0;
  } catch {
    return 0;
  }
}

function memory(lab: Lab): string {
  const byKind = new Map<string, number[]>();
  for (const p of lab.processes()) {
    // felix-instance-3 → felix; tcp-<id> (each container's TCP listener) → nc
    const kind = p.name.startsWith('tcp-') ? 'nc' : p.name.replace(/-instance-\d+$/, '');
    byKind.set(kind, [...(byKind.get(kind) ?? []), rssMb(p.pid)]);
  }
  return [...byKind]
    .map(([kind, mbs]) => `${kind} ×${mbs.length}: ${Math.round(Math.max(...mbs))} MB max, ${Math.round(mbs.reduce((a, b) => a + b, 0))} MB in all`)
    .join('; ');
}

async function bgpSessions(lab: Lab): Promise<{ established: number; configured: number; worstHost: string }> {
  let established = 0;
  let configured = 0;
  let worst = { host: '', missing: -1 };
  for (const h of lab.hosts) {
    const out = await lab.birdc(h, 'show', 'protocols').catch(() => '');
    const rows = out.split('\n').filter((l) => /^peer_/.test(l));
    const up = rows.filter((l) => /Established/.test(l)).length;
    established += up;
    configured += rows.length;
    if (rows.length - up > worst.missing) worst = { host: h.name, missing: rows.length - up };
  }
  return { established, configured, worstHost: `${worst.host} (${worst.missing} not established)` };
}

function summary(probes: Probe[]): string {
  const ok = probes.filter(probeOk).length;
  const full = probes.filter((p) => !probeOk(p) && p.neighbourTableFull).length;
  return `${ok}/${probes.length} pairs as expected; ${probes.length - ok - full} MISMATCH; ${full} NEIGHBOUR TABLE FULL`;
}

async function main(): Promise<void> {
  const { hosts, timeout } = argv;
  const perHost = argv['per-host'];
  console.log(
    `scale benchmark: ${hosts} hosts × ${perHost} containers (3 groups); node ${process.version}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB`,
  );
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'calico-bench-scale-'));
  let lab: Lab | undefined;
  try {
    let t = now();
    try {
      lab = await Lab.up({ dir, hosts, prefix: `cbs${process.pid.toString(36)}`, say: (l) => console.error(`# ${l}`) });
    } catch (err) {
      console.log(`  lab refused or failed to come up: ${(err as Error).message}`);
      return;
    }
    console.log(`  up (namespaces, daemons, BGP full mesh)   ${secs(now() - t)} s`);
    t = now();
    let made = 0;
    for (let i = 0; i < hosts * perHost; i++) {
      const host = `instance-${(i % hosts) + 1}`;
      const ip = `192.168.${100 + Math.floor(i / 250)}.${(i % 250) + 1}`;
      try {
        await lab.addContainer(ip, `group${(i % 3) + 1}`, host);
        made++;
      } catch (err) {
        console.log(`  container ${i + 1} of ${hosts * perHost} refused: ${(err as Error).message}`);
        break;
      }
    }
    console.log(`  ${made} containers networked             ${secs(now() - t)} s`);
    let probes: Probe[] = [];
    try {
      await waitFor('the matrix to be as expected', async () => (probes = await measureMatrix(lab!)).every(probeOk), timeout * 1000, 1000);
      console.log(`  converged (matrix as expected)          ${secs(now() - t)} s after the first container`);
    } catch {
      console.log(`  NOT converged within ${timeout} s`);
    }
    console.log(`  matrix                                  ${summary(probes)}`);
    const bgp = await bgpSessions(lab);
    console.log(
      `  BGP sessions                            ${bgp.established}/${bgp.configured} established (full mesh: ${hosts} × ${hosts - 1} per family); worst host ${bgp.worstHost}`,
    );
    console.log(`  memory (RSS)                            ${memory(lab)}`);
  } finally {
    await lab?.down();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
