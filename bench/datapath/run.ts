/**
 * bench/datapath: what a packet costs as a host carries more endpoints.
 *
 * Two containers on one host namespace, measured container to container:
 * flood-ping RTT, iperf3 TCP throughput and new TCP connections per second, for
 *   - no filtering: the host only routes them (no Felix, no iptables rule): the floor;
 *   - N=2, N=1000, N=5000…: N endpoints programmed by whichever Dataplane is
 *     built (bench/felix's driver), group-shaped ACLs, the two containers among
 *     them, in the middle of the list (hosts.ts).
 * Every host is built once and kept; each metric is then measured round-robin
 * over the hosts, `--rounds` times (noise on this shared machine moves
 * throughput by 25%), and the medians are printed side by side with the runs.
 * Everything happens in namespaces this process creates and deletes (also on
 * failure and Ctrl-C); packets only go between them.
 *
 * Run as root, with ping and iperf3 installed (apt-get install iputils-ping iperf3):
 *   npm run bench:datapath -- [--sizes 2,1000,5000] [--rounds 3] [--seconds 3]
 *   node dist/bench/datapath/run.js …   (after npm run build)
 * A 5000-endpoint host takes a few minutes to build; progress lines start with '#'.
 */
import os from 'node:os';
import { execa } from 'execa';
import { deleteAllNetns } from '../../test/support/netns.js';
import { checkConnectivity, Host, noFilterHost, programmedHost } from './hosts.js';
import { connPerSecond, rttMicros, tcpGbits } from './measure.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}
const sizes = arg('sizes', '2,1000,5000')
  .split(',')
  .map(Number)
  .sort((x, y) => x - y);
const rounds = Number(arg('rounds', '3'));
const seconds = Number(arg('seconds', '3'));

interface Metric {
  header: string;
  digits: number;
  run: (h: Host, seconds: number) => Promise<number>;
}
const METRICS: Metric[] = [
  { header: 'RTT µs', digits: 1, run: rttMicros },
  { header: 'TCP Gbit/s', digits: 2, run: tcpGbits },
  { header: 'new conn/s', digits: 0, run: connPerSecond },
];
/** At N=1000, relative to the smallest N: RTT at most, TCP and conn/s at least. */
const GOAL = { n: 1000, rtt: 1.3, tcp: 0.8, conn: 0.7 };

const say = (line: string): void => console.log(`# ${line}`);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** Fails with a one-line hint when a tool the benchmark needs is missing. */
async function requireTool(cmd: string, args: string[], install: string): Promise<void> {
  const r = await execa(cmd, args, { reject: false });
  if (r.failed) throw new Error(`${cmd} not found: install it with \`${install}\``);
}

/** runs[m][h]: the runs of metric m on host h, in order. */
function table(hosts: Host[], runs: number[][][]): string {
  const medians = runs.map((perHost) => perHost.map(median));
  const cells = METRICS.map((m, i) => runs[i]!.map((xs, h) => `${medians[i]![h]!.toFixed(m.digits)} [${xs.map((x) => x.toFixed(m.digits)).join(' ')}]`));
  const widths = METRICS.map((m, i) => Math.max(m.header.length, ...cells[i]!.map((c) => c.length)) + 3);
  const base = 1; // hosts[0] is "no filtering", hosts[1] the smallest N
  const ratios = (h: number) => medians.map((perHost) => `${(perHost[h]! / perHost[base]!).toFixed(2)}×`.padStart(6)).join(' ');
  const lines = [
    `datapath: 2 containers on one host, N endpoints programmed (median of ${rounds}; runs in brackets; TCP and conn/s over ${seconds} s each)`,
    ['config'.padEnd(14), ...METRICS.map((m, i) => m.header.padEnd(widths[i]!)), `vs ${hosts[base]!.label} (RTT, TCP, conn/s)`].join(''),
    ...hosts.map((host, h) => [host.label.padEnd(14), ...cells.map((c, i) => c[h]!.padEnd(widths[i]!)), ratios(h)].join('')),
  ];
  const goalHost = hosts.findIndex((host) => host.label === `N=${GOAL.n}`);
  let verdict = '';
  if (goalHost > 0) {
    const [rtt, tcp, conn] = medians.map((perHost) => perHost[goalHost]! / perHost[base]!) as [number, number, number];
    verdict = rtt <= GOAL.rtt && tcp >= GOAL.tcp && conn >= GOAL.conn ? ' → met' : ' → NOT met';
  }
  lines.push(`goal at N=${GOAL.n}: RTT ≤ ${GOAL.rtt}×, TCP ≥ ${GOAL.tcp}×, conn/s ≥ ${GOAL.conn}× of ${hosts[base]!.label}${verdict}`);
  return lines.join('\n');
}

async function main(): Promise<void> {
  if (!sizes.every((n) => Number.isInteger(n) && n >= 2 && n <= 50_000) || !(rounds >= 1) || !(seconds >= 1)) {
    throw new Error('usage: run.js [--sizes 2,1000,5000] (each 2…50000) [--rounds 3] [--seconds 3]');
  }
  await requireTool('ping', ['-V'], 'apt-get install iputils-ping');
  await requireTool('iperf3', ['--version'], 'apt-get install iperf3');
  const { stdout: iptables } = await execa('iptables', ['--version']);
  say(`kernel ${os.release()}, ${iptables}, ${os.cpus().length} CPUs`);

  const hosts: Host[] = [];
  say('building the "no filtering" host');
  hosts.push(await noFilterHost());
  for (const n of sizes) hosts.push(await programmedHost(n, say));
  for (const h of hosts) await checkConnectivity(h);
  say(`${hosts.length} hosts built; in each, the two containers ping each other`);

  const runs = METRICS.map(() => hosts.map((): number[] => []));
  for (const [i, metric] of METRICS.entries()) {
    for (let round = 1; round <= rounds; round++) {
      for (const [h, host] of hosts.entries()) {
        const value = await metric.run(host, seconds);
        runs[i]![h]!.push(value);
        say(`${metric.header} round ${round}/${rounds} ${host.label}: ${value.toFixed(metric.digits)}`);
      }
    }
  }
  console.log(`\n${table(hosts, runs)}`);
}

// `on`, not `once`: execa's signal-exit re-raises the signal (killing us before any
// cleanup) when its own handler is the only one left.
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    console.error(`\n${signal}: removing the benchmark's namespaces`);
    void deleteAllNetns().finally(() => process.exit(130));
  });
}

try {
  await main();
} catch (err) {
  console.error(`bench/datapath: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  await deleteAllNetns();
}
