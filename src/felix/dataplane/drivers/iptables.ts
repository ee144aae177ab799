/** iptables / ip6tables through iptables-save and iptables-restore --noflush: one process per read or write. */
import type { CommandRunner } from './commands.js';
import type { Family } from '../render/names.js';
import { CountedRule, IptablesState, parseIptablesCounters, parseIptablesSave } from '../render/restore.js';

export class IptablesDriver {
  constructor(
    private readonly runner: CommandRunner,
    readonly family: Family,
  ) {}

  private tool(kind: 'save' | 'restore'): string {
    return `${this.family === 4 ? 'iptables' : 'ip6tables'}-${kind}`;
  }

  async read(): Promise<IptablesState> {
    return parseIptablesSave(await this.runner.run(this.tool('save'), []));
  }

  /** The filter table's chains with each rule's packet and byte counters (`iptables-save -c -t filter`). */
  async readCounters(): Promise<Map<string, CountedRule[]>> {
    return parseIptablesCounters(await this.runner.run(this.tool('save'), ['-c', '-t', 'filter'])).get('filter') ?? new Map();
  }

  /** Every table block in one process; each block is its own transaction. */
  async restore(text: string): Promise<void> {
    if (text !== '') await this.runner.run(this.tool('restore'), ['--noflush'], text);
  }
}
