/**
 * Network namespaces for tests: created with a unique name prefix, commands
 * run inside them, and all of them deleted in `deleteAllNetns()` (call it in
 * after/afterEach: it also runs on failure). Nothing here touches the root
 * namespace's iptables, ipsets, routes or sysctls.
 */
import { spawnSync } from 'node:child_process';
import { execa } from 'execa';

const created = new Set<string>();
let counter = 0;

// Last line of defence when a run is cut short (mocha --exit, Ctrl-C): nothing may outlive the process.
process.on('exit', () => {
  for (const name of created) spawnSync('ip', ['netns', 'del', name]);
});

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A network namespace this process created. */
export class Netns {
  constructor(readonly name: string) {}

  /** Runs `cmd args…` inside the namespace; never throws for a non-zero exit. */
  async exec(cmd: string, args: string[] = [], opts: { input?: string; timeoutMs?: number } = {}): Promise<ExecResult> {
    const r = await execa('ip', ['netns', 'exec', this.name, cmd, ...args], {
      input: opts.input ?? '',
      reject: false,
      timeout: opts.timeoutMs ?? 15000,
      maxBuffer: 1 << 28,
    });
    return { code: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
  }

  /** Like exec, but throws (with stderr) on a non-zero exit; returns stdout. */
  async run(cmd: string, args: string[] = [], opts: { input?: string; timeoutMs?: number } = {}): Promise<string> {
    const r = await this.exec(cmd, args, opts);
    if (r.code !== 0) throw new Error(`[${this.name}] ${cmd} ${args.join(' ')} → ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
    return r.stdout;
  }

  /** Runs a shell script inside the namespace (throws on failure). */
  sh(script: string, timeoutMs?: number): Promise<string> {
    return this.run('sh', ['-ec', script], { timeoutMs });
  }
}

/** The prefix of every namespace this process creates, e.g. `cfdp-1234-`. */
export function netnsPrefix(tag = 'cfdp'): string {
  return `${tag}-${process.pid}-`;
}

/** Creates namespace `<prefix><n>-<label>` with loopback up. */
export async function createNetns(label: string, tag = 'cfdp'): Promise<Netns> {
  const name = `${netnsPrefix(tag)}${++counter}-${label}`;
  await execa('ip', ['netns', 'add', name]);
  created.add(name);
  const ns = new Netns(name);
  await ns.run('ip', ['link', 'set', 'lo', 'up']);
  return ns;
}

export async function deleteNetns(ns: Netns): Promise<void> {
  // Processes left inside would keep the namespace alive after `ip netns del`.
  const pids = await execa('ip', ['netns', 'pids', ns.name], { reject: false });
  for (const pid of pids.stdout.split('\n').filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  await execa('ip', ['netns', 'del', ns.name], { reject: false });
  created.delete(ns.name);
}

/** Deletes every namespace this process created (safe to call more than once). */
export async function deleteAllNetns(): Promise<void> {
  for (const name of [...created]) await deleteNetns(new Netns(name));
}

export interface Container {
  ns: Netns;
  ip: string;
  mac: string;
  /** The host-side veth end, in the host namespace. */
  ifname: string;
}

/**
 * A "container": its own namespace, veth `ifname` in `host` (up unless
 * `up: false`), `eth0` inside with each address of `ip` (one, or an
 * `IPv4,IPv6` pair): IPv4 `/32` and a default route `dev eth0`, IPv6 `/128`
 * nodad and a default route via `fe80::1` — the layout network-container builds.
 */
export async function plugContainer(host: Netns, label: string, ip: string, ifname: string, opts: { up?: boolean; mac?: string } = {}): Promise<Container> {
  const ns = await createNetns(label);
  await host.run('ip', ['link', 'add', ifname, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.name]);
  if (opts.mac) await ns.run('ip', ['link', 'set', 'eth0', 'address', opts.mac]);
  const steps = ['ip link set eth0 up'];
  for (const addr of ip.split(',')) {
    if (addr.includes(':')) steps.push(`ip -6 addr add ${addr}/128 dev eth0 nodad`, 'ip -6 route add default via fe80::1 dev eth0');
    else steps.push(`ip addr add ${addr}/32 dev eth0`, 'ip route add default dev eth0');
  }
  await ns.sh(steps.join(' && '));
  if (opts.up !== false) await host.run('ip', ['link', 'set', ifname, 'up']);
  const mac = (await ns.run('cat', ['/sys/class/net/eth0/address'])).trim();
  return { ns, ip, mac, ifname };
}
