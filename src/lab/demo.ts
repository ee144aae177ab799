/**
 * The seed's demo in the lab (README's main command): containers
 * 192.168.1.1 (group1) and 192.168.1.2 (group2) on host one, 192.168.1.4
 * (group1) on host two; then 192.168.1.3 (group1) on host one, networked
 * the way the seed does it, timing each step of its convergence. Then the
 * same rule for IPv6 and dual stack (SPEC §9): fd00:192:168::1:1 (group1)
 * and fd00:192:168::1:2 (group2) on host one, fd00:192:168::1:4 (group1) and
 * the dual-stack 192.168.1.5,fd00:192:168::1:5 (group1) on host two.
 */
import { waitFor } from '../common/poll.js';
import { Lab } from './lab.js';
import { networkAndTime } from './converge.js';
import { formatMatrix, measureMatrix, probeOk } from './matrix.js';

export interface DemoOptions {
  dir: string;
  keep: boolean;
  /** CurveZMQ on every socket (`demo --curve`). */
  curve?: boolean;
  say: (line: string) => void;
}

/** Address (or dual-stack pair), group, host of the demo's IPv6 and dual-stack containers. */
const IPV6_CONTAINERS: Array<[string, string, string]> = [
  ['fd00:192:168::1:1', 'group1', 'instance-1'],
  ['fd00:192:168::1:2', 'group2', 'instance-1'],
  ['fd00:192:168::1:4', 'group1', 'instance-2'],
  ['192.168.1.5,fd00:192:168::1:5', 'group1', 'instance-2'],
];

async function timed<T>(what: string, say: (l: string) => void, f: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = Date.now();
  const value = await f();
  const ms = Date.now() - t0;
  say(`  ${what}: ${ms} ms`);
  return { value, ms };
}

export async function runDemo(opts: DemoOptions): Promise<boolean> {
  const say = opts.say;
  const started = Date.now();
  const lab = await Lab.up({ dir: opts.dir, hosts: 2, curve: opts.curve, say });
  const matrixAsExpected = async () => (await measureMatrix(lab)).every(probeOk);
  try {
    say('networking the seed’s first containers');
    const c1 = await lab.addContainer('192.168.1.1', 'group1', 'instance-1');
    await lab.addContainer('192.168.1.2', 'group2', 'instance-1');
    const c4 = await lab.addContainer('192.168.1.4', 'group1', 'instance-2');
    await timed('first three containers converged (matrix as expected)', say, () =>
      waitFor('the connectivity matrix to match the seed’s rule', matrixAsExpected, 30000, 100),
    );

    say('networking 192.168.1.3 (group1) on instance-1 with network-container, as the seed does');
    const { steps } = await networkAndTime(lab, '192.168.1.3', 'group1', 'instance-1', c1, c4);

    say('networking IPv6 and dual-stack containers');
    for (const [ip, group, host] of IPV6_CONTAINERS) {
      await lab.addContainer(ip, group, host);
      say(`  ${ip} (${group}) on ${host}`);
    }
    // On a timeout the demo goes on: the routes and the matrix below show what is wrong.
    const t0 = Date.now();
    const converged = await waitFor('the matrix', matrixAsExpected, 30000, 100).then(
      () => true,
      () => false,
    );
    say(`  IPv6 and dual-stack containers ${converged ? 'converged (matrix as expected)' : 'NOT converged (matrix not as expected)'}: ${Date.now() - t0} ms`);

    for (const h of lab.hosts) {
      say(`\nip route on ${h.name}:\n${(await lab.routes(h)).replace(/^/gm, '  ')}`);
      say(`ip -6 route on ${h.name}:\n${(await lab.routes(h, 6)).replace(/^/gm, '  ')}`);
    }
    const probes = await measureMatrix(lab);
    say(`\nconnectivity (same group: reachable; different groups: not; only containers sharing an address family are paired):\n${formatMatrix(probes)}`);
    say(`\nconvergence of 192.168.1.3, from the start of network-container:`);
    for (const { what, ms } of steps) say(`  ${what.padEnd(52)} ${String(ms).padStart(6)} ms`);
    const ok = probes.every(probeOk);
    say(
      `\n${ok ? 'PASS' : 'FAIL'}: ${probes.filter(probeOk).length}/${probes.length} pairs as expected; demo took ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    return ok;
  } finally {
    if (opts.keep) say(`lab kept running in ${opts.dir}; stop it with: calico-lab down --dir ${opts.dir}`);
    else {
      say('removing the lab');
      await lab.down();
    }
  }
}
