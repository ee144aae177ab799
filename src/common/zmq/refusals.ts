/**
 * Refused CurveZMQ handshakes: counted for /metrics and logged at most once
 * per reason per interval. Anybody who can reach a port can make one, so a
 * line per refusal would let them fill the disk; the count keeps the whole
 * picture. Refusals are reported by the ZAP handler (keys not admitted) and
 * by the monitor of every CURVE server socket (everything else).
 */
import type * as zmq from 'zeromq';
import type { Logger } from '../logging.js';
import { Clock, realClock } from '../clock.js';

/** Why a handshake was refused (the `reason` label of the metric). */
export type RefusalReason = 'unauthorised_key' | 'mechanism_mismatch' | 'bad_keys' | 'protocol' | 'other';

const SAYS: Record<RefusalReason, string> = {
  unauthorised_key: 'client key not admitted',
  mechanism_mismatch: 'client does not speak CURVE',
  bad_keys: 'decryption failed (the client has the wrong server key, or a broken key pair)',
  protocol: 'ZMTP protocol error',
  other: 'handshake failed',
};

/** What the limiter needs of a clock (tests pass a fake one). */
export type RefusalClock = Pick<Clock, 'now' | 'setTimeout'>;

/** Per reason: until when lines are held back, and how many were since the last line. */
interface Window {
  until: number;
  suppressed: number;
  flushing: boolean;
}

/**
 * Counts refused handshakes by reason and logs them rate-limited: the first
 * refusal of a reason is logged at once; later ones within `intervalMs` are
 * counted, and one line at the end of the interval says how many there were.
 * Use the process-wide {@link curveRefusals} (libzmq asks one ZAP handler
 * about every handshake of the process); create others only in tests.
 */
export class CurveRefusals {
  private readonly counts = new Map<RefusalReason, number>();
  private readonly windows = new Map<RefusalReason, Window>();

  constructor(
    private readonly intervalMs = 10000,
    private readonly clock: RefusalClock = realClock,
  ) {}

  /** Refusals so far, by reason (read at scrape time). */
  byReason(): ReadonlyMap<RefusalReason, number> {
    return this.counts;
  }

  /** Records one refusal; `details` (peer address, key, socket) go into the line if one is written. */
  refused(reason: RefusalReason, log: Logger, details: object = {}): void {
    this.counts.set(reason, (this.counts.get(reason) ?? 0) + 1);
    const now = this.clock.now();
    const w = this.windows.get(reason);
    if (!w || now >= w.until) {
      this.windows.set(reason, { until: now + this.intervalMs, suppressed: 0, flushing: false });
      log.warn(
        { ...details, reason },
        `CURVE handshake refused: ${SAYS[reason]} (further refusals for this reason are summarised every ${this.intervalMs / 1000} s)`,
      );
      return;
    }
    w.suppressed++;
    if (!w.flushing) {
      w.flushing = true;
      this.clock.setTimeout(() => this.flush(reason, log), w.until - now);
    }
  }

  /** The summary line at the end of an interval; a new interval starts, so a steady flood gives one line per interval. */
  private flush(reason: RefusalReason, log: Logger): void {
    const w = this.windows.get(reason)!;
    log.warn(
      { reason, suppressed: w.suppressed, total: this.counts.get(reason) },
      `CURVE handshake refused ${w.suppressed} more times in ${this.intervalMs / 1000} s: ${SAYS[reason]}`,
    );
    this.windows.set(reason, { until: this.clock.now() + this.intervalMs, suppressed: 0, flushing: false });
  }
}

/** The refusals of this process. */
export const curveRefusals = new CurveRefusals();

/** libzmq's protocol error codes, as zeromq.js names them, grouped into reasons. */
function protocolReason(code: string | undefined): RefusalReason {
  if (code === 'ERR_ZMTP_MECHANISM_MISMATCH') return 'mechanism_mismatch';
  if (code === 'ERR_ZMTP_CRYPTOGRAPHIC' || code === 'ERR_ZMTP_KEY_EXCHANGE') return 'bad_keys';
  return 'protocol';
}

/**
 * Reports the failed handshakes of a CURVE server socket to {@link curveRefusals}.
 * Authentication failures are left to the ZAP handler, which knows the key.
 */
export function watchRefusedHandshakes(socket: zmq.Socket, address: string, log: Logger): void {
  socket.events.on('handshake:error:protocol', (e) => curveRefusals.refused(protocolReason(e.error.code), log, { socket: address }));
  socket.events.on('handshake:error:other', () => curveRefusals.refused('other', log, { socket: address }));
}
