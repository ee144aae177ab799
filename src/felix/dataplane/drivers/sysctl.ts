/** Sysctls through /proc/sys (of the network namespace the process runs in). */
import fs from 'node:fs/promises';

export interface Sysctl {
  /** Writes `value` unless it is already set; key like `net/ipv4/ip_forward`. */
  ensure(key: string, value: string): Promise<void>;
}

export const procSysctl: Sysctl = {
  async ensure(key, value) {
    const file = `/proc/sys/${key}`;
    const current = (await fs.readFile(file, 'utf8')).trim();
    if (current !== value) await fs.writeFile(file, value);
  },
};
