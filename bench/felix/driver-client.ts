/** Starts bench/felix/dataplane-driver inside a namespace and talks to it: one promise per command. */
import { spawn, ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const DRIVER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'dataplane-driver.js');

export interface DriverReply {
  ok: boolean;
  result?: unknown;
  error?: string;
  ms: number;
}

export class DataplaneDriver {
  private readonly child: ChildProcess;
  private seq = 0;
  private readonly pending = new Map<number, (r: DriverReply) => void>();
  private stderr = '';
  readonly exited: Promise<number | string>;

  constructor(netns: string, env: NodeJS.ProcessEnv = {}) {
    this.child = spawn('ip', ['netns', 'exec', netns, process.execPath, DRIVER], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-20000)));
    readline.createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const r = JSON.parse(line) as DriverReply & { seq: number };
      this.pending.get(r.seq)?.(r);
      this.pending.delete(r.seq);
    });
    void this.exited.then(() => {
      for (const resolve of this.pending.values()) resolve({ ok: false, error: `driver exited: ${this.stderr.slice(-2000)}`, ms: 0 });
      this.pending.clear();
    });
  }

  /** The driver's log output so far (last 20 kB). */
  log(): string {
    return this.stderr;
  }

  /** Sends a command; rejects if the driver reports an error. */
  async send(cmd: Record<string, unknown>): Promise<DriverReply> {
    const seq = ++this.seq;
    const reply = new Promise<DriverReply>((resolve) => this.pending.set(seq, resolve));
    this.child.stdin!.write(JSON.stringify({ ...cmd, seq }) + '\n');
    const r = await reply;
    if (!r.ok) throw new Error(`driver ${String(cmd['op'])}: ${r.error}`);
    return r;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.stdin!.end(JSON.stringify({ op: 'stop', seq: ++this.seq }) + '\n');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
  }

  /** Kills the driver without letting it clean up (a crash). */
  async kill(): Promise<void> {
    this.child.kill('SIGKILL');
    await this.exited;
  }
}
