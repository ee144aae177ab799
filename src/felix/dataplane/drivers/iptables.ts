/** iptables / ip6tables through iptables-save and iptables-restore --noflush: one process per read or write. */
import type { CommandRunner } from './commands.js';
import type { Family } from '../render/names.js';
import { IptablesState, parseIptablesSave } from '../render/restore.js';

export class IptablesDriver {
  constructor(private readonly runner: CommandRunner, readonly family: Family) {}

  private tool(kind: 'save' | 'restore'): string {
    return `${this.family === 4 ? 'iptables' : 'ip6tables'}-${kind}`;
  }

  async read(): Promise<IptablesState> {
    return parseIptablesSave(await this.runner.run(this.tool('save'), []));
  }

  /** Every table block in one process; each block is its own transaction. */
  async restore(text: string): Promise<void> {
    if (text !== '') await this.runner.run(this.tool('restore'), ['--noflush'], text);
  }
}
