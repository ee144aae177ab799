/**
 * The benchmark's hosts: one "host" namespace per configuration, each with two
 * "container" namespaces (two endpoints of one group) routed through it.
 *   - no filtering: routes, static neighbours and proxy ARP for the two
 *     containers, set by hand; no Felix, no iptables rule (the floor);
 *   - N endpoints: N−2 more veth pairs (both ends in the host namespace, up),
 *     and all N programmed by the Dataplane through bench/felix's driver, with
 *     group-shaped ACLs: 10 groups, inbound the group's members as /32s,
 *     outbound 0.0.0.0/0.
 * Addresses are workload.ts's (192.168.0.0/16) and only exist in these namespaces.
 */
import type { Acls } from '../../src/common/wire/acl-api.js';
import { Container, createNetns, Netns, plugContainer } from '../../test/support/netns.js';
import { DataplaneDriver } from '../felix/driver-client.js';
import { workload, Workload } from '../felix/workload.js';
import { plugInterfaces } from '../felix/interfaces.js';

export interface Host {
  /** As printed in the table: "no filtering", "N=1000". */
  label: string;
  ns: Netns;
  /** The two measured containers: b is the client, a the server. */
  a: Container;
  b: Container;
}

const GROUPS = 10;
/** Endpoints per driver message: 10 groups of 500 at N=5000 make ~30 kB of JSON per endpoint. */
const CHUNK = 200;

/** Endpoint i's group: consecutive pairs (2k and 2k+1 share one), round-robin over the groups. */
const groupOf = (i: number): number => Math.floor(i / 2) % GROUPS;

/** Inbound: every member of the endpoint's group as a /32; outbound: anywhere. */
function groupAcls(members: string[]): Acls {
  const rule = (cidr: string) => ({ group: null, cidr, protocol: null, port: null });
  const v4 = {
    inbound: members.map((ip) => rule(`${ip}/32`)),
    outbound: [rule('0.0.0.0/0')],
    inbound_default: 'deny' as const,
    outbound_default: 'deny' as const,
  };
  return { v4, v6: { inbound: [], outbound: [], inbound_default: 'deny', outbound_default: 'deny' } };
}

/**
 * The measured pair among n endpoints: two of one group in the middle of the
 * list (by index, so by address, interface name and order of programming), so
 * that any walk over the endpoints meets them after about N/2 others, as it
 * would an average container; endpoints 0 and 1 would be met first.
 */
function measuredPair(n: number): [number, number] {
  const i = 2 * Math.floor(n / 4);
  return [i, i + 1];
}

/** Plugs the measured pair of `w` in as containers (the endpoint's interface, address and MAC). */
async function containers(ns: Netns, w: Workload[], tag: string): Promise<[Container, Container]> {
  const plug = (i: number, label: string) => plugContainer(ns, `${tag}${label}`, w[i]!.spec.addrs[0]!, w[i]!.spec.ifname, { mac: w[i]!.spec.mac });
  const [a, b] = measuredPair(w.length);
  return [await plug(a, 'a'), await plug(b, 'b')];
}

/** Which host is being built, with timings: a 5000-endpoint host takes minutes. */
async function step<T>(say: (line: string) => void, what: string, f: () => Promise<T>): Promise<T> {
  say(`${what}…`);
  const started = performance.now();
  const result = await f();
  say(`  done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return result;
}

/** The floor: the two containers routed by the host as Felix would route them, with nothing filtered. */
export async function noFilterHost(): Promise<Host> {
  const ns = await createNetns('nofilter');
  const [a, b] = await containers(ns, workload(2), 'nofilter');
  const script = [
    'echo 1 > /proc/sys/net/ipv4/ip_forward',
    ...[a, b].flatMap((c) => [
      `ip route add ${c.ip}/32 dev ${c.ifname}`,
      `ip neigh replace ${c.ip} lladdr ${c.mac} dev ${c.ifname} nud permanent`,
      `echo 1 > /proc/sys/net/ipv4/conf/${c.ifname}/proxy_arp`,
      `echo 0 > /proc/sys/net/ipv4/neigh/${c.ifname}/proxy_delay`,
    ]),
  ];
  await ns.sh(script.join('\n'));
  return { label: 'no filtering', ns, a, b };
}

/**
 * A host with n endpoints programmed by the Dataplane, whose driver keeps
 * running (as Felix would) until the namespace is deleted.
 */
export async function programmedHost(n: number, say: (line: string) => void): Promise<Host> {
  const ns = await createNetns(`n${n}`);
  const w = workload(n);
  const [a, b] = await containers(ns, w, `n${n}`);
  const others = w.filter((_, i) => !measuredPair(n).includes(i));
  if (others.length) await step(say, `N=${n}: creating ${others.length} veth pairs`, () => plugInterfaces(ns, others, 900_000));

  const driver = new DataplaneDriver(ns.name);
  // No periodic drift repair: a re-read of thousands of chains would land in some measurement.
  await driver.send({ op: 'start', refreshMs: 0 });
  const members = Array.from({ length: GROUPS }, (_, g) => w.filter((_, i) => groupOf(i) === g).map((e) => e.spec.addrs[0]!));
  await step(say, `N=${n}: programming ${n} endpoints`, async () => {
    for (let i = 0; i < n; i += CHUNK) {
      const chunk = w.slice(i, i + CHUNK);
      const items = [
        ...chunk.map(({ spec }) => ({ op: 'upsert', ep: spec })),
        ...chunk.map(({ spec }, k) => ({ op: 'acls', id: spec.id, acls: groupAcls(members[groupOf(i + k)]!) })),
      ];
      await driver.send({ op: 'batch', items });
    }
    await driver.send({ op: 'batch', items: [], wait: true });
  });

  const statuses = await Promise.all(
    w.map(async ({ spec }) => ({
      id: spec.id,
      status: (await driver.send({ op: 'status', id: spec.id })).result as { programmed: boolean; error?: string } | null,
    })),
  );
  const failed = statuses.filter((s) => !s.status?.programmed);
  if (failed.length) {
    const first = failed[0]!;
    throw new Error(`N=${n}: ${failed.length} endpoints not programmed (first: ${first.id}: ${first.status?.error ?? JSON.stringify(first.status)})`);
  }
  const rules = (await ns.run('iptables-save', ['-t', 'filter'])).split('\n').filter((l) => l.startsWith('-A felix-')).length;
  const setEntries = [...(await ns.run('ipset', ['list', '-t'])).matchAll(/^Number of entries: (\d+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
  say(`  ${n} endpoints programmed: ${rules} felix- filter rules, ${setEntries} ipset entries`);
  return { label: `N=${n}`, ns, a, b };
}

/** Both containers must reach each other before anything is measured. */
export async function checkConnectivity(h: Host): Promise<void> {
  for (const [from, to] of [
    [h.a, h.b],
    [h.b, h.a],
  ] as const) {
    const r = await from.ns.exec('ping', ['-c', '3', '-i', '0.2', '-w', '5', to.ip]);
    if (r.code !== 0) throw new Error(`${h.label}: ${from.ip} cannot ping ${to.ip}: ${(r.stdout + r.stderr).trim().split('\n').slice(-2).join('; ')}`);
  }
}
