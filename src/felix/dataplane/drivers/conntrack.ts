/**
 * Conntrack entries through the `conntrack` tool (SPEC §6 "Conntrack (v2)"):
 * the fast path accepts established flows before any endpoint chain, so a
 * flow whose permission went must be forgotten by the kernel.
 */
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CommandRunner } from './commands.js';
import { ipFamily } from '../../../common/wire/codec.js';

export interface Conntrack {
  /** Deletes every flow with one of `addrs` as source or destination. */
  deleteFlows(addrs: readonly string[]): Promise<void>;
}

export class ConntrackTool implements Conntrack {
  constructor(private readonly runner: CommandRunner) {}

  /**
   * One `conntrack --load-file` for the whole batch: under churn hundreds of
   * addresses lose their permission a second, and a process per address and
   * side cost Felix most of a core in spawns. A line that matches no flow is
   * not an error there (unlike `conntrack -D` alone, which exits 1). The
   * commands go in a file of a fresh private directory: the tool opens its
   * input by name, and `/dev/stdin` cannot be opened on the socket a child's
   * stdin is here.
   */
  async deleteFlows(addrs: readonly string[]): Promise<void> {
    if (addrs.length === 0) return;
    const lines = addrs.flatMap((a) => ['-s', '-d'].map((side) => `-D -f ${ipFamily(a) === 6 ? 'ipv6' : 'ipv4'} ${side} ${a}\n`));
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'felix-conntrack-'));
    try {
      const file = path.join(dir, 'delete');
      await fsp.writeFile(file, lines.join(''), { mode: 0o600 });
      await this.runner.run('conntrack', ['--load-file', file]);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  }
}
