/**
 * Latest wins per topic, before any decoding: publications read in one burst
 * (everything the socket had queued, read without the event loop turning)
 * are held by topic, a newer one replacing an older one, and handed on once
 * the burst is over, so a subscriber that fell behind decodes each topic's
 * newest message once instead of every state it missed.
 */
import type { TopicHandler } from './subscriber.js';

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

  private flush(): void {
    this.scheduled = false;
    const batch = this.pending;
    this.pending = new Map();
    for (const [topic, body] of batch) this.deliver(topic, body);
  }
}
