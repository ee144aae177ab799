/** ipset through `ipset list -t` (read) and `ipset -exist restore` (write). */
import type { CommandRunner } from './commands.js';
import { IpSetHeader, IpsetChanges, parseIpsetList, renderIpsetRestore } from '../render/restore.js';

export class IpsetDriver {
  constructor(private readonly runner: CommandRunner) {}

  async read(): Promise<Map<string, IpSetHeader>> {
    return parseIpsetList(await this.runner.run('ipset', ['list', '-t']));
  }

  async apply(changes: IpsetChanges): Promise<boolean> {
    const text = renderIpsetRestore(changes);
    if (text === '') return false;
    await this.runner.run('ipset', ['-exist', 'restore'], text);
    return true;
  }
}
