/**
 * RequestClient's timing (SPEC §2) on a fake clock: HEARTBEAT after exactly
 * `keepaliveMs` of idleness, timeout → recreate → onReset after exactly
 * `timeoutMs` without a reply. The peer is a real ROUTER on loopback, so what
 * goes on the wire is real; only time is simulated, and nothing waits for it.
 */
import { expect } from 'chai';
import { pino } from 'pino';
import * as zmq from 'zeromq';
import { waitFor } from '../../../src/common/poll.js';
import { GETACLSTATE, GetAclState } from '../../../src/common/wire/acl-api.js';
import { GETGROUPS } from '../../../src/common/wire/network-api.js';
import type { AclRequest } from '../../../src/common/wire/requests.js';
import { ConnectionResetError, RequestClient, RequestClientOptions } from '../../../src/common/zmq/request-client.js';
import { SocketStats } from '../../../src/common/zmq/stats.js';
import { FakeClock } from '../../support/fake-clock.js';
import { freePort } from '../../support/ports.js';
import { errorMessage } from '../../../src/common/errors.js';

type Line = { level: number; msg: string; err?: { message?: string }; [k: string]: unknown };

/** A ROUTER standing in for the server: records each request, answers when told to. */
class RouterPeer {
  readonly requests: Array<{ id: Buffer; type: string; endpoint: string | undefined }> = [];
  private readonly socket = new zmq.Router({ linger: 0 });

  async bind(address: string): Promise<void> {
    await this.socket.bind(address);
    void (async () => {
      try {
        for await (const [id, , body] of this.socket) {
          const msg = JSON.parse(body!.toString()) as { type: string; endpoint_id?: string };
          this.requests.push({ id: id!, type: msg.type, endpoint: msg.endpoint_id });
        }
      } catch {
        /* closed */
      }
    })();
  }

  /** Resolves with the `n`th request (1-based) once it has arrived (a real event: loopback takes a millisecond). */
  async nth(n: number): Promise<{ id: Buffer; type: string; endpoint: string | undefined }> {
    await waitFor(`request ${n} at the peer`, () => this.requests.length >= n, 5000, 1);
    return this.requests[n - 1]!;
  }

  async answer(req: { id: Buffer; type: string }, rc = 'SUCCESS'): Promise<void> {
    await this.socket.send([req.id, '', JSON.stringify({ type: req.type, rc, message: '' })]);
  }

  close(): void {
    this.socket.close();
  }
}

const ask = (endpoint: string): GetAclState => ({ type: GETACLSTATE, endpoint_id: endpoint, issued: 1 });

describe('RequestClient timing (fake clock, real sockets)', () => {
  let peer: RouterPeer;
  let address: string;
  let clock: FakeClock;
  let lines: Line[];
  let resets: string[];
  const clients: RequestClient[] = [];

  beforeEach(async () => {
    address = `tcp://127.0.0.1:${await freePort()}`;
    peer = new RouterPeer();
    await peer.bind(address);
    clock = new FakeClock();
    lines = [];
    resets = [];
  });

  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
    peer.close();
  });

  function client(opts: Partial<RequestClientOptions> = {}): RequestClient<AclRequest> {
    const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Line) });
    const c = new RequestClient<AclRequest>({ address, timeoutMs: 1000, keepaliveMs: 0, log, clock, onReset: (reason) => void resets.push(reason), ...opts });
    clients.push(c);
    return c;
  }

  /** The client has taken in the reply to what it had in flight. */
  const settled = (c: RequestClient<AclRequest>) => waitFor('the reply taken in', () => !c.inFlight, 5000, 1);

  it('sends HEARTBEAT after keepaliveMs of idleness (checked every quarter of it), measured again from each reply', async () => {
    const c = client({ keepaliveMs: 400 });
    // Checked every 100 ms: idle for 300 ms is not enough, 400 is.
    clock.advance(300);
    expect(c.inFlight, 'no heartbeat at 300 ms').to.equal(false);
    clock.advance(100);
    expect(c.inFlight, 'a heartbeat at 400 ms').to.equal(true);
    const hb = await peer.nth(1);
    expect(hb.type).to.equal('HEARTBEAT');
    // The reply comes 250 ms later (t = 650); idleness counts from it.
    clock.advance(250);
    await peer.answer(hb);
    await settled(c);
    clock.advance(399);
    expect(c.inFlight, '399 ms after the reply').to.equal(false);
    // The check at t = 1100 sees 450 ms of idleness: never before 400 ms, at most a quarter later.
    clock.advance(101);
    expect(c.inFlight, '500 ms after the reply').to.equal(true);
    expect((await peer.nth(2)).type).to.equal('HEARTBEAT');
    expect(resets).to.deep.equal([]);
  });

  it('sends no HEARTBEAT while requests keep the connection busy', async () => {
    const c = client({ keepaliveMs: 400 });
    for (let i = 1; i <= 5; i++) {
      clock.advance(300);
      const reply = c.request(ask(`ep${i}`));
      await peer.answer(await peer.nth(i));
      await reply;
      await settled(c);
    }
    expect(peer.requests.map((r) => r.type)).to.deep.equal(Array(5).fill(GETACLSTATE));
    clock.advance(399);
    expect(c.inFlight).to.equal(false);
    clock.advance(1);
    expect((await peer.nth(6)).type).to.equal('HEARTBEAT');
  });

  it('with keepaliveMs 0 never sends a HEARTBEAT and sets no timer', () => {
    const c = client({ keepaliveMs: 0 });
    expect(clock.pending).to.equal(0);
    clock.advance(3_600_000);
    expect(c.inFlight).to.equal(false);
  });

  it('on no reply within exactly timeoutMs fails the request in flight and the queued ones, counts a reset, calls onReset once, and carries on on a new socket', async () => {
    const stats = new SocketStats();
    const c = client({ timeoutMs: 1000, stats });
    const outcomes = Promise.allSettled([c.request(ask('lost')), c.request(ask('queued1')), c.request(ask('queued2'))]);
    await peer.nth(1);
    clock.advance(999);
    expect(resets, 'not yet at 999 ms').to.deep.equal([]);
    expect(c.queued).to.equal(2);
    clock.advance(1);
    expect(resets).to.have.length(1);
    expect(resets[0]).to.equal(`no reply from ${address} within 1000 ms`);
    expect(stats.resets).to.equal(1);
    expect(lines.filter((l) => l.msg === 'request socket timed out; recreating it')).to.have.length(1);
    for (const o of await outcomes) {
      expect(o.status).to.equal('rejected');
      expect((o as PromiseRejectedResult).reason)
        .to.be.instanceOf(ConnectionResetError)
        .and.to.include({ code: 'ECONNRESET' });
    }
    // The next request goes out on the new socket and its answer comes back; the queued ones were never sent.
    const after = c.request(ask('after'));
    const req = await peer.nth(2);
    await peer.answer(req);
    expect(JSON.parse((await after).toString())).to.deep.include({ type: GETACLSTATE, rc: 'SUCCESS' });
    expect(peer.requests.map((r) => r.endpoint)).to.deep.equal(['lost', 'after']);
  });

  it('a reply in time clears the timeout: no reset however long the client then waits', async () => {
    const c = client({ timeoutMs: 1000 });
    const reply = c.request(ask('ep1'));
    clock.advance(999);
    await peer.answer(await peer.nth(1));
    await reply;
    clock.advance(60_000);
    expect(resets).to.deep.equal([]);
    expect(clock.pending).to.equal(0);
  });

  it('a HEARTBEAT nobody answers resets the connection after keepaliveMs + timeoutMs', async () => {
    client({ keepaliveMs: 400, timeoutMs: 1000 });
    clock.advance(400);
    expect((await peer.nth(1)).type).to.equal('HEARTBEAT');
    clock.advance(999);
    expect(resets).to.deep.equal([]);
    clock.advance(1);
    expect(resets).to.have.length(1);
  });

  for (const kind of ['throws', 'rejects'] as const)
    it(`an onReset that ${kind} is logged and the client carries on`, async () => {
      const c = client({
        onReset:
          kind === 'throws'
            ? () => {
                resets.push('called');
                throw new Error('owner bug');
              }
            : async () => {
                resets.push('called');
                await Promise.resolve();
                throw new Error('owner bug');
              },
      });
      const lost = c.request(ask('lost')).catch((err: unknown) => err);
      await peer.nth(1);
      clock.advance(1000);
      expect(await lost).to.be.instanceOf(ConnectionResetError);
      expect(resets).to.deep.equal(['called']);
      await waitFor('the handler failure logged', () => lines.some((l) => l.msg === 'reset handler failed' && l.err?.message === 'owner bug'), 5000, 1);
      const next = c.request(ask('next'));
      await peer.answer(await peer.nth(2));
      expect(JSON.parse((await next).toString())).to.deep.include({ rc: 'SUCCESS' });
    });

  it('takes only its API’s request messages (checked by the compiler)', async () => {
    const c = client();
    c.close();
    const refused = (p: Promise<Buffer>) =>
      p.then(
        () => 'sent',
        (err: unknown) => errorMessage(err),
      );
    // @ts-expect-error: not a request message of any API
    expect(await refused(c.request({ type: 'REQ', n: 1 }))).to.equal('request client is closed');
    // @ts-expect-error: a request, but of the Network API, not the ACL API
    expect(await refused(c.request({ type: GETGROUPS, issued: 1 }))).to.equal('request client is closed');
    // @ts-expect-error: GETACLSTATE without its endpoint_id
    expect(await refused(c.request({ type: GETACLSTATE, issued: 1 }))).to.equal('request client is closed');
    expect(await refused(c.request({ type: 'HEARTBEAT' }))).to.equal('request client is closed');
  });
});
