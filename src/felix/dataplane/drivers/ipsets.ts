/** ipset through `ipset save` (read, with contents) and `ipset -exist restore` (write). */
import type { CommandRunner } from './commands.js';
import { IpSetContent, parseIpsetSave } from '../render/restore.js';

export class IpsetDriver {
  constructor(private readonly runner: CommandRunner) {}

  async read(): Promise<Map<string, IpSetContent>> {
    return parseIpsetSave(await this.runner.run('ipset', ['save']));
  }

  async restore(text: string): Promise<void> {
    if (text !== '') await this.runner.run('ipset', ['-exist', 'restore'], text);
  }
}
