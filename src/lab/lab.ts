/**
 * The lab (SPEC §9): the seed's multi-host setup built from network
 * namespaces on this machine. Hosts `instance-N` are namespaces joined by a
 * bridge in a fabric namespace (198.18.0.0/24 and fd00:198:18::/64); each
 * runs BIRD and Felix, and host one also the plugin's two roles and the ACL
 * manager. Containers are further namespaces networked with
 * `network-container --netns`: IPv4, IPv6 or dual stack.
 *
 * Everything it makes carries the lab's prefix and is listed in
 * `DIR/lab.json`, so `down` removes all of it, from any process.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { readTextFile, writeFileAtomic } from '../common/files.js';
import { IniSections, formatIni } from '../common/ini.js';
import { waitFor } from '../common/poll.js';
import { canonicalEndpointIp, endpointKey, formatEndpointSection, formatFelixSection, readEndpointSection } from '../plugin/data.js';
import { renderBirdConfig } from './bird-config.js';
import { neighbourLimitProblem, readNeighbourLimits } from './neighbour-budget.js';
import { LAB_METRICS_PORTS, LabContainer, LabHost, LabState, addressIn, addressesOf, labStateFile, labStatusUrls, readLabState } from './state.js';

export type { LabCommand, LabContainer, LabHost, LabState } from './state.js';

/** dist/ of this build: the lab runs the same build's commands. */
const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const FABRIC_PREFIX = '198.18.0';
const FABRIC6_PREFIX = 'fd00:198:18::';
/**
 * Connection timings for every daemon of the lab. The defaults suit a demo;
 * fault tests want failures noticed within seconds.
 */
export interface LabTimings {
  /** A request unanswered this long: the socket is recreated and a resync runs (Felix, plugin ep, ACL manager). */
  connectionTimeoutMs: number;
  /** Keepalive and heartbeat interval; the ACL manager takes the plugin as lost after three silent ones. */
  keepaliveMs: number;
  /** Felix's periodic resync. */
  resyncIntervalSecs: number;
}

/** Every daemon hears from its peers at least every 2 s and gives up on one after 10 s. */
export const DEFAULT_LAB_TIMINGS: LabTimings = { connectionTimeoutMs: 10000, keepaliveMs: 2000, resyncIntervalSecs: 1800 };

export interface LabOptions {
  dir: string;
  hosts?: number;
  /** Unique prefix of every namespace the lab makes. */
  prefix?: string;
  asNumber?: number;
  /** Progress lines go here. */
  say?: (line: string) => void;
  /** Default: Felix 10 s timeout / 2 s keepalive, the other daemons their own defaults. */
  timings?: LabTimings;
  /** CurveZMQ on every socket: key pairs in DIR/keys, only the lab's own keys admitted (docs/security.md). */
  curve?: boolean;
}

/** One key pair per daemon role, made by `calico-keygen`. */
export const LAB_KEY_ROLES = ['plugin', 'aclmgr', 'felix'] as const;
export type LabKeyRole = (typeof LAB_KEY_ROLES)[number];
/** The client key list every daemon of a curve lab admits: the public keys of all roles. */
const LAB_CLIENT_KEYS = 'clients.txt';

async function run(cmd: string, args: string[]): Promise<string> {
  return (await execa(cmd, args)).stdout;
}

export function inNs(ns: string, cmd: string, ...args: string[]): Promise<string> {
  return run('ip', ['netns', 'exec', ns, cmd, ...args]);
}

/** How a probe went: through or not, and what it said on stderr. */
export interface ProbeOutcome {
  ok: boolean;
  stderr: string;
}

/** Succeeds or not, quietly: for probes. */
async function probe(ns: string, cmd: string, ...args: string[]): Promise<ProbeOutcome> {
  const r = await execa('ip', ['netns', 'exec', ns, cmd, ...args], { reject: false, timeout: 5000 });
  return { ok: r.exitCode === 0, stderr: r.stderr };
}

/** Endpoint ids look like docker ids: hex, unique in their first 11 characters. */
export function endpointIdFor(ip: string): string {
  return createHash('sha1').update(ip).digest('hex').slice(0, 12);
}

export class Lab {
  private constructor(readonly state: LabState) {}

  get hosts(): LabHost[] {
    return this.state.hosts;
  }

  get containers(): LabContainer[] {
    return this.state.containers;
  }

  get dataDir(): string {
    return path.join(this.state.dir, 'data');
  }

  get logDir(): string {
    return path.join(this.state.dir, 'logs');
  }

  static stateFile(dir: string): string {
    return labStateFile(dir);
  }

  static load(dir: string): Lab {
    return new Lab(readLabState(dir));
  }

  /** Builds the hosts and starts every daemon; on failure removes what it made. */
  static async up(opts: LabOptions): Promise<Lab> {
    const say = opts.say ?? (() => {});
    const n = opts.hosts ?? 2;
    if (n < 1 || n > 200) throw new Error('a lab has 1 to 200 hosts');
    const tooBig = neighbourLimitProblem({ hosts: n, ipv4Containers: 0, ipv6Containers: 0 }, await readNeighbourLimits());
    if (tooBig) throw new Error(tooBig);
    if (fs.existsSync(Lab.stateFile(opts.dir))) throw new Error(`a lab is already up in ${opts.dir} (run down first)`);
    const prefix = opts.prefix ?? `calab${process.pid.toString(36)}`;
    fs.mkdirSync(path.join(opts.dir, 'data'), { recursive: true });
    fs.mkdirSync(path.join(opts.dir, 'logs'), { recursive: true });
    const hosts = Array.from({ length: n }, (_, i) => ({
      name: `instance-${i + 1}`,
      ns: `${prefix}-h${i + 1}`,
      ip: `${FABRIC_PREFIX}.${i + 1}`,
      ip6: `${FABRIC6_PREFIX}${i + 1}`,
    }));
    const lab = new Lab({ prefix, dir: opts.dir, hosts, containers: [], pids: {} });
    lab.save();
    try {
      say(`building ${n} hosts on fabric ${FABRIC_PREFIX}.0/24 and ${FABRIC6_PREFIX}/64 (namespaces ${prefix}-*)`);
      await lab.buildFabric();
      if (opts.curve) {
        say('making CurveZMQ key pairs (plugin, aclmgr, felix)');
        await lab.makeKeys();
      }
      lab.writeConfigs(opts.asNumber ?? 64511, opts.timings ?? DEFAULT_LAB_TIMINGS);
      say('starting plugin (ep, network), ACL manager, Felix and BIRD');
      lab.startDaemons(opts.timings ?? DEFAULT_LAB_TIMINGS);
      await lab.waitForBgp();
      say('all BGP sessions established');
      return lab;
    } catch (err) {
      await lab.down();
      throw err;
    }
  }

  /** Stops every process and deletes every namespace and file of the lab. */
  async down(): Promise<void> {
    await Promise.all(Object.values(this.state.pids).map((pid) => stopProcess(pid)));
    const ours = (await run('ip', ['netns', 'list']))
      .split('\n')
      .map((l) => l.split(' ')[0]!)
      .filter((ns) => ns.startsWith(`${this.state.prefix}-`));
    for (const ns of ours) await execa('ip', ['netns', 'del', ns], { reject: false });
    fs.rmSync(Lab.stateFile(this.state.dir), { force: true });
    fs.rmSync(this.dataDir, { recursive: true, force: true });
    if (this.state.keysDir) fs.rmSync(this.state.keysDir, { recursive: true, force: true });
  }

  /** Records the lab; atomically, as calico-status may be reading it. */
  private save(): void {
    writeFileAtomic(Lab.stateFile(this.state.dir), JSON.stringify(this.state, null, 2));
  }

  private async buildFabric(): Promise<void> {
    const fabric = `${this.state.prefix}-fab`;
    await run('ip', ['netns', 'add', fabric]);
    await inNs(fabric, 'ip', 'link', 'add', 'br0', 'type', 'bridge');
    await inNs(fabric, 'ip', 'link', 'set', 'br0', 'up');
    for (const [i, h] of this.state.hosts.entries()) {
      await run('ip', ['netns', 'add', h.ns]);
      await inNs(h.ns, 'ip', 'link', 'set', 'lo', 'up');
      await inNs(h.ns, 'ip', 'link', 'add', 'fab0', 'type', 'veth', 'peer', 'name', `h${i + 1}`);
      await inNs(h.ns, 'ip', 'link', 'set', `h${i + 1}`, 'netns', fabric);
      await inNs(fabric, 'ip', 'link', 'set', `h${i + 1}`, 'master', 'br0', 'up');
      await inNs(h.ns, 'ip', 'addr', 'add', `${h.ip}/24`, 'dev', 'fab0');
      // No duplicate address detection: the lab hands out each address once, and BIRD can bind it at once.
      await inNs(h.ns, 'ip', '-6', 'addr', 'add', `${h.ip6}/64`, 'dev', 'fab0', 'nodad');
      await inNs(h.ns, 'ip', 'link', 'set', 'fab0', 'up');
    }
  }

  /** Key file of `role`: its secret (`.key`) or public (`.pub`) key; only in a curve lab. */
  keyFile(role: LabKeyRole, kind: 'key' | 'pub'): string {
    if (!this.state.keysDir) throw new Error('this lab runs without CurveZMQ (up --curve)');
    return path.join(this.state.keysDir, `${role}.${kind}`);
  }

  /** Runs the built `calico-keygen` per role and lists every public key as the admitted clients. */
  private async makeKeys(): Promise<void> {
    this.state.keysDir = path.join(this.state.dir, 'keys');
    for (const role of LAB_KEY_ROLES)
      await execa(process.execPath, [path.join(DIST, 'src/keygen/main.js'), '--out-dir', this.state.keysDir, '--name', role, '--force']);
    const clients = LAB_KEY_ROLES.map((role) => `${readTextFile(this.keyFile(role, 'pub')).trim()} ${role}\n`).join('');
    fs.writeFileSync(path.join(this.state.keysDir, LAB_CLIENT_KEYS), clients);
    this.save();
  }

  /** The `[security]` section for a daemon with `own` keys and these peers' public keys; none without curve. */
  private securitySection(own: LabKeyRole, peers: Record<string, LabKeyRole>): IniSections {
    if (!this.state.keysDir) return {};
    const keys: Record<string, string> = { CurveSecretKeyFile: this.keyFile(own, 'key'), CurvePublicKeyFile: this.keyFile(own, 'pub') };
    for (const [key, role] of Object.entries(peers)) keys[key] = this.keyFile(role, 'pub');
    keys['CurveClientKeysFile'] = path.join(this.state.keysDir, LAB_CLIENT_KEYS);
    return { security: keys };
  }

  /** The plugin's `--curve-*` flags for `role`; none without curve. */
  private pluginCurveFlags(role: 'ep' | 'network'): string[] {
    if (!this.state.keysDir) return [];
    const flags = ['--curve-secret-key', this.keyFile('plugin', 'key'), '--curve-public-key', this.keyFile('plugin', 'pub')];
    if (role === 'ep') flags.push('--felix-public-key', this.keyFile('felix', 'pub'));
    return [...flags, '--curve-client-keys', path.join(this.state.keysDir, LAB_CLIENT_KEYS)];
  }

  private writeConfigs(asNumber: number, timings: LabTimings): void {
    const dir = this.state.dir;
    const first = this.state.hosts[0]!;
    const log = (name: string) => ({ LogFilePath: path.join(this.logDir, `${name}.log`), LogSeverityFile: 'INFO', LogSeverityScreen: 'ERROR' });
    fs.writeFileSync(path.join(this.dataDir, 'felix.txt'), this.state.hosts.map((h) => formatFelixSection({ host: h.name, ip: h.ip, ip6: h.ip6 })).join('\n'));
    for (const h of this.state.hosts) {
      const felix = {
        global: { PluginAddress: first.ip, ACLAddress: first.ip, FelixHostname: h.name, MetadataAddr: 'None', ResyncIntervalSecs: timings.resyncIntervalSecs },
        log: log(`felix-${h.name}`),
        connection: { ConnectionTimeoutMillis: timings.connectionTimeoutMs, ConnectionKeepaliveIntervalMillis: timings.keepaliveMs },
        metrics: { MetricsPort: LAB_METRICS_PORTS.felix },
        ...this.securitySection('felix', { PluginPublicKeyFile: 'plugin', AclManagerPublicKeyFile: 'aclmgr' }),
      };
      fs.writeFileSync(path.join(dir, `felix-${h.name}.cfg`), formatIni(felix));
      // No prefixes given: the generator carries both default ranges (192.168.0.0/16, fd00:192:168::/48), as every host has ip6.
      const peers = this.state.hosts.filter((p) => p !== h).map((p) => ({ host: p.name, ip: p.ip, ip6: p.ip6 }));
      fs.writeFileSync(this.birdConfig(h), renderBirdConfig({ self: { host: h.name, ip: h.ip, ip6: h.ip6 }, peers, asNumber }));
    }
    const aclManager = {
      // The ACL heartbeat must come more often than Felix's timeout, or Felix would keep resubscribing.
      global: { PluginAddress: first.ip, AclHeartbeatIntervalMillis: timings.keepaliveMs },
      log: log('acl_manager'),
      connection: {
        ConnectionTimeoutMillis: timings.connectionTimeoutMs,
        ConnectionKeepaliveIntervalMillis: timings.keepaliveMs,
        PluginTimeoutMillis: 3 * timings.keepaliveMs,
      },
      metrics: { MetricsPort: LAB_METRICS_PORTS['acl-manager'] },
      ...this.securitySection('aclmgr', { PluginPublicKeyFile: 'plugin' }),
    };
    fs.writeFileSync(path.join(dir, 'acl_manager.cfg'), formatIni(aclManager));
  }

  private startDaemons(timings: LabTimings): void {
    const dir = this.state.dir;
    const [first, ...others] = this.state.hosts;
    const common = ['--data', this.dataDir, '--log-dir', this.logDir, '--log-severity-screen', 'ERROR'];
    const epTimings = ['--timeout-ms', String(timings.connectionTimeoutMs), '--keepalive-ms', String(timings.keepaliveMs)];
    const networkTimings = ['--heartbeat-ms', String(timings.keepaliveMs)];
    const metrics = (name: 'plugin-ep' | 'plugin-network') => ['--metrics-port', String(LAB_METRICS_PORTS[name])];
    this.spawnNode('plugin-network', first!.ns, 'src/plugin/main.js', [
      'network',
      ...common,
      ...metrics('plugin-network'),
      ...networkTimings,
      ...this.pluginCurveFlags('network'),
    ]);
    this.spawnNode('plugin-ep', first!.ns, 'src/plugin/main.js', ['ep', ...common, ...metrics('plugin-ep'), ...epTimings, ...this.pluginCurveFlags('ep')]);
    this.spawnNode('acl-manager', first!.ns, 'src/aclmgr/main.js', ['--config-file', path.join(dir, 'acl_manager.cfg')]);
    for (const h of [first!, ...others]) {
      this.spawnNode(`felix-${h.name}`, h.ns, 'src/felix/main.js', ['--config-file', path.join(dir, `felix-${h.name}.cfg`)]);
      this.spawn(`bird-${h.name}`, h.ns, 'bird', ['-f', '-R', '-c', this.birdConfig(h), '-s', this.birdSocket(h)]);
    }
    this.save();
  }

  /** The /status URLs of the daemons in host `h` (reachable only inside its namespace). */
  statusUrls(h: LabHost): string[] {
    return labStatusUrls(this.state, h);
  }

  /** Runs `calico-status` for host `h`'s daemons inside its namespace; exit code and output, never throws for a non-zero exit. */
  async calicoStatus(h: LabHost, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const urls = this.statusUrls(h).flatMap((u) => ['--url', u]);
    const r = await execa('ip', ['netns', 'exec', h.ns, process.execPath, path.join(DIST, 'src/status/main.js'), ...urls, ...args], {
      reject: false,
      timeout: 20000,
    });
    return { code: r.exitCode ?? 1, stdout: r.stdout, stderr: r.stderr };
  }

  birdConfig(h: LabHost): string {
    return path.join(this.state.dir, `bird-${h.name}.conf`);
  }

  birdSocket(h: LabHost): string {
    return path.join(this.state.dir, `bird-${h.name}.ctl`);
  }

  private spawnNode(name: string, ns: string, script: string, args: string[]): void {
    this.spawn(name, ns, process.execPath, [path.join(DIST, script), ...args]);
  }

  /** Starts a daemon inside `ns`, detached (it outlives `lab up`), output to logs/NAME.out. */
  private spawn(name: string, ns: string, cmd: string, args: string[]): ChildProcess {
    const out = fs.openSync(path.join(this.logDir, `${name}.out`), 'a');
    const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { detached: true, stdio: ['ignore', out, out] });
    fs.closeSync(out);
    child.unref();
    this.state.pids[name] = child.pid!;
    (this.state.commands ??= {})[name] = { ns, cmd, args };
    return child;
  }

  /** Sends `signal` to a recorded process (its whole process group); SIGKILL waits until it is gone. */
  async kill(name: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const pid = this.pid(name);
    process.kill(-pid, signal);
    if (signal === 'SIGKILL') await waitFor(`${name} (pid ${pid}) to die`, () => !isAlive(pid), 5000, 10);
  }

  /** Freezes a process (SIGSTOP): a hung peer whose sockets stay open but never answer. */
  pause(name: string): Promise<void> {
    return this.kill(name, 'SIGSTOP');
  }

  resume(name: string): Promise<void> {
    return this.kill(name, 'SIGCONT');
  }

  /** Starts a recorded process again with the same command, appending to the same log; stops it first if it runs. */
  async restart(name: string): Promise<void> {
    const command = this.state.commands?.[name];
    if (!command) throw new Error(`no recorded command for '${name}' in this lab`);
    const pid = this.state.pids[name];
    if (pid !== undefined && isAlive(pid)) await stopProcess(pid);
    this.spawn(name, command.ns, command.cmd, command.args);
    this.save();
  }

  private pid(name: string): number {
    const pid = this.state.pids[name];
    if (pid === undefined) throw new Error(`no process '${name}' in this lab (have ${Object.keys(this.state.pids).join(', ')})`);
    return pid;
  }

  /** Every host has every BGP session of its config established: one to every other host per address family. */
  private async waitForBgp(): Promise<void> {
    if (this.state.hosts.length < 2) return;
    await waitFor(
      'BGP sessions to be established',
      async () => {
        for (const h of this.state.hosts) {
          const sessions = (fs.readFileSync(this.birdConfig(h), 'utf8').match(/^protocol bgp /gm) ?? []).length;
          const out = await this.birdc(h, 'show', 'protocols');
          const established = out.split('\n').filter((l) => /\bBGP\b/.test(l) && /Established/.test(l)).length;
          if (established < sessions) return false;
        }
        return true;
      },
      30000,
      200,
    );
  }

  birdc(h: LabHost, ...args: string[]): Promise<string> {
    return inNs(h.ns, 'birdc', '-s', this.birdSocket(h), ...args);
  }

  host(name: string): LabHost {
    const h = this.state.hosts.find((x) => x.name === name || x.ns === name || x.name === `instance-${name}`);
    if (!h) throw new Error(`no host '${name}' in this lab (have ${this.state.hosts.map((x) => x.name).join(', ')})`);
    return h;
  }

  /** The container with this endpoint id, address, or (dual stack) address pair. */
  container(ip: string): LabContainer {
    const c = this.state.containers.find((x) => x.ip === ip || x.id === ip || addressesOf(x).includes(ip));
    if (!c) throw new Error(`no container '${ip}' in this lab`);
    return c;
  }

  /**
   * Makes a container namespace on `host` and networks it with network-container, as the seed does.
   * `address`: an address, or an IPv4,IPv6 pair for a dual-stack container.
   */
  async addContainer(address: string, group: string, hostName: string): Promise<LabContainer> {
    const h = this.host(hostName);
    const ip = canonicalEndpointIp(address);
    const taken = ip.split(',').find((a) => this.state.containers.some((c) => addressesOf(c).includes(a)));
    if (taken) throw new Error(`a container with ${taken} exists already`);
    // The lab as it would be with this container: refused before anything is made if the kernel's neighbour table cannot hold it.
    const all = [...this.state.containers, { ip }];
    const withFamily = (f: 4 | 6) => all.filter((x) => addressIn(x, f) !== undefined).length;
    const tooBig = neighbourLimitProblem(
      { hosts: this.state.hosts.length, ipv4Containers: withFamily(4), ipv6Containers: withFamily(6) },
      await readNeighbourLimits(),
    );
    if (tooBig) throw new Error(tooBig);
    const id = endpointIdFor(ip);
    const c: LabContainer = { id, ip, group, host: h.name, ns: `${this.state.prefix}-c${id.slice(0, 8)}` };
    await run('ip', ['netns', 'add', c.ns]);
    try {
      await inNs(
        h.ns,
        process.execPath,
        path.join(DIST, 'src/lab/network-container.js'),
        '--netns',
        c.ns,
        '--data-dir',
        this.dataDir,
        '--hostname',
        h.name,
        id,
        ip,
        group,
      );
    } catch (err) {
      await execa('ip', ['netns', 'del', c.ns], { reject: false });
      throw err;
    }
    // A TCP listener in every container, for the connectivity matrix: an IPv6 socket, which takes IPv4 too.
    this.spawn(`tcp-${id}`, c.ns, 'nc', ['-6', '-lk', '7000']);
    this.state.containers.push(c);
    this.save();
    return c;
  }

  /** The data file network-container wrote for `c`. */
  dataFile(c: LabContainer): string {
    return path.join(this.dataDir, `${endpointKey(c.ip)}.txt`);
  }

  /** Deletes only the container's data: the plugin destroys the endpoint, the namespace stays. */
  removeData(ip: string): void {
    fs.rmSync(this.dataFile(this.container(ip)), { force: true });
  }

  /** Removes the container's data (the plugin tells Felix) and its namespace. */
  async removeContainer(ip: string): Promise<void> {
    const c = this.container(ip);
    this.removeData(ip);
    const pid = this.state.pids[`tcp-${c.id}`];
    if (pid) await stopProcess(pid);
    this.state.pids = Object.fromEntries(Object.entries(this.state.pids).filter(([name]) => name !== `tcp-${c.id}`));
    await execa('ip', ['netns', 'del', c.ns], { reject: false });
    this.state.containers = this.state.containers.filter((x) => x !== c);
    this.save();
  }

  /** Moves a container to another group by rewriting its data file. */
  setGroup(ip: string, group: string): void {
    const c = this.container(ip);
    const file = this.dataFile(c);
    writeFileAtomic(file, formatEndpointSection({ ...readEndpointSection(readTextFile(file), file), group }));
    c.group = group;
    this.save();
  }

  /** One ping; a short `timeoutSec` gives fine-grained convergence timings. */
  async ping(from: LabContainer, ip: string, timeoutSec = 1): Promise<boolean> {
    return (await this.pingOutcome(from, ip, timeoutSec)).ok;
  }

  pingOutcome(from: LabContainer, ip: string, timeoutSec = 1): Promise<ProbeOutcome> {
    return probe(from.ns, 'ping', '-c', '1', '-W', String(timeoutSec), ip);
  }

  async tcp(from: LabContainer, ip: string): Promise<boolean> {
    return (await probe(from.ns, 'nc', '-z', '-w', '1', ip, '7000')).ok;
  }

  /** `ip route` (`ip -6 route`) of host `h`. */
  routes(h: LabHost, family: 4 | 6 = 4): Promise<string> {
    return inNs(h.ns, 'ip', `-${family}`, 'route', 'show');
  }

  /** Is each recorded process still running? */
  processes(): Array<{ name: string; pid: number; alive: boolean }> {
    return Object.entries(this.state.pids).map(([name, pid]) => ({ name, pid, alive: isAlive(pid) }));
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM to the process group, SIGKILL after 3 s. */
async function stopProcess(pid: number): Promise<void> {
  const signal = (s: NodeJS.Signals) => {
    try {
      process.kill(-pid, s);
    } catch {
      /* gone */
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + 3000;
  while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (isAlive(pid)) signal('SIGKILL');
}
