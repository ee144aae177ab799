/** A {@link Clock} whose time moves and timers run only when a test advances it. */
import type { Clock } from '../../src/common/clock.js';

interface Timer {
  at: number;
  fn: () => void;
  everyMs: number | null;
}

export class FakeClock implements Clock {
  private time = 0;
  private readonly timers = new Map<number, Timer>();
  private next = 1;

  now(): number {
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.next++;
    this.timers.set(id, { at: this.time + Math.max(0, ms), fn, everyMs: null });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  setInterval(fn: () => void, ms: number): unknown {
    const id = this.next++;
    // Node runs an interval of 0 ms (or less) every 1 ms.
    const every = Math.max(1, ms);
    this.timers.set(id, { at: this.time + every, fn, everyMs: every });
    return id;
  }

  clearInterval(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** How many timers are set. */
  get pending(): number {
    return this.timers.size;
  }

  /** When the next timer falls due, or null if none is set. */
  get nextDue(): number | null {
    let at: number | null = null;
    for (const t of this.timers.values()) if (at === null || t.at < at) at = t.at;
    return at;
  }

  /** Moves time forward, running every timer that falls due (intervals repeatedly), in order. */
  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      let due: [number, Timer] | undefined;
      for (const entry of this.timers) if (entry[1].at <= end && (!due || entry[1].at < due[1].at)) due = entry;
      if (!due) break;
      const [id, t] = due;
      this.time = t.at;
      if (t.everyMs === null) this.timers.delete(id);
      else t.at += t.everyMs;
      t.fn();
    }
    this.time = end;
  }
}
