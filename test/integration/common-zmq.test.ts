/**
 * src/common/zmq on real ZeroMQ sockets over TCP on 127.0.0.1. The peers on
 * the other side are plain zeromq.js sockets, so each class is checked
 * against the wire rather than against itself.
 */
import { expect } from 'chai';
import { pino } from 'pino';
import * as zmq from 'zeromq';
import { Publisher } from '../../src/common/zmq/publisher.js';
import { ReplyServer } from '../../src/common/zmq/reply-server.js';
import { GETACLSTATE, GetAclState } from '../../src/common/wire/acl-api.js';
import type { AclRequest } from '../../src/common/wire/requests.js';
import { ConnectionResetError, RequestClient, RequestClientOptions } from '../../src/common/zmq/request-client.js';
import { REVIVE_MS, Subscriber } from '../../src/common/zmq/subscriber.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/process.js';
import { errorMessage } from '../../src/common/errors.js';

/** Upper bound for anything that should happen "soon" on loopback. */
const BOUND_MS = 5000;

interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

/** A pino logger whose lines are kept for the test to read. */
function recordingLog() {
  const lines: LogLine[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) });
  return { log, lines };
}

const cleanups: (() => unknown)[] = [];
/** Registers `close` to run after the current test, newest first. */
function closeLater<T>(thing: T, close: (t: T) => unknown): T {
  cleanups.push(() => close(thing));
  return thing;
}

afterEach(async () => {
  for (const close of cleanups.splice(0).reverse()) await close();
});

async function address(): Promise<string> {
  return `tcp://127.0.0.1:${await freePort()}`;
}

/** A plain REQ peer that gives up on a reply after BOUND_MS. */
function requestPeer(addr: string): zmq.Request {
  const s = closeLater(new zmq.Request({ linger: 0, receiveTimeout: BOUND_MS }), (x) => x.close());
  s.connect(addr);
  return s;
}

async function ask(peer: zmq.Request, ...frames: string[]): Promise<unknown> {
  await peer.send(frames);
  const [reply] = await peer.receive();
  return JSON.parse(reply!.toString());
}

/** Receives one message within `ms`, or null. */
async function receiveWithin(socket: zmq.Router | zmq.Reply, ms: number): Promise<Buffer[] | null> {
  socket.receiveTimeout = ms;
  try {
    return await socket.receive();
  } catch (err) {
    if ((err as { code?: string }).code === 'EAGAIN') return null;
    throw err;
  }
}

describe('zmq: ReplyServer', () => {
  for (const kind of ['rep', 'router'] as const) {
    describe(kind, () => {
      let addr: string;
      let lines: LogLine[];

      /** Serves: "boom" throws, "later" answers asynchronously, anything else is echoed. */
      async function serve(): Promise<ReplyServer> {
        addr = await address();
        const rec = recordingLog();
        lines = rec.lines;
        const server = await ReplyServer.bind(
          kind,
          addr,
          async (body) => {
            const text = body.toString();
            if (text === 'boom') throw new Error('handler exploded');
            if (text === 'later') await new Promise((r) => setTimeout(r, 20));
            return { type: 'ECHO', rc: 'SUCCESS', message: text };
          },
          rec.log,
        );
        return closeLater(server, (s) => s.close());
      }

      it('answers good requests, in turn', async () => {
        await serve();
        const peer = requestPeer(addr);
        expect(await ask(peer, 'one')).to.deep.equal({ type: 'ECHO', rc: 'SUCCESS', message: 'one' });
        expect(await ask(peer, 'later')).to.deep.equal({ type: 'ECHO', rc: 'SUCCESS', message: 'later' });
        expect(await ask(peer, 'two')).to.deep.equal({ type: 'ECHO', rc: 'SUCCESS', message: 'two' });
      });

      it('answers a multi-frame request with INVALID and keeps serving', async () => {
        await serve();
        const peer = requestPeer(addr);
        expect(await ask(peer, 'a', 'b', 'c')).to.deep.equal({ type: 'ERROR', rc: 'INVALID', message: 'expected one frame, got 3' });
        expect(lines.some((l) => l.msg === 'request with wrong frame count' && l['frames'] === 3)).to.equal(true);
        expect(await ask(peer, 'after')).to.deep.equal({ type: 'ECHO', rc: 'SUCCESS', message: 'after' });
      });

      it('answers FAILURE when the handler throws, logs it, and keeps serving', async () => {
        await serve();
        const peer = requestPeer(addr);
        expect(await ask(peer, 'boom')).to.deep.equal({ type: 'ERROR', rc: 'FAILURE', message: 'internal error: handler exploded' });
        const logged = lines.find((l) => l.msg === 'request handler failed');
        expect((logged?.['err'] as { message?: string } | undefined)?.message).to.equal('handler exploded');
        expect(await ask(peer, 'after')).to.deep.equal({ type: 'ECHO', rc: 'SUCCESS', message: 'after' });
      });

      it('keeps serving after DEALER messages without the empty delimiter a REQ would send', async () => {
        await serve();
        const dealer = closeLater(new zmq.Dealer({ linger: 0 }), (d) => d.close());
        dealer.connect(addr);
        for (const frames of [['no-delimiter'], ['x', 'y'], ['', '', 'two-delimiters'], ['']]) await dealer.send(frames);
        const peer = requestPeer(addr);
        await waitFor(
          'the DEALER messages consumed',
          () => kind === 'router' || lines.some((l) => l.msg === 'request without a valid envelope discarded'),
          BOUND_MS,
        );
        expect(await ask(peer, 'after')).to.deep.equal({ type: 'ECHO', rc: 'SUCCESS', message: 'after' });
      });

      it('answers each of several peers with its own reply', async () => {
        await serve();
        const peers = [1, 2, 3].map(() => requestPeer(addr));
        const replies = await Promise.all(peers.map((p, i) => ask(p, i === 1 ? 'later' : `peer ${i}`)));
        expect(replies.map((r) => (r as { message: string }).message)).to.deep.equal(['peer 0', 'later', 'peer 2']);
      });
    });
  }

  it('answers FAILURE when the handler returns a reply that cannot be encoded, and keeps serving', async () => {
    const addr = await address();
    const { log } = recordingLog();
    const server = await ReplyServer.bind(
      'rep',
      addr,
      (body) => (body.toString() === 'big' ? { type: 'X', n: 1n } : { type: 'X', rc: 'SUCCESS', message: '' }),
      log,
    );
    closeLater(server, (s) => s.close());
    const peer = requestPeer(addr);
    expect(await ask(peer, 'big')).to.include({ type: 'ERROR', rc: 'FAILURE' });
    expect(await ask(peer, 'fine')).to.deep.equal({ type: 'X', rc: 'SUCCESS', message: '' });
  });

  it('refuses to bind an address in use, naming it', async () => {
    const addr = await address();
    const { log } = recordingLog();
    closeLater(await ReplyServer.bind('rep', addr, () => ({}), log), (s) => s.close());
    let error: unknown;
    await ReplyServer.bind('router', addr, () => ({}), log).then(
      (s) => closeLater(s, (x) => x.close()),
      (err: unknown) => (error = err),
    );
    expect(errorMessage(error)).to.match(new RegExp(`^cannot bind ${addr}:`));
  });
});

describe('zmq: RequestClient', () => {
  /** A ROUTER standing in for a REQ client's peer, so the test sees exactly what arrives and when to answer. */
  async function routerPeer(addr: string): Promise<zmq.Router> {
    const router = closeLater(new zmq.Router({ linger: 0 }), (r) => r.close());
    await router.bind(addr);
    return router;
  }

  function client(addr: string, opts: Partial<RequestClientOptions> = {}): RequestClient<AclRequest> {
    return closeLater(new RequestClient<AclRequest>({ address: addr, timeoutMs: BOUND_MS, keepaliveMs: 0, log: recordingLog().log, ...opts }), (c) =>
      c.close(),
    );
  }

  /** A request of the ACL API, told apart by its endpoint id. */
  const ask = (endpoint: string): GetAclState => ({ type: GETACLSTATE, endpoint_id: endpoint, issued: 1 });

  it('sends queued requests one at a time, in order, each resolving with its own reply', async () => {
    const addr = await address();
    const router = await routerPeer(addr);
    const c = client(addr);
    const replies = [1, 2, 3].map((n) => c.request(ask(`ep${n}`)));
    for (const n of [1, 2, 3]) {
      const frames = await receiveWithin(router, BOUND_MS);
      expect(frames, `request ${n} arrives`).to.not.equal(null);
      const [id, delimiter, body] = frames!;
      expect(JSON.parse(body!.toString())).to.deep.equal(ask(`ep${n}`));
      // While this one is unanswered nothing else may be on the wire.
      expect(await receiveWithin(router, 100), 'a second request in flight').to.equal(null);
      expect(c.queued).to.equal(3 - n);
      await router.send([id!, delimiter!, JSON.stringify({ type: GETACLSTATE, rc: 'SUCCESS', message: `reply ${n}` })]);
    }
    const bodies = (await Promise.all(replies)).map((b) => JSON.parse(b.toString()) as { message: string });
    expect(bodies.map((b) => b.message)).to.deep.equal(['reply 1', 'reply 2', 'reply 3']);
  });

  it('works against a ReplyServer', async () => {
    const addr = await address();
    const server = await ReplyServer.bind('rep', addr, (body) => ({ type: GETACLSTATE, rc: 'SUCCESS', message: body.toString() }), recordingLog().log);
    closeLater(server, (s) => s.close());
    const c = client(addr);
    const replies = await Promise.all(['a', 'b', 'c'].map((m) => c.request(ask(m))));
    expect(replies.map((r) => (JSON.parse((JSON.parse(r.toString()) as { message: string }).message) as { endpoint_id: string }).endpoint_id)).to.deep.equal([
      'a',
      'b',
      'c',
    ]);
  });

  // When keepalives and timeouts fire, exactly, is proven on a fake clock in
  // test/unit/common/request-client.test.ts; here, that real timers drive them.
  it('on timeout (real timers) fails the request in flight and the queued ones, calls onReset, and serves again on a new socket', async () => {
    const addr = await address();
    const router = await routerPeer(addr);
    const received: string[] = [];
    // The peer never answers the first request; it answers everything after.
    void (async () => {
      try {
        for await (const [id, delimiter, body] of router) {
          received.push((JSON.parse(body!.toString()) as { endpoint_id: string }).endpoint_id);
          if (received.length > 1) await router.send([id!, delimiter!, JSON.stringify({ type: GETACLSTATE, rc: 'SUCCESS', message: received.at(-1) })]);
        }
      } catch {
        /* closed by afterEach */
      }
    })();

    const resets: string[] = [];
    let resync: Promise<Buffer> | undefined;
    const c = client(addr, {
      timeoutMs: 200,
      onReset: (reason) => {
        resets.push(reason);
        // What an owner does: resync at once on the new socket.
        resync = c.request(ask('resync'));
      },
    });
    const outcomes = await Promise.allSettled([c.request(ask('lost')), c.request(ask('queued1')), c.request(ask('queued2'))]);
    for (const o of outcomes) {
      expect(o.status).to.equal('rejected');
      expect((o as PromiseRejectedResult).reason)
        .to.be.instanceOf(ConnectionResetError)
        .and.to.include({ code: 'ECONNRESET' });
    }
    expect(resets).to.have.length(1);
    expect(resets[0]).to.include(addr);

    expect(JSON.parse((await resync!).toString())).to.deep.include({ rc: 'SUCCESS', message: 'resync' });
    expect(JSON.parse((await c.request(ask('after'))).toString())).to.deep.include({ rc: 'SUCCESS', message: 'after' });
    // The queued requests were failed, never sent.
    expect(received).to.deep.equal(['lost', 'resync', 'after']);
  });

  it('a heartbeat nobody answers resets the connection (real timers)', async () => {
    const addr = await address();
    await routerPeer(addr);
    let resets = 0;
    client(addr, { keepaliveMs: 50, timeoutMs: 150, onReset: () => resets++ });
    await waitFor('a reset after an unanswered heartbeat', () => resets >= 1, BOUND_MS);
  });

  it('after close, queued and new requests fail', async () => {
    const addr = await address();
    await routerPeer(addr);
    const c = client(addr);
    const inFlight = c.request(ask('a'));
    const queued = c.request(ask('b'));
    c.close();
    const [a, b] = await Promise.allSettled([inFlight, queued]);
    expect(a.status).to.equal('rejected');
    expect(b.status).to.equal('rejected');
    expect(((b as PromiseRejectedResult).reason as Error).message).to.equal('request client is closed');
    let error: unknown;
    await c.request(ask('c')).catch((err: unknown) => (error = err));
    expect(errorMessage(error)).to.equal('request client is closed');
  });
});

describe('zmq: Publisher as an XPUB (SPEC §5 no lost first ACLs)', function () {
  this.timeout(30000);

  it('reports subscriptions (duplicates too) and unsubscriptions; ignores other frames', async () => {
    const { log } = recordingLog();
    const port = await freePort();
    const seen: string[] = [];
    const pub = await Publisher.bind(`tcp://127.0.0.1:${port}`, log, {}, { onSubscription: (t, sub) => seen.push(`${sub ? '+' : '-'}${t}`) });
    const xsub = new zmq.XSubscriber({ linger: 0 });
    try {
      xsub.connect(`tcp://127.0.0.1:${port}`);
      for (const f of [
        [1, 0x61],
        [1, 0x61],
        [2, 0x62],
        [0, 0x61],
        [0, 0x61],
        [1, 0x63],
      ])
        await xsub.send(Buffer.from(f));
      await waitFor('the last subscription', () => seen.includes('+c'), BOUND_MS);
      expect(seen).to.deep.equal(['+a', '+a', '-a', '+c']);
    } finally {
      xsub.close();
      await pub.close();
    }
  });

  it('at the high-water mark retries instead of dropping: every message arrives, in order', async () => {
    const { log } = recordingLog();
    const port = await freePort();
    const pub = await Publisher.bind(`tcp://127.0.0.1:${port}`, log, {}, { onSubscription: () => {}, sendHighWaterMark: 10 });
    const sub = new zmq.Subscriber({ linger: 0, receiveHighWaterMark: 10 });
    try {
      sub.connect(`tcp://127.0.0.1:${port}`);
      sub.subscribe('t');
      // Wait until the subscription is in place (one receive at a time: a receive timeout, not a race).
      sub.receiveTimeout = 100;
      await waitFor(
        'subscribed',
        async () => {
          await pub.publish('t', { n: -1 });
          return sub.receive().then(
            () => true,
            () => false,
          );
        },
        BOUND_MS,
      );
      const N = 3000;
      const pad = 'x'.repeat(20000);
      const all = Promise.all(Array.from({ length: N }, (_, n) => pub.publish('t', { n, pad })));
      // Not reading yet: the socket fills up and refuses.
      await waitFor('sends refused at the high-water mark', () => pub.retries > 0, BOUND_MS);
      const got: number[] = [];
      sub.receiveTimeout = BOUND_MS;
      while (got.length < N) {
        const [, body] = await sub.receive();
        const n = (JSON.parse(body!.toString()) as { n: number }).n;
        if (n >= 0) got.push(n);
      }
      await all;
      expect(got).to.deep.equal(Array.from({ length: N }, (_, n) => n));
      expect(pub.sent).to.be.at.least(N);
    } finally {
      sub.close();
      await pub.close();
    }
  });
});

describe('zmq: Subscriber paused (Felix between applies, issue #13)', function () {
  this.timeout(30000);

  it('while paused reads at most its queue past the last resume, the publisher holds the rest; resume delivers them all, in order', async () => {
    const { log } = recordingLog();
    const port = await freePort();
    const pub = await Publisher.bind(`tcp://127.0.0.1:${port}`, log, {}, { onSubscription: () => {}, sendHighWaterMark: 10, sendBufferBytes: 64 * 1024 });
    const got: number[] = [];
    const probes: number[] = [];
    const sub = new Subscriber(
      `tcp://127.0.0.1:${port}`,
      (_t, body) => {
        const n = (JSON.parse(body.toString()) as { n: number }).n;
        (n < 0 ? probes : got).push(n);
      },
      log,
      {},
      { messages: 20, bytes: 64 * 1024 },
    );
    try {
      sub.subscribe('t');
      await sub.connected();
      await waitFor(
        'subscribed',
        async () => {
          await pub.publish('t', { n: -1 });
          return probes.length > 0;
        },
        BOUND_MS,
        50,
      );
      sub.pause();
      const N = 400;
      const pad = 'x'.repeat(20000);
      const all = Promise.all(Array.from({ length: N }, (_, n) => pub.publish('t', { n, pad })));
      await waitFor('the publisher held back at its high-water mark', () => pub.retries > 0, BOUND_MS);
      await new Promise((r) => setTimeout(r, 300));
      const whilePaused = got.length;
      // 20 read past the resume, plus what was already on its way: far from the 400 published.
      expect(whilePaused).to.be.within(1, 60);
      sub.resume();
      await all;
      await waitFor('every message', () => got.length === N, BOUND_MS);
      expect(got).to.deep.equal(Array.from({ length: N }, (_, n) => n));
    } finally {
      sub.close();
      await pub.close();
    }
  });
});

describe('zmq: Publisher and Subscriber', () => {
  interface Delivery {
    topic: string;
    body: { type: string; seq: number };
  }

  /** A publisher, a subscriber recording deliveries, and a pump that publishes until a condition holds. */
  async function pubSub(onMessage?: (d: Delivery) => void) {
    const addr = await address();
    const rec = recordingLog();
    const pub = closeLater(await Publisher.bind(addr, rec.log), (p) => p.close());
    const deliveries: Delivery[] = [];
    const sub = closeLater(
      new Subscriber(
        addr,
        (topic, body) => {
          const d = { topic, body: JSON.parse(body.toString()) as Delivery['body'] };
          deliveries.push(d);
          onMessage?.(d);
        },
        rec.log,
      ),
      (s) => s.close(),
    );
    let seq = 0;
    /** Publishes `topics` (in that order, with a rising seq) every 20 ms until `done()`. */
    const publishUntil = (what: string, topics: string[], done: () => boolean) =>
      waitFor(
        what,
        async () => {
          if (done()) return true;
          for (const t of topics) await pub.publish(t, { type: 'MSG', seq: ++seq });
          return done();
        },
        BOUND_MS,
        20,
      );
    return { addr, pub, sub, deliveries, lines: rec.lines, publishUntil, published: () => seq };
  }

  it('delivers a topic subscribed to exactly, never one it is only a prefix of', async () => {
    const { sub, deliveries, publishUntil } = await pubSub();
    sub.subscribe('abc');
    // 'abcd' goes out before each 'abc', so once an 'abc' is in, ZeroMQ has handed the 'abcd' before it over too.
    await publishUntil("a message on 'abc'", ['abcd', 'ab', 'abc'], () => deliveries.length >= 3);
    expect(new Set(deliveries.map((d) => d.topic))).to.deep.equal(new Set(['abc']));
  });

  it('delivers each of two topics where one is a prefix of the other, once each', async () => {
    const { sub, deliveries, publishUntil } = await pubSub();
    sub.subscribe('abc');
    sub.subscribe('abcd');
    await publishUntil('both topics', ['abc', 'abcd'], () => deliveries.some((d) => d.topic === 'abcd') && deliveries.some((d) => d.topic === 'abc'));
    const seqs = deliveries.map((d) => d.body.seq);
    expect(new Set(seqs).size, 'no message delivered twice').to.equal(seqs.length);
  });

  it('stops delivering a topic after unsubscribe', async () => {
    const { sub, deliveries, publishUntil } = await pubSub();
    sub.subscribe('x');
    sub.subscribe('y');
    await publishUntil("a message on 'x'", ['x'], () => deliveries.some((d) => d.topic === 'x'));
    sub.unsubscribe('x');
    const from = deliveries.length;
    await publishUntil("three messages on 'y'", ['x', 'y'], () => deliveries.slice(from).filter((d) => d.topic === 'y').length >= 3);
    expect(deliveries.slice(from).map((d) => d.topic)).to.not.include('x');
  });

  it('recreate() opens a new socket with every subscription restored', async () => {
    const { sub, deliveries, publishUntil, published } = await pubSub();
    sub.subscribe('t1');
    sub.subscribe('t2');
    await publishUntil('t1 and t2', ['t1', 't2'], () => deliveries.some((d) => d.topic === 't1') && deliveries.some((d) => d.topic === 't2'));
    sub.recreate();
    // The old socket is closed now: anything published from here on arrives through the new one.
    const after = published();
    const fresh = (t: string) => deliveries.some((d) => d.topic === t && d.body.seq > after);
    await publishUntil('t1 and t2 on the new socket', ['t1', 't2', 't3'], () => fresh('t1') && fresh('t2'));
    expect(deliveries.map((d) => d.topic)).to.not.include('t3');
  });

  it('ignores publications with other than two frames, with a warning, and keeps delivering', async () => {
    const addr = await address();
    const rec = recordingLog();
    const raw = closeLater(new zmq.Publisher({ linger: 0 }), (p) => p.close());
    await raw.bind(addr);
    const got: string[][] = [];
    const sub = closeLater(new Subscriber(addr, (topic, body) => void got.push([topic, body.toString()]), rec.log), (s) => s.close());
    sub.subscribe('ep1');
    await waitFor(
      'the two-frame publication',
      async () => {
        await raw.send(['ep1', 'body', 'extra frame']);
        await raw.send(['ep1']);
        await raw.send(['ep1', 'good']);
        return got.length > 0;
      },
      BOUND_MS,
      20,
    );
    expect(new Set(got.map((g) => g.join('|')))).to.deep.equal(new Set(['ep1|good']));
    const warned = rec.lines.filter((l) => l.msg === 'publication with wrong frame count ignored').map((l) => l['frames']);
    expect(warned).to.include(3).and.to.include(1);
  });

  it('keeps delivering after the handler throws', async () => {
    let calls = 0;
    const { sub, publishUntil, lines } = await pubSub(() => {
      if (++calls === 1) throw new Error('handler exploded');
    });
    sub.subscribe('t');
    await publishUntil('a second delivery', ['t'], () => calls >= 2);
    expect(lines.some((l) => l.msg === 'publication handler failed')).to.equal(true);
  });

  it('keeps delivering after an async handler rejects, and logs it', async () => {
    const addr = await address();
    const rec = recordingLog();
    const pub = closeLater(await Publisher.bind(addr, rec.log), (p) => p.close());
    let calls = 0;
    // Daemons' handlers are often async: a rejection must be caught like a throw.
    const sub = closeLater(
      new Subscriber(
        addr,
        async () => {
          await Promise.resolve();
          if (++calls === 1) throw new Error('async handler exploded');
        },
        rec.log,
      ),
      (s) => s.close(),
    );
    sub.subscribe('t');
    await waitFor('a second delivery', async () => (await pub.publish('t', { type: 'HEARTBEAT' }), calls >= 2), BOUND_MS, 20);
    const logged = rec.lines.find((l) => l.msg === 'publication handler failed');
    expect((logged?.['err'] as { message?: string } | undefined)?.message).to.equal('async handler exploded');
  });

  it('after a publication over maxMessageSize (libzmq then drops the connection for good) replaces its socket, calls onReconnect and delivers again', async () => {
    const addr = await address();
    const rec = recordingLog();
    const pub = closeLater(await Publisher.bind(addr, rec.log), (p) => p.close());
    const seen: number[] = [];
    const sub = closeLater(
      new Subscriber(addr, (_t, body) => void seen.push((JSON.parse(body.toString()) as { seq: number }).seq), rec.log, { maxMessageSize: 1024 }),
      (s) => s.close(),
    );
    let reconnects = 0;
    sub.onReconnect = () => reconnects++;
    sub.subscribe('t');
    let seq = 0;
    await waitFor('a first delivery', async () => (await pub.publish('t', { type: 'MSG', seq: ++seq }), seen.length > 0), BOUND_MS, 20);
    await pub.publish('t', { type: 'MSG', seq: -1, pad: 'x'.repeat(2000) });
    const after = seq;
    await waitFor('deliveries again', async () => (await pub.publish('t', { type: 'MSG', seq: ++seq }), seen.some((n) => n > after)), BOUND_MS + REVIVE_MS, 50);
    expect(seen).to.not.include(-1);
    expect(reconnects).to.equal(1);
    expect(rec.lines.map((l) => l.msg)).to.include('publisher connection lost and not re-established; recreating the socket');
  });

  it('publishes [topic, json] as exactly two frames and counts them', async () => {
    const addr = await address();
    const pub = closeLater(await Publisher.bind(addr, recordingLog().log), (p) => p.close());
    const raw = closeLater(new zmq.Subscriber({ linger: 0, receiveTimeout: BOUND_MS }), (s) => s.close());
    raw.connect(addr);
    raw.subscribe('groups');
    let frames: Buffer[] | undefined;
    void raw.receive().then(
      (f) => (frames = f),
      () => undefined,
    );
    await waitFor(
      'a publication',
      async () => {
        await pub.publish('groups', { type: 'HEARTBEAT' });
        return frames;
      },
      BOUND_MS,
      20,
    );
    expect(frames!.map((f) => f.toString())).to.deep.equal(['groups', '{"type":"HEARTBEAT"}']);
    expect(pub.sent).to.be.at.least(1);
  });
});
