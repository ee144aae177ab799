/**
 * The seed's rule as a connectivity matrix: containers in the same group
 * reach each other (ping and TCP), across hosts too; others do not. Only
 * containers that share an address family are paired (SPEC §9): an IPv4 and
 * an IPv6 container can never talk, whatever their groups. Two dual-stack
 * containers are probed once per family.
 */
import type { Lab } from './lab.js';
import { type LabContainer, addressIn } from './state.js';

export interface Probe {
  from: LabContainer;
  to: LabContainer;
  family: 4 | 6;
  /** The addresses of `family` probed from and to. */
  fromIp: string;
  toIp: string;
  expected: boolean;
  ping: boolean;
  tcp: boolean;
  /** The ping failed because the kernel's neighbour table is full: a limit of the machine, not the policy (issue #15). */
  neighbourTableFull: boolean;
}

export const probeOk = (p: Probe): boolean => p.ping === p.expected && p.tcp === p.expected;

/** What ping says when the kernel could not make a neighbour entry (past `gc_thresh3`). */
export const isNeighbourTableFull = (pingStderr: string): boolean => /No buffer space available/i.test(pingStderr);

/** Every ordered pair of containers, once per address family both have: the IPv4 pairs, then the IPv6 ones. */
export function matrixPairs(containers: LabContainer[]): Array<Pick<Probe, 'from' | 'to' | 'family' | 'fromIp' | 'toIp' | 'expected'>> {
  return ([4, 6] as const).flatMap((family) =>
    containers.flatMap((from) =>
      containers
        .filter((to) => to !== from)
        .flatMap((to) => {
          const [fromIp, toIp] = [addressIn(from, family), addressIn(to, family)];
          return fromIp && toIp ? [{ from, to, family, fromIp, toIp, expected: from.group === to.group }] : [];
        }),
    ),
  );
}

/** Probes every pair of {@link matrixPairs}, all at once. */
export async function measureMatrix(lab: Lab, containers: LabContainer[] = lab.containers): Promise<Probe[]> {
  return Promise.all(
    matrixPairs(containers).map(async (pair) => {
      const [ping, tcp] = await Promise.all([lab.pingOutcome(pair.from, pair.toIp), lab.tcp(pair.from, pair.toIp)]);
      return { ...pair, ping: ping.ok, tcp, neighbourTableFull: !ping.ok && isNeighbourTableFull(ping.stderr) };
    }),
  );
}

const mark = (b: boolean) => (b ? 'yes' : 'no ');

function verdict(p: Probe): string {
  if (probeOk(p)) return 'ok';
  return p.neighbourTableFull ? "NEIGHBOUR TABLE FULL (the kernel's gc_thresh3; not the policy)" : 'MISMATCH';
}

export function formatMatrix(probes: Probe[]): string {
  const label = (ip: string, c: LabContainer) => `${ip} (${c.group}, ${c.host})`;
  const width = Math.max(0, ...probes.flatMap((p) => [label(p.fromIp, p.from).length, label(p.toIp, p.to).length]));
  const rows = probes.map(
    (p) =>
      `  IPv${p.family}  ${label(p.fromIp, p.from).padEnd(width)} -> ${label(p.toIp, p.to).padEnd(width)} ` +
      `expected ${mark(p.expected)}  ping ${mark(p.ping)}  tcp ${mark(p.tcp)}  ${verdict(p)}`,
  );
  return rows.join('\n');
}
