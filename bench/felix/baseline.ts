/**
 * The two reference ways of programming the benchmark's workload in the
 * version-1 layout (./v1-layout.ts, self-contained), run inside a namespace:
 * `floor` hands everything to the kernel in one batch per tool (one ipset
 * restore, one iptables-restore, one ip -batch, then the sysctls);
 * `per-command` runs one iptables / ipset / ip command per rule, set member
 * and route, the way the 2014 Felix did. Rendering is not timed. Prints
 * {ms, commands, rules} as JSON.
 *
 * Usage: node dist/bench/felix/baseline.js floor|per-command N [distinct|group]
 */
import fs from 'node:fs/promises';
import { execa } from 'execa';
import { workloadOf } from './workload.js';
import { ipBatchText, ipsetRestoreText, iptablesRestoreText, renderV1, ruleCount } from './v1-layout.js';

const [mode, nText, kindText] = process.argv.slice(2);
const n = Number(nText);
const kind: string = kindText ?? 'distinct';
if ((mode !== 'floor' && mode !== 'per-command') || !(n > 0) || (kind !== 'distinct' && kind !== 'group')) {
  console.error('usage: baseline floor|per-command N [distinct|group]');
  process.exit(2);
}
const layout = renderV1(workloadOf(kind, n));

async function sysctls(ifname: string): Promise<void> {
  await fs.writeFile(`/proc/sys/net/ipv4/conf/${ifname}/proxy_arp`, '1');
  await fs.writeFile(`/proc/sys/net/ipv4/conf/${ifname}/route_localnet`, '1');
  await fs.writeFile(`/proc/sys/net/ipv4/neigh/${ifname}/proxy_delay`, '0');
}

let commands = 0;
async function run(cmd: string, args: string[], input?: string): Promise<void> {
  commands++;
  await execa(cmd, args, { input: input ?? '' });
}

let started: number;
if (mode === 'floor') {
  const sets = ipsetRestoreText(layout);
  const rules = iptablesRestoreText(layout);
  const routes = ipBatchText(layout);
  started = performance.now();
  await fs.writeFile('/proc/sys/net/ipv4/ip_forward', '1');
  await run('ipset', ['restore'], sets);
  await run('iptables-restore', ['--noflush'], rules);
  await run('ip', ['-batch', '-'], routes);
  for (const ifname of layout.ifnames) await sysctls(ifname);
} else {
  started = performance.now();
  await fs.writeFile('/proc/sys/net/ipv4/ip_forward', '1');
  for (const s of layout.sets) {
    await run('ipset', ['create', s.name, s.type, 'family', 'inet', 'maxelem', '1048576']);
    for (const m of s.members) await run('ipset', ['add', s.name, m]);
  }
  for (const c of layout.chains) await run('iptables', ['-N', c.name]);
  for (const c of layout.chains) for (const rule of c.rules) await run('iptables', ['-A', c.name, ...rule.split(' ')]);
  for (const j of layout.jumps) await run('iptables', ['-I', j.from, '1', ...j.rule.split(' ')]);
  for (const r of layout.routes) {
    await run('ip', ['route', 'add', `${r.addr}/32`, 'dev', r.ifname, 'scope', 'link']);
    await run('ip', ['neigh', 'add', r.addr, 'lladdr', r.mac, 'dev', r.ifname, 'nud', 'permanent']);
  }
  for (const ifname of layout.ifnames) await sysctls(ifname);
}
console.log(JSON.stringify({ ms: performance.now() - started, commands, rules: ruleCount(layout) }));
