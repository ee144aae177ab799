/** A clock whose timers run only when a test advances it (the Dataplane's `Clock`). */
import type { Clock } from '../../src/felix/dataplane/index.js';

interface Timer {
  at: number;
  fn: () => void;
  everyMs: number | null;
}

export class FakeClock implements Clock {
  now = 0;
  private readonly timers = new Map<number, Timer>();
  private next = 1;

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.next++;
    this.timers.set(id, { at: this.now + ms, fn, everyMs: null });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  setInterval(fn: () => void, ms: number): unknown {
    const id = this.next++;
    this.timers.set(id, { at: this.now + ms, fn, everyMs: ms });
    return id;
  }

  clearInterval(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** How many timers are set. */
  get pending(): number {
    return this.timers.size;
  }

  /** Moves time forward, running every timer that falls due (intervals repeatedly). */
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      let due: [number, Timer] | undefined;
      for (const entry of this.timers) if (entry[1].at <= end && (!due || entry[1].at < due[1].at)) due = entry;
      if (!due) break;
      const [id, t] = due;
      this.now = t.at;
      if (t.everyMs === null) this.timers.delete(id);
      else t.at += t.everyMs;
      t.fn();
    }
    this.now = end;
  }
}
