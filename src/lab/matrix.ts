/**
 * The seed's rule as a connectivity matrix: containers in the same group
 * reach each other (ping and TCP), across hosts too; others do not.
 */
import type { Lab, LabContainer } from './lab.js';

export interface Probe {
  from: LabContainer;
  to: LabContainer;
  expected: boolean;
  ping: boolean;
  tcp: boolean;
}

export const probeOk = (p: Probe): boolean => p.ping === p.expected && p.tcp === p.expected;

/** Probes every ordered pair of containers, all at once. */
export async function measureMatrix(lab: Lab, containers: LabContainer[] = lab.containers): Promise<Probe[]> {
  const pairs = containers.flatMap((from) => containers.filter((to) => to !== from).map((to) => ({ from, to })));
  return Promise.all(
    pairs.map(async ({ from, to }) => {
      const [ping, tcp] = await Promise.all([lab.ping(from, to.ip), lab.tcp(from, to.ip)]);
      return { from, to, expected: from.group === to.group, ping, tcp };
    }),
  );
}

const mark = (b: boolean) => (b ? 'yes' : 'no ');

export function formatMatrix(probes: Probe[]): string {
  const rows = probes.map(
    (p) =>
      `  ${`${p.from.ip} (${p.from.group}, ${p.from.host})`.padEnd(34)} -> ${`${p.to.ip} (${p.to.group}, ${p.to.host})`.padEnd(34)} ` +
      `expected ${mark(p.expected)}  ping ${mark(p.ping)}  tcp ${mark(p.tcp)}  ${probeOk(p) ? 'ok' : 'MISMATCH'}`,
  );
  return rows.join('\n');
}
