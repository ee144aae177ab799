/**
 * Link events from `ip -o monitor link` (iproute2), not from the `netlink`
 * package: when a burst of events overflows a netlink socket (ENOBUFS), the
 * kernel flags the socket with an error, libuv reports that to the package's
 * native addon as a poll error, and the addon's error path aborts the whole
 * process (`terminate called after throwing an instance of 'Napi::Error'`,
 * seen with 300 interfaces made at once). `ip monitor` reports the loss on
 * stderr and goes on; the listener is told, and reads the links again.
 */
import { ChildProcess, spawn } from 'node:child_process';
import readline from 'node:readline';
import type { LinkEvent } from './netlink.js';

/** `3: tapX@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu …` or `Deleted 3: tapX@NONE: <…> …`. */
const LINE_RE = /^(Deleted )?(\d+): ([^\s:@]+)(?:@[^\s:]*)?: <([^>]*)>/;

/** One line of `ip -o monitor link` as an event; null for anything else. */
export function parseMonitorLine(line: string): LinkEvent | null {
  const m = LINE_RE.exec(line);
  if (!m) return null;
  const index = Number(m[2]);
  const name = m[3]!;
  if (m[1]) return { kind: 'removed', index, name };
  return { kind: 'up-or-changed', link: { index, name, up: m[4]!.split(',').includes('UP') } };
}

/**
 * `ip monitor` runs under `setpriv --pdeathsig` (util-linux, essential on
 * Debian) so that it ends with Felix even when Felix is killed with SIGKILL;
 * left behind in a namespace without link events, it would never learn that
 * its reader went. Without setpriv it runs bare.
 */
let viaSetpriv = true;

/** How long after (re)starting the monitor the listener is told to read everything again: events before it subscribed are not seen. */
const SUBSCRIBED_MS = 200;
const RESTART_MS = 1000;

export class LinkMonitor {
  private child: ChildProcess | null = null;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;

  /** `rcvbuf`: the monitor's socket buffer in bytes (iproute2's default when unset; tests make it small). */
  constructor(
    private readonly onEvent: (e: LinkEvent) => void,
    /** `why`: the kernel dropped events (`overflow`), or the monitor (re)started and may have missed some (`started`). */
    private readonly onLost: (why: 'overflow' | 'started') => void,
    private readonly rcvbuf?: number,
  ) {}

  start(): void {
    if (this.closed) return;
    const args = ['-o', ...(this.rcvbuf ? ['-rcvbuf', String(this.rcvbuf)] : []), 'monitor', 'link'];
    const [cmd, ...cmdArgs] = viaSetpriv ? ['setpriv', '--pdeathsig', 'TERM', 'ip', ...args] : ['ip', ...args];
    const child = spawn(cmd, cmdArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      const e = parseMonitorLine(line);
      if (e) this.onEvent(e);
    });
    // "netlink receive error No buffer space available (105)": events were dropped.
    readline.createInterface({ input: child.stderr }).on('line', (line) => {
      if (/No buffer space/i.test(line)) this.onLost('overflow');
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' && cmd === 'setpriv') viaSetpriv = false;
    });
    // After an exit, or a failure to start at all (then there is no exit).
    child.on('close', () => {
      if (this.child !== child || this.closed) return;
      this.child = null;
      this.timer = setTimeout(() => this.start(), RESTART_MS);
    });
    this.timer = setTimeout(() => this.onLost('started'), SUBSCRIBED_MS);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.child?.kill();
    this.child = null;
  }
}
