/**
 * The two reference ways of programming the benchmark's workload, run inside
 * a namespace: `floor` hands everything to the kernel in one batch per tool
 * (one ipset restore, one iptables-restore, one ip -batch); `per-command`
 * runs one iptables / ipset / ip command per rule, set member and route, the
 * way the 2014 Felix did. Prints {ms, commands} as JSON.
 *
 * Usage: node dist/bench/felix/baseline.js floor|per-command N
 */
import fs from 'node:fs/promises';
import { execa } from 'execa';
import { workload } from './workload.js';
import { aclMembers, renderEndpointFilter } from '../../src/felix/dataplane/render/endpoint.js';
import { dispatchRules, renderDispatchChains, renderHostChains, hostJumps } from '../../src/felix/dataplane/render/chains.js';
import { renderIpsetRestore, renderIptablesRestore } from '../../src/felix/dataplane/render/restore.js';
import type { Chain, IpSet } from '../../src/felix/dataplane/render/chains.js';

const [mode, nText] = process.argv.slice(2);
const n = Number(nText);
const w = workload(n);

const sets: IpSet[] = [];
const chains: Chain[] = [...renderHostChains('tap')];
const from = new Map<string, string>();
const to = new Map<string, string>();
for (const { spec, acls } of w) {
  const program = renderEndpointFilter(spec, aclMembers(acls).members).get(4)!;
  sets.push(...program.sets);
  chains.push(...program.chains);
  const d = dispatchRules(spec.ifname, spec.id.slice(0, 11));
  from.set(spec.ifname, d.from);
  to.set(spec.ifname, d.to);
}
chains.push(...renderDispatchChains(from, to));

async function sysctls(ifname: string): Promise<void> {
  await fs.writeFile(`/proc/sys/net/ipv4/conf/${ifname}/proxy_arp`, '1');
  await fs.writeFile(`/proc/sys/net/ipv4/conf/${ifname}/route_localnet`, '1');
}

let commands = 0;
async function run(cmd: string, args: string[], input?: string): Promise<void> {
  commands++;
  await execa(cmd, args, { input: input ?? '' });
}

const started = performance.now();
if (mode === 'floor') {
  await run('ipset', ['restore'], renderIpsetRestore({ create: sets, replace: [], destroy: [] }));
  await run('iptables-restore', ['--noflush'], renderIptablesRestore([{ table: 'filter', write: chains, remove: [], insertJumps: hostJumps(), deleteJumps: [] }]));
  await run('ip', ['-batch', '-'], w.map(({ spec }) => `route add ${spec.addrs[0]}/32 dev ${spec.ifname} scope link\nneigh add ${spec.addrs[0]} lladdr ${spec.mac} dev ${spec.ifname} nud permanent`).join('\n') + '\n');
  for (const { spec } of w) await sysctls(spec.ifname);
} else if (mode === 'per-command') {
  for (const s of sets) {
    await run('ipset', ['create', s.name, s.type, 'family', 'inet']);
    for (const m of s.members) await run('ipset', ['add', s.name, m]);
  }
  for (const c of chains) await run('iptables', ['-N', c.name]);
  for (const c of chains) for (const rule of c.rules) await run('iptables', ['-A', c.name, ...rule.split(' ')]);
  for (const j of hostJumps()) await run('iptables', ['-I', j.from, ...j.rule.split(' ')]);
  for (const { spec } of w) {
    await run('ip', ['route', 'add', `${spec.addrs[0]}/32`, 'dev', spec.ifname, 'scope', 'link']);
    await run('ip', ['neigh', 'add', spec.addrs[0]!, 'lladdr', spec.mac, 'dev', spec.ifname, 'nud', 'permanent']);
    await sysctls(spec.ifname);
  }
} else {
  console.error('usage: baseline floor|per-command N');
  process.exit(2);
}
const rules = chains.reduce((a, c) => a + c.rules.length, 0) + sets.reduce((a, s) => a + s.members.length, 0);
console.log(JSON.stringify({ ms: performance.now() - started, commands, rules }));
