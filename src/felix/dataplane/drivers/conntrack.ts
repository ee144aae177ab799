/**
 * Conntrack entries through the `conntrack` tool (SPEC §6 "Conntrack (v2)"):
 * the fast path accepts established flows before any endpoint chain, so a
 * flow whose permission went must be forgotten by the kernel.
 */
import { CommandError, CommandRunner } from './commands.js';
import { ipFamily } from '../../../common/wire/codec.js';

export interface Conntrack {
  /** Deletes every flow with one of `addrs` as source or destination. */
  deleteFlows(addrs: readonly string[]): Promise<void>;
}

const CONCURRENCY = 8;

export class ConntrackTool implements Conntrack {
  constructor(private readonly runner: CommandRunner) {}

  async deleteFlows(addrs: readonly string[]): Promise<void> {
    const jobs = addrs.flatMap((a) => (['-s', '-d'] as const).map((side) => ['-D', '-f', ipFamily(a) === 6 ? 'ipv6' : 'ipv4', side, a]));
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < jobs.length) await this.delete(jobs[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, jobs.length) }, worker));
  }

  private async delete(args: string[]): Promise<void> {
    try {
      await this.runner.run('conntrack', args);
    } catch (err) {
      // The tool exits 1 when there was nothing to delete.
      if (err instanceof CommandError && /0 flow entries have been deleted/.test(err.stderr)) return;
      throw err;
    }
  }
}
