/**
 * Latest wins per topic, before any decoding: publications read in one burst
 * (everything the socket had queued, read without the event loop turning)
 * are held by topic, a newer one replacing an older one, and handed on once
 * the burst is over, so a subscriber that fell behind decodes each topic's
 * newest message once instead of every state it missed.
 */
import type { TopicHandler } from './subscriber.js';

/** Messages handed on per turn of the event loop. */
const CHUNK = 32;

export class LatestPerTopic {
  /** Publications replaced by a newer one on the same topic before they were handed on. */
  superseded = 0;
  private pending = new Map<string, Buffer>();
  private scheduled = false;

  constructor(
    private readonly deliver: TopicHandler,
    /** When the burst is over: the next turn of the event loop, by default. */
    private readonly later: (fn: () => void) => void = (fn) => void setImmediate(fn),
  ) {}

  push(topic: string, body: Buffer): void {
    if (this.pending.delete(topic)) this.superseded++;
    // Re-inserted: topics are handed on in the order of their newest message.
    this.pending.set(topic, body);
    if (this.scheduled) return;
    this.scheduled = true;
    this.later(() => this.flush());
  }

  /**
   * Hands on what is held, a few at a time with a turn of the event loop in
   * between, so a burst of thousands does not hold up the process's other
   * sockets; what arrives meanwhile still replaces what is not handed on yet.
   */
  private flush(): void {
    let n = 0;
    for (const [topic, body] of this.pending) {
      if (n++ === CHUNK) {
        this.later(() => this.flush());
        return;
      }
      this.pending.delete(topic);
      this.deliver(topic, body);
    }
    this.scheduled = false;
  }
}
