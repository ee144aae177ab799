/** Sysctls through /proc/sys (of the network namespace the process runs in). */
import fs from 'node:fs';

export interface Sysctl {
  /** Writes `value` unless it is already set; key like `net/ipv4/ip_forward`. */
  ensure(key: string, value: string): Promise<void>;
}

/** Synchronous on purpose: /proc/sys reads and writes never block, and a thread-pool hop per file costs more than the work. */
export const procSysctl: Sysctl = {
  async ensure(key, value) {
    const file = `/proc/sys/${key}`;
    if (fs.readFileSync(file, 'utf8').trim() !== value) fs.writeFileSync(file, value);
  },
};
