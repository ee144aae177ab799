/** Sysctls through /proc/sys (of the network namespace the process runs in). */
import fs from 'node:fs';

export interface Sysctl {
  /** Writes `value` unless it is already set; key like `net/ipv4/ip_forward`. */
  ensure(key: string, value: string): Promise<void>;
  /** The value, trimmed; null if there is no such key here (a child namespace lacks the kernel-wide ones). */
  read(key: string): Promise<string | null>;
}

/** Synchronous on purpose: /proc/sys reads and writes never block, and a thread-pool hop per file costs more than the work. */
export const procSysctl: Sysctl = {
  // The executor runs at once; what it throws rejects the promise, as an async function's would.
  ensure(key, value) {
    return new Promise((resolve) => {
      const file = `/proc/sys/${key}`;
      if (fs.readFileSync(file, 'utf8').trim() !== value) fs.writeFileSync(file, value);
      resolve();
    });
  },
  read(key) {
    return new Promise((resolve) => {
      try {
        resolve(fs.readFileSync(`/proc/sys/${key}`, 'utf8').trim());
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') resolve(null);
        else throw err;
      }
    });
  },
};

/** `net/ipv4/ip_forward` → `net.ipv4.ip_forward`, as sysctl(8) and the README write it. */
export const sysctlName = (key: string): string => key.replace(/\//g, '.');
