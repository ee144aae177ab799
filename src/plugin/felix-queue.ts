/**
 * What plugin ep still has to tell one Felix (SPEC §3 "Plugin ep under load
 * (v2)"), pure and without sockets. The 2014 plugin queued every message;
 * anybody reaching 9901 could then queue a whole resync per RESYNCSTATE
 * (issue #11: 200 requests, 400 000 creates, 600 MiB, a new container stuck
 * behind them). Here the queue holds at most one resync and one pending
 * change per endpoint, so its size is bounded by the host's endpoints
 * whatever the request rate.
 */
import type { PluginEndpoint } from './data.js';

/** One message for Felix; the caller encodes it when it is sent. */
export type Outgoing =
  | { kind: 'created'; endpoint: PluginEndpoint; resyncId: string | null }
  | { kind: 'updated'; endpoint: PluginEndpoint }
  | { kind: 'destroyed'; endpoint: PluginEndpoint };

export type ChangeKind = Outgoing['kind'];

/**
 * The unsent change for one endpoint: optionally a DESTROYED, then optionally
 * a CREATED or UPDATED carrying `endpoint` (the latest version).
 */
interface Pending {
  destroy: boolean;
  upsert: 'created' | 'updated' | null;
  endpoint: PluginEndpoint;
}

interface Resync {
  id: string;
  /** Endpoints whose create (carrying `id`) is still to be sent, as they were when it was asked for. */
  creates: Map<string, PluginEndpoint>;
}

/**
 * The outbound queue of one Felix: one resync at a time, plus pushed changes
 * coalesced per endpoint. Feed it with {@link push} and {@link startResync};
 * the sender takes {@link next} whenever the previous request was answered
 * (REQ: one in flight) and calls {@link reset} when the connection timed out.
 *
 * Coalescing (only changes not yet taken by {@link next}): CREATED then
 * UPDATED is one CREATED with the latest fields; UPDATED then UPDATED is the
 * latest UPDATED; CREATED then DESTROYED is nothing; UPDATED then DESTROYED
 * is DESTROYED; DESTROYED then CREATED is both, in that order (Felix
 * forgets the old endpoint, ACLs included, before it learns the new one).
 *
 * Order: resync creates and pushed changes take turns, so a push waits
 * behind at most as many resync creates as there are pushes ahead of it.
 * An endpoint's changes never overtake its own resync create: when either
 * turn reaches an endpoint that still owes one, that create goes first and
 * carries the latest fields, absorbing a pending CREATED or UPDATED.
 *
 * It knows nothing of sockets, timers or the data files; it must not be used
 * to decide what Felix has (a message taken is not a message answered).
 */
export class FelixQueue {
  private readonly pending = new Map<string, Pending>();
  private resync: Resync | null = null;
  private resyncTurn = false;
  /** Whether the message last taken by {@link next} was a resync create. */
  private lastTakenResync = false;

  /** The id of the resync whose creates are still being sent, or null. */
  get resyncInProgress(): string | null {
    return this.resync?.id ?? null;
  }

  /** Messages waiting: the resync's creates plus the pushed ones. */
  get size(): number {
    let n = this.resync?.creates.size ?? 0;
    for (const p of this.pending.values()) n += (p.destroy ? 1 : 0) + (p.upsert ? 1 : 0);
    return n;
  }

  /** Records a change for `endpoint`, merged with its unsent one (see the class notes). */
  push(kind: ChangeKind, endpoint: PluginEndpoint): void {
    const id = endpoint.id;
    const p = this.pending.get(id);
    if (!p) {
      this.pending.set(id, kind === 'destroyed' ? { destroy: true, upsert: null, endpoint } : { destroy: false, upsert: kind, endpoint });
      return;
    }
    p.endpoint = endpoint;
    if (kind !== 'destroyed') {
      p.upsert = kind === 'created' || p.upsert === 'created' || p.destroy ? 'created' : 'updated';
    } else if (p.upsert === 'created' && !p.destroy && !this.resync?.creates.has(id)) {
      // Felix never heard of it: nothing to say.
      this.pending.delete(id);
    } else {
      p.destroy = true;
      p.upsert = null;
    }
  }

  /**
   * Starts resync `id` over `endpoints` (the host's, now). Refused (false)
   * while a previous resync still has creates to send, so asking again
   * neither multiplies nor cancels it.
   */
  startResync(id: string, endpoints: readonly PluginEndpoint[]): boolean {
    if (this.resync) return false;
    if (endpoints.length > 0) this.resync = { id, creates: new Map(endpoints.map((e) => [e.id, e])) };
    return true;
  }

  /** The next message to send, or null when there is nothing to say. */
  next(): Outgoing | null {
    const pushes = this.pending.size > 0;
    this.lastTakenResync = false;
    if (this.resync && (this.resyncTurn || !pushes)) {
      this.resyncTurn = false;
      this.lastTakenResync = true;
      return this.resyncCreate(this.resync.creates.keys().next().value!);
    }
    if (!pushes) return null;
    this.resyncTurn = true;
    const [id, p] = this.pending.entries().next().value!;
    if (this.resync?.creates.has(id)) {
      this.lastTakenResync = true;
      return this.resyncCreate(id);
    }
    if (p.destroy) {
      p.destroy = false;
      if (!p.upsert) this.pending.delete(id);
      return { kind: 'destroyed', endpoint: p.endpoint };
    }
    this.pending.delete(id);
    return p.upsert === 'created' ? { kind: 'created', endpoint: p.endpoint, resyncId: null } : { kind: 'updated', endpoint: p.endpoint };
  }

  /**
   * The connection timed out and was recreated: pushed changes stay. A
   * resync one of whose creates was the message lost is abandoned (that
   * Felix restarts a resync that does not complete); a resync still whole
   * stays, since it was asked for after the lost message, by a Felix that
   * is answering (a 2014 Felix resyncs again only after one completes).
   */
  reset(): void {
    if (this.lastTakenResync) this.resync = null;
    this.lastTakenResync = false;
  }

  private resyncCreate(id: string): Outgoing {
    const r = this.resync!;
    let endpoint = r.creates.get(id)!;
    r.creates.delete(id);
    if (r.creates.size === 0) this.resync = null;
    const p = this.pending.get(id);
    if (p && !p.destroy && p.upsert) {
      endpoint = p.endpoint;
      this.pending.delete(id);
    }
    return { kind: 'created', endpoint, resyncId: r.id };
  }
}
