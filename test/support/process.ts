/**
 * Runs the project's built commands (dist/src/...) as real child processes,
 * collects their output, and kills whatever is left in `stopAll()`.
 */
import { spawn, ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (tests run from dist/test/...). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

export function binPath(relative: string): string {
  return path.join(ROOT, 'dist', relative);
}

export interface Running {
  child: ChildProcess;
  output: () => string;
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
}

const running = new Set<Running>();

/**
 * Starts `node dist/<script> args…`, optionally inside network namespace
 * `netns` (via `ip netns exec`).
 */
export function startCommand(script: string, args: string[], opts: { netns?: string; env?: NodeJS.ProcessEnv } = {}): Running {
  const argv = [process.execPath, binPath(script), ...args];
  const [cmd, ...rest] = opts.netns ? ['ip', 'netns', 'exec', opts.netns, ...argv] : argv;
  const child = spawn(cmd!, rest, { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const r: Running = { child, output: () => out, exited };
  running.add(r);
  void exited.then(() => running.delete(r));
  return r;
}

/** Runs a command to completion and returns its exit code and output. */
export async function runCommand(
  script: string,
  args: string[],
  opts: { netns?: string; timeoutMs?: number } = {},
): Promise<{ code: number | string; output: string }> {
  const r = startCommand(script, args, opts);
  const timer = setTimeout(() => r.child.kill('SIGKILL'), opts.timeoutMs ?? 15000);
  const code = await r.exited;
  clearTimeout(timer);
  return { code, output: r.output() };
}

export async function stop(r: Running, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (r.child.exitCode !== null || r.child.signalCode !== null) return;
  r.child.kill(signal);
  const timer = setTimeout(() => r.child.kill('SIGKILL'), 5000);
  await r.exited;
  clearTimeout(timer);
}

export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((r) => stop(r)));
}

export { waitFor } from '../../src/common/poll.js';
