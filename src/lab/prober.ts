/**
 * Outage measurement for fault tests: a background loop that opens a new
 * flow (one fresh ping) between an allowed pair and a denied pair of lab
 * containers every interval, and records the longest run of failures of the
 * allowed pair and any success of the denied one. A fresh ping each time
 * matters: an established flow rides on conntrack and would hide a window
 * where an endpoint's rules deny new traffic.
 */
import type { Lab, LabContainer } from './lab.js';

export interface ProbePair {
  from: LabContainer;
  to: LabContainer;
}

export interface OutageReport {
  probes: number;
  /** Allowed-pair probes that failed. */
  failures: number;
  /** Longest time from the first failed allowed probe to the next successful one (0 if none failed). */
  worstOutageMs: number;
  /** The allowed pair was still failing when the prober stopped. */
  endedDown: boolean;
  /** Denied-pair probes that got through. */
  leaks: number;
}

/** Probes in the background from {@link start} to {@link stop}. */
export class OutageProber {
  private running = false;
  private loop: Promise<void> = Promise.resolve();
  private report: OutageReport = { probes: 0, failures: 0, worstOutageMs: 0, endedDown: false, leaks: 0 };
  private downSince: number | null = null;

  constructor(
    private readonly lab: Lab,
    private readonly allowed: ProbePair,
    private readonly denied: ProbePair,
    private readonly intervalMs = 100,
    /** Per-probe reply timeout: short, so probes stay close together. */
    private readonly replyTimeoutSec = 0.3,
  ) {}

  start(): void {
    if (this.running) throw new Error('prober already running');
    this.running = true;
    this.report = { probes: 0, failures: 0, worstOutageMs: 0, endedDown: false, leaks: 0 };
    this.downSince = null;
    this.loop = this.run();
  }

  async stop(): Promise<OutageReport> {
    this.running = false;
    await this.loop;
    if (this.downSince !== null) {
      this.report.endedDown = true;
      this.report.worstOutageMs = Math.max(this.report.worstOutageMs, Date.now() - this.downSince);
    }
    return { ...this.report };
  }

  private async run(): Promise<void> {
    while (this.running) {
      const at = Date.now();
      const [ok, leaked] = await Promise.all([
        this.lab.ping(this.allowed.from, this.allowed.to.ip, this.replyTimeoutSec),
        this.lab.ping(this.denied.from, this.denied.to.ip, this.replyTimeoutSec),
      ]);
      this.report.probes++;
      if (leaked) this.report.leaks++;
      if (!ok) {
        this.report.failures++;
        this.downSince ??= at;
      } else if (this.downSince !== null) {
        this.report.worstOutageMs = Math.max(this.report.worstOutageMs, at - this.downSince);
        this.downSince = null;
      }
      const wait = at + this.intervalMs - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  }
}
