/**
 * A ZAP handler (ZeroMQ RFC 27) admitting only known CURVE clients. Without
 * one, CURVE encrypts and authenticates the server, but any client that
 * knows the server's public key gets in. libzmq asks the handler bound at
 * `inproc://zeromq.zap.01` in the same context about every CURVE handshake
 * on every server socket of the process, so start it before binding them.
 */
import * as zmq from 'zeromq';
import type { Logger } from '../logging.js';
import { z85Encode } from '../curve.js';
import { curveRefusals } from './refusals.js';

const ZAP_ENDPOINT = 'inproc://zeromq.zap.01';

export class CurveAuthorizer {
  private closed = false;

  private constructor(
    private readonly socket: zmq.Router,
    private readonly allowed: ReadonlySet<string>,
    private readonly log: Logger,
  ) {
    void this.loop();
  }

  /** `allowed`: the Z85 public keys of the clients to let in. */
  static async start(allowed: ReadonlySet<string>, log: Logger): Promise<CurveAuthorizer> {
    const socket = new zmq.Router({ linger: 0 });
    await socket.bind(ZAP_ENDPOINT);
    log.info({ clients: allowed.size }, 'admitting only known CURVE client keys');
    return new CurveAuthorizer(socket, allowed, log);
  }

  close(): void {
    this.closed = true;
    this.socket.close();
  }

  private async loop(): Promise<void> {
    try {
      // [routing id, '', version, request id, domain, address, identity, mechanism, credentials…]
      for await (const [id, , version, requestId, , address, , mechanism, credentials] of this.socket) {
        const key = mechanism?.toString() === 'CURVE' && credentials?.length === 32 ? z85Encode(credentials) : null;
        const ok = version?.toString() === '1.0' && key !== null && this.allowed.has(key);
        if (!ok) curveRefusals.refused('unauthorised_key', this.log, { address: address?.toString(), key });
        await this.socket.send([id!, '', '1.0', requestId ?? '', ok ? '200' : '400', ok ? 'OK' : 'key not authorised', ok ? key : '', '']);
      }
    } catch (err) {
      if (!this.closed) this.log.error({ err }, 'ZAP handler failed');
    }
  }
}
