/**
 * Reads what Felix programmed in the benchmark's namespace, in one command
 * (routes, the filter table, every set), and compares it with what the
 * model's data asks for: a route and both chains for every present endpoint
 * and none for the others, and each present endpoint's inbound address sets
 * holding exactly its group's addresses (SPEC §4's prototype rules).
 */
import type { Netns } from '../../test/support/netns.js';
import type { ChurnModel } from './model.js';

export interface KernelState {
  /** address → interface, for 192.168.0.0/16 host routes. */
  routes: Map<string, string>;
  /** Suffixes with a felix-to-S chain. */
  toChains: Set<string>;
  fromChains: Set<string>;
  /** felix-to-S → the entries of the address sets it matches on (/32 dropped). */
  inbound: Map<string, Set<string>>;
  /** felix- sets no rule references. */
  orphanSets: number;
}

export async function readKernel(ns: Netns): Promise<KernelState> {
  const out = await ns.run('sh', ['-c', 'ip -4 route show; echo @@; iptables-save -t filter; echo @@; ipset save'], { timeoutMs: 60000 });
  const [routeText = '', filter = '', sets = ''] = out.split(/^@@$/m);
  const routes = new Map<string, string>();
  for (const line of routeText.split('\n')) {
    const m = /^(192\.168\.\d+\.\d+) dev (\S+)/.exec(line);
    if (m) routes.set(m[1]!, m[2]!);
  }
  const members = new Map<string, string[]>();
  for (const line of sets.split('\n')) {
    const m = /^add (felix-\S+) (\S+)/.exec(line);
    if (m) (members.get(m[1]!) ?? members.set(m[1]!, []).get(m[1]!)!).push(m[2]!.replace(/\/32$/, ''));
    const c = /^create (felix-\S+) /.exec(line);
    if (c && !members.has(c[1]!)) members.set(c[1]!, []);
  }
  const toChains = new Set<string>();
  const fromChains = new Set<string>();
  const inbound = new Map<string, Set<string>>();
  const referenced = new Set<string>();
  for (const line of filter.split('\n')) {
    const declared = /^:felix-(to|from)-(\S+) /.exec(line);
    if (declared) (declared[1] === 'to' ? toChains : fromChains).add(declared[2]!);
    for (const m of line.matchAll(/--match-set (felix-\S+) /g)) referenced.add(m[1]!);
    const rule = /^-A felix-to-(\S+) .*--match-set (felix-4a-\S+) src/.exec(line);
    if (rule) {
      const entries = inbound.get(rule[1]!) ?? inbound.set(rule[1]!, new Set()).get(rule[1]!)!;
      for (const e of members.get(rule[2]!) ?? []) entries.add(e);
    }
  }
  const orphanSets = [...members.keys()].filter((s) => !referenced.has(s)).length;
  return { routes, toChains, fromChains, inbound, orphanSets };
}

/** What differs between the kernel and the model's data, in a few words each (empty: they match). */
export function differences(k: KernelState, model: ChurnModel): string[] {
  const problems: string[] = [];
  const present = model.present();
  const presentSuffixes = new Set(present.map((p) => p.slot.suffix));
  const groupAddrs = new Map<number, string[]>();
  for (let g = 1; g <= model.groups; g++)
    groupAddrs.set(
      g,
      model
        .membersOf(g)
        .map((i) => model.slots[i]!.addr)
        .sort(),
    );
  let badRoutes = 0;
  let badSets = 0;
  for (const { slot, group } of present) {
    if (k.routes.get(slot.addr) !== slot.ifname) badRoutes++;
    const have = [...(k.inbound.get(slot.suffix) ?? [])].sort();
    const want = groupAddrs.get(group)!;
    if (have.length !== want.length || have.some((a, i) => a !== want[i])) badSets++;
  }
  const presentAddrs = new Set(present.map((p) => p.slot.addr));
  const extraRoutes = [...k.routes.keys()].filter((a) => !presentAddrs.has(a)).length;
  if (badRoutes) problems.push(`${badRoutes} endpoints without their route`);
  if (extraRoutes) problems.push(`${extraRoutes} routes of absent endpoints`);
  const missing = [...presentSuffixes].filter((c) => !k.toChains.has(c) || !k.fromChains.has(c));
  const leftOver = [...new Set([...k.toChains, ...k.fromChains])].filter((c) => !presentSuffixes.has(c));
  if (missing.length) problems.push(`${missing.length} endpoints without their chains (e.g. ${missing[0]})`);
  if (leftOver.length) problems.push(`chains of ${leftOver.length} absent endpoints (e.g. ${leftOver[0]})`);
  if (badSets) problems.push(`${badSets} endpoints whose inbound set is not their group`);
  return problems;
}
