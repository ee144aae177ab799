/** Reading what Felix programmed in a namespace: the sets a chain uses, and sets no chain uses. */
import type { Netns } from './netns.js';

/** Members of one set, sorted. */
export async function setMembers(host: Netns, name: string): Promise<string[]> {
  const out = await host.run('ipset', ['list', name]);
  return (out.split('Members:')[1] ?? '')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .sort();
}

/** The names of every felix- set, sorted. */
export async function felixSets(host: Netns): Promise<string[]> {
  return (await host.run('ipset', ['list', '-n']))
    .split('\n')
    .filter((l) => l.startsWith('felix-'))
    .sort();
}

/** The members of the sets a chain matches on, by kind (from the name: felix-4a-…, felix-6p-…). */
export async function chainSets(host: Netns, chain: string, tool = 'iptables-save'): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const line of (await host.run(tool)).split('\n')) {
    const name = line.startsWith(`-A ${chain} `) ? /--match-set (felix-[46]([api])-\S+)/.exec(line) : null;
    if (name) out[{ a: 'addr', p: 'port', i: 'icmp' }[name[2] as 'a' | 'p' | 'i']] = await setMembers(host, name[1]!);
  }
  return out;
}

/** felix- sets that no iptables or ip6tables rule references (SPEC §6: a set lives exactly while a chain references it). */
export async function orphanSets(host: Netns): Promise<string[]> {
  const rules = (await host.run('iptables-save')) + (await host.run('ip6tables-save'));
  return (await felixSets(host)).filter((name) => !rules.includes(`--match-set ${name} `));
}
