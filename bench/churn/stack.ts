/**
 * One compute host with the whole system on it, as an orchestrator would
 * drive it: a network namespace with N endpoint interfaces (veth pairs), and
 * the built `plugin ep`, `plugin network`, `calico-acl-manager` and
 * `calico-felix` inside it, talking over the namespace's own loopback with
 * the spec's default ports and timeouts. Samples each daemon's RSS.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createNetns, deleteNetns, Netns } from '../../test/support/netns.js';
import { Running, startCommand, stop } from '../../test/support/process.js';
import { HOST, Slot } from './model.js';

export const DAEMONS = ['plugin-ep', 'plugin-network', 'acl-manager', 'felix'] as const;
export type Daemon = (typeof DAEMONS)[number];

export interface RssTrack {
  /** MB, when sampling was last reset (the idle baseline), the highest since, the latest. */
  idle: number;
  peak: number;
  last: number;
}

const rssMb = (pid: number): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
};

export class OneHostStack {
  readonly rss = new Map<Daemon, RssTrack>();
  private readonly daemons = new Map<Daemon, Running>();
  private sampler: NodeJS.Timeout | undefined;

  private constructor(
    readonly ns: Netns,
    readonly dir: string,
  ) {}

  get dataDir(): string {
    return path.join(this.dir, 'data');
  }

  log(daemon: 'felix' | 'acl-manager'): string {
    return path.join(this.dir, 'logs', daemon === 'felix' ? 'felix.log' : 'acl_manager.log');
  }

  /** The namespace and its interfaces; the daemons start with {@link start}, once the data is written. */
  static async create(dir: string, label: string, slots: Slot[]): Promise<OneHostStack> {
    fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'logs'), { recursive: true });
    const ns = await createNetns(label, 'cchurn');
    const stack = new OneHostStack(ns, dir);
    const batch = slots
      .map((s) => `link add ${s.ifname} type veth peer name p${s.ifname.slice(3)}\nlink set ${s.ifname} up\nlink set p${s.ifname.slice(3)} up`)
      .join('\n');
    await ns.run('ip', ['-batch', '-'], { input: batch + '\n', timeoutMs: 300000 });
    return stack;
  }

  start(): void {
    const logs = path.join(this.dir, 'logs');
    const felixCfg = path.join(this.dir, 'felix.cfg');
    fs.writeFileSync(
      felixCfg,
      `[global]\nPluginAddress = 127.0.0.1\nACLAddress = 127.0.0.1\nLocalAddress = 127.0.0.1\nFelixHostname = ${HOST}\nMetadataAddr = None\n\n` +
        `[log]\nLogFilePath = ${this.log('felix')}\nLogSeverityFile = ${process.env['FELIX_LOG_LEVEL'] ?? 'INFO'}\nLogSeverityScreen = ERROR\n`,
    );
    const aclCfg = path.join(this.dir, 'acl_manager.cfg');
    fs.writeFileSync(
      aclCfg,
      `[global]\nPluginAddress = 127.0.0.1\nLocalAddress = 127.0.0.1\n\n[log]\nLogFilePath = ${this.log('acl-manager')}\nLogSeverityFile = INFO\nLogSeverityScreen = ERROR\n`,
    );
    const plugin = ['--data', this.dataDir, '--bind', '127.0.0.1', '--log-dir', logs, '--log-severity-screen', 'ERROR'];
    const netns = this.ns.name;
    this.daemons.set('plugin-network', startCommand('src/plugin/main.js', ['network', ...plugin], { netns }));
    this.daemons.set('plugin-ep', startCommand('src/plugin/main.js', ['ep', ...plugin], { netns }));
    this.daemons.set('acl-manager', startCommand('src/aclmgr/main.js', ['--config-file', aclCfg], { netns }));
    this.daemons.set('felix', startCommand('src/felix/main.js', ['--config-file', felixCfg], { netns }));
    this.sampler = setInterval(() => this.sample(), 200);
    this.resetRss();
  }

  /** Throws, with the tail of its output, if a daemon has exited. */
  checkAlive(): void {
    for (const [name, d] of this.daemons) {
      if (d.child.exitCode !== null || d.child.signalCode !== null)
        throw new Error(`${name} exited (${d.child.exitCode ?? d.child.signalCode}): ${d.output().slice(-1500)}`);
    }
  }

  /** Starts the RSS figures again from now: `idle` = now. */
  resetRss(): void {
    for (const [name, d] of this.daemons) {
      const now = rssMb(d.child.pid!);
      this.rss.set(name, { idle: now, peak: now, last: now });
    }
  }

  /** Lines of a daemon's log file containing `text`. */
  countLogLines(daemon: 'felix' | 'acl-manager', text: string): number {
    try {
      return fs.readFileSync(this.log(daemon), 'utf8').split(text).length - 1;
    } catch {
      return 0;
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.sampler);
    await Promise.all([...this.daemons.values()].map((d) => stop(d)));
    await deleteNetns(this.ns);
  }

  private sample(): void {
    for (const [name, d] of this.daemons) {
      const t = this.rss.get(name);
      if (!t || d.child.exitCode !== null) continue;
      try {
        t.last = rssMb(d.child.pid!);
        t.peak = Math.max(t.peak, t.last);
      } catch {
        /* exited between the check and the read */
      }
    }
  }
}
