/**
 * Time as a daemon's timing logic sees it: keepalives, timeouts, watchdogs,
 * settle periods, retries. Passed in through constructor options (STYLE:
 * side effects behind narrow interfaces) so unit tests can run the logic on
 * test/support/fake-clock.ts in milliseconds instead of waiting in real time.
 */

export interface Clock {
  /**
   * Milliseconds on a monotonic scale, for measuring intervals only: not a
   * time of day (a wire `issued` or an id still takes `Date.now()`).
   */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

/**
 * Node's timers, unref'd: they never keep a process alive by themselves (a
 * daemon stays up on its sockets and servers; a test process can exit while a
 * forgotten retry timer waits). `now()` is `performance.now()`, which an NTP
 * step cannot move.
 */
export const realClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout | undefined),
  setInterval: (fn, ms) => setInterval(fn, ms).unref(),
  clearInterval: (h) => clearInterval(h as NodeJS.Timeout | undefined),
};
