/**
 * What one logical connection has received, for /status and /metrics. The
 * owner creates it and hands it to the socket wrapper, so the counts survive
 * the wrapper recreating (or the owner replacing) the socket. Counters only
 * grow; they are read at scrape time.
 */
const MAX_KINDS = 64;

export class SocketStats {
  /** Messages received, by `type` and `rc` ('' when the message has none). */
  readonly received = new Map<string, { type: string; rc: string; count: number }>();
  /** When the last message arrived (ms since the epoch), or null. */
  lastReceivedAt: number | null = null;
  /** Times the socket was recreated because the peer went silent (REQ timeout, watchdog). */
  resets = 0;

  record(type: string, rc = ''): void {
    this.lastReceivedAt = Date.now();
    // A peer choosing types must not grow the map (or the metric's label set) without bound.
    if (!/^[A-Z]{1,32}$/.test(type) || (this.received.size >= MAX_KINDS && !this.received.has(`${type}\n${rc}`))) type = 'OTHER';
    if (!/^[A-Z]{0,16}$/.test(rc)) rc = 'OTHER';
    const key = `${type}\n${rc}`;
    const entry = this.received.get(key);
    if (entry) entry.count++;
    else this.received.set(key, { type, rc, count: 1 });
  }

  get total(): number {
    let n = 0;
    for (const e of this.received.values()) n += e.count;
    return n;
  }
}

/**
 * The type and rc of a reply body, for counting: replies are small, and one
 * that is not a JSON object counts as type `ERROR`, rc `INVALID`.
 */
export function replyKind(body: Buffer | object): { type: string; rc: string } {
  let msg: unknown = body;
  if (Buffer.isBuffer(body)) {
    try {
      msg = JSON.parse(body.toString('utf8'));
    } catch {
      return { type: 'ERROR', rc: 'INVALID' };
    }
  }
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return { type: 'ERROR', rc: 'INVALID' };
  const m = msg as Record<string, unknown>;
  return { type: typeof m['type'] === 'string' ? m['type'] : 'ERROR', rc: typeof m['rc'] === 'string' ? m['rc'] : '' };
}
