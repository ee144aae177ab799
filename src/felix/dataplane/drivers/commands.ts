/**
 * The one way the dataplane runs external tools. Tests and the benchmark
 * wrap it (to count or fail calls); production uses {@link execaRunner}.
 */
import { execa } from 'execa';

export interface CommandRunner {
  /** Runs `cmd args…` with `input` on stdin; resolves with stdout, rejects (with stderr in the message) on failure. */
  run(cmd: string, args: string[], input?: string): Promise<string>;
}

export class CommandError extends Error {
  readonly code = 'ECOMMAND';
  constructor(
    readonly command: string,
    readonly stderr: string,
  ) {
    super(`${command} failed: ${stderr.trim().split('\n').slice(0, 5).join(' | ')}`);
  }
}

export const execaRunner: CommandRunner = {
  async run(cmd, args, input) {
    const r = await execa(cmd, args, { input: input ?? '', reject: false, stripFinalNewline: false, maxBuffer: 1 << 30 });
    if (r.exitCode !== 0) throw new CommandError(`${cmd} ${args.join(' ')}`, String(r.stderr || r.stdout || r.message));
    return r.stdout;
  },
};
