/**
 * Outage measurement for fault tests: inside the source container's
 * namespace a loop opens a new flow (one fresh ping) every few tens of
 * milliseconds, to an allowed peer and, separately, to a denied one; the
 * report gives the longest run of failures of the allowed pair and any
 * success of the denied one. A fresh ping each time matters: an established
 * flow rides on conntrack and would hide a window where an endpoint's rules
 * deny new traffic.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { type LabContainer, addressesOf } from './state.js';

/** `from` pings `to` (its IPv4 address if it has one; the ping works out the family). */
export interface ProbePair {
  from: LabContainer;
  to: LabContainer;
}

export interface OutageReport {
  /** Allowed-pair probes, and how many failed. */
  probes: number;
  failures: number;
  /** Longest time from the start of the first failed allowed probe to the start of the next successful one (0 if none failed). */
  worstOutageMs: number;
  /** The allowed pair was still failing when the prober stopped. */
  endedDown: boolean;
  /** Denied-pair probes, and how many got through. */
  deniedProbes: number;
  leaks: number;
}

interface Probe {
  at: number;
  ok: boolean;
}

/** One probe loop in `from`'s namespace; each line of its output is "<start, epoch ms> <1|0>". */
function probeLoop(pair: ProbePair, gapSec: number, replyTimeoutSec: number, onProbe: (p: Probe) => void): ChildProcess {
  const script =
    `while :; do t=\${EPOCHREALTIME/./}; ` +
    `if ping -n -q -c 1 -W ${replyTimeoutSec} ${addressesOf(pair.to)[0]} >/dev/null 2>&1; then echo "\${t:0:-3} 1"; else echo "\${t:0:-3} 0"; fi; sleep ${gapSec}; done`;
  const child = spawn('ip', ['netns', 'exec', pair.from.ns, 'bash', '-c', script], { stdio: ['ignore', 'pipe', 'ignore'], detached: true });
  let partial = '';
  child.stdout.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      const [at, ok] = line.split(' ');
      if (at && ok) onProbe({ at: Number(at), ok: ok === '1' });
    }
  });
  return child;
}

/** Probes in the background from {@link start} to {@link stop}. */
export class OutageProber {
  private children: ChildProcess[] = [];
  private allowedProbes: Probe[] = [];
  private deniedProbes: Probe[] = [];

  constructor(
    private readonly allowed: ProbePair,
    private readonly denied: ProbePair,
    /** Pause between probes of one pair. */
    private readonly gapSec = 0.03,
    /** Reply timeout of one probe: short, so probes stay close together. */
    private readonly replyTimeoutSec = 0.2,
  ) {}

  start(): void {
    if (this.children.length > 0) throw new Error('prober already running');
    this.allowedProbes = [];
    this.deniedProbes = [];
    this.children = [
      probeLoop(this.allowed, this.gapSec, this.replyTimeoutSec, (p) => this.allowedProbes.push(p)),
      probeLoop(this.denied, this.gapSec, this.replyTimeoutSec, (p) => this.deniedProbes.push(p)),
    ];
  }

  async stop(): Promise<OutageReport> {
    const children = this.children.splice(0);
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) {
              resolve();
              return;
            }
            c.once('close', () => resolve());
            try {
              process.kill(-c.pid!, 'SIGTERM');
            } catch {
              resolve();
            }
          }),
      ),
    );
    return summarise(this.allowedProbes, this.deniedProbes);
  }
}

/** Pure: the outage report of two probe series. */
export function summarise(allowed: Probe[], denied: Probe[]): OutageReport {
  let worst = 0;
  let downSince: number | null = null;
  for (const p of allowed) {
    if (!p.ok) downSince ??= p.at;
    else if (downSince !== null) {
      worst = Math.max(worst, p.at - downSince);
      downSince = null;
    }
  }
  const last = allowed[allowed.length - 1];
  if (downSince !== null && last) worst = Math.max(worst, last.at - downSince);
  return {
    probes: allowed.length,
    failures: allowed.filter((p) => !p.ok).length,
    worstOutageMs: worst,
    endedDown: downSince !== null,
    deniedProbes: denied.length,
    leaks: denied.filter((p) => p.ok).length,
  };
}
