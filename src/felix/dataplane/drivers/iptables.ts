/** iptables / ip6tables through iptables-save and iptables-restore --noflush: one process per read or write. */
import type { CommandRunner } from './commands.js';
import type { Family } from '../render/names.js';
import { IptablesState, TableChanges, parseIptablesSave, renderIptablesRestore } from '../render/restore.js';

export class IptablesDriver {
  constructor(private readonly runner: CommandRunner, readonly family: Family) {}

  private tool(kind: 'save' | 'restore'): string {
    return `${this.family === 4 ? 'iptables' : 'ip6tables'}-${kind}`;
  }

  async read(): Promise<IptablesState> {
    return parseIptablesSave(await this.runner.run(this.tool('save'), []));
  }

  /** Applies all tables' changes in one restore (each table one transaction); false if there was nothing to do. */
  async apply(changes: TableChanges[]): Promise<boolean> {
    const text = renderIptablesRestore(changes);
    if (text === '') return false;
    await this.runner.run(this.tool('restore'), ['--noflush'], text);
    return true;
  }
}
