/**
 * Exponential backoff, written once: each wait twice the last, from a first
 * wait up to a ceiling, back to the first after a success. Felix's
 * GETACLSTATE asks (SPEC §5: 100 ms, then doubling up to the connection
 * timeout), the dataplane's retries of a failing endpoint or host apply
 * (STYLE: fail closed, retry with backoff), and the XPUB's sends at the
 * high-water mark all take their waits from one.
 */

export class Backoff {
  private last = 0;

  /** `firstMs` is the first wait, `maxMs` the longest; a first wait above the ceiling is cut to it. */
  constructor(
    private readonly firstMs: number,
    private readonly maxMs: number,
  ) {
    if (!(firstMs > 0) || !(maxMs > 0)) throw new RangeError(`backoff waits must be positive (first ${firstMs} ms, max ${maxMs} ms)`);
  }

  /** The next wait: the first one, then twice the one before, never above the ceiling. */
  next(): number {
    this.last = Math.min(this.last === 0 ? this.firstMs : this.last * 2, this.maxMs);
    return this.last;
  }

  /** The wait {@link next} gave last; 0 before the first and after {@link reset}. */
  get current(): number {
    return this.last;
  }

  /** After a success: the next wait is the first one again. */
  reset(): void {
    this.last = 0;
  }
}
