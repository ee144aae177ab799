import { expect } from 'chai';
import type { PluginEndpoint } from '../../../src/plugin/data.js';
import { FelixQueue, Outgoing } from '../../../src/plugin/felix-queue.js';
import { seededRandom } from '../../support/fuzz.js';

/** Endpoint `id` in version `v` (the version is the MAC's last two octets). */
const ep = (id: string, v = 0): PluginEndpoint => {
  const hex = v.toString(16).padStart(4, '0');
  return { id, addrs: ['192.168.1.1'], mac: `ee:ee:ee:ee:${hex.slice(0, 2)}:${hex.slice(2)}`, host: 'h1', groups: ['g1'], source: 'x' };
};
const version = (e: PluginEndpoint) => parseInt(e.mac.slice(-5).replace(':', ''), 16);

/** `C a3` (CREATED a, version 3; `C a3 r1` with resync id r1), `U a3`, `D a`. */
function show(m: Outgoing): string {
  const id = m.endpoint.id;
  if (m.kind === 'destroyed') return `D ${id}`;
  if (m.kind === 'updated') return `U ${id}${version(m.endpoint)}`;
  return `C ${id}${version(m.endpoint)}${m.resyncId ? ` ${m.resyncId}` : ''}`;
}

function drain(q: FelixQueue, out: string[] = []): string[] {
  for (let m = q.next(); m; m = q.next()) out.push(show(m));
  return out;
}

/**
 * Runs steps on a fresh queue and returns every message sent, then what is
 * left: `C a1`/`U a1`/`D a` push a change, `R r1 a1 b1` asks for resync r1
 * over those endpoints (`refused r1` in the output if refused), `>` sends
 * one message, `reset` is a connection timeout.
 */
function run(steps: string[]): string[] {
  const q = new FelixQueue();
  const out: string[] = [];
  for (const step of steps) {
    const [op, ...args] = step.split(' ');
    const parsed = args.map((a) => ep(a.replace(/\d+$/, ''), Number(/\d+$/.exec(a)?.[0] ?? 0)));
    if (op === '>') out.push(show(q.next()!));
    else if (op === 'reset') q.reset();
    else if (op === 'R') {
      if (!q.startResync(args[0]!, parsed.slice(1))) out.push(`refused ${args[0]}`);
    } else q.push(({ C: 'created', U: 'updated', D: 'destroyed' } as const)[op as 'C' | 'U' | 'D'], parsed[0]!);
  }
  return drain(q, out);
}

describe('FelixQueue', () => {
  describe('coalesces unsent changes per endpoint', () => {
    const rows: Array<[string, string[], string[]]> = [
      ['created', ['C a1'], ['C a1']],
      ['created, updated twice: one create with the latest fields', ['C a1', 'U a2', 'U a3'], ['C a3']],
      ['updated twice: the latest update', ['U a1', 'U a2'], ['U a2']],
      ['created, destroyed: nothing', ['C a1', 'D a'], []],
      ['updated, destroyed: destroyed', ['U a1', 'D a'], ['D a']],
      ['destroyed, created: both, in order', ['D a', 'C a2'], ['D a', 'C a2']],
      ['destroyed, created, updated: destroyed, then the latest create', ['D a', 'C a2', 'U a3'], ['D a', 'C a3']],
      ['destroyed, created, destroyed: destroyed', ['D a', 'C a2', 'D a'], ['D a']],
      ['created, destroyed, created: the second create', ['C a1', 'D a', 'C a2'], ['C a2']],
      ['a create already sent is not cancelled', ['C a1', '>', 'D a'], ['C a1', 'D a']],
      ['a destroy already sent, then created and destroyed: nothing more', ['D a', '>', 'C a2', 'D a'], ['D a']],
      ['an endpoint keeps its place when it changes again', ['C a1', 'C b1', 'U a2'], ['C a2', 'C b1']],
      ['the same sequence twice', ['C a1', 'U a2', 'C a1', 'U a2'], ['C a2']],
    ];
    for (const [name, steps, expected] of rows) it(name, () => expect(run(steps)).to.deep.equal(expected));
  });

  describe('resyncs', () => {
    const rows: Array<[string, string[], string[]]> = [
      ['one create per endpoint, carrying the resync id', ['R r1 a1 b1'], ['C a1 r1', 'C b1 r1']],
      [
        'asking again while the creates are being sent is refused',
        ['R r1 a1 b1', '>', 'R r2 a1 b1', 'R r3 a1 b1'],
        ['C a1 r1', 'refused r2', 'refused r3', 'C b1 r1'],
      ],
      ['asking again once the last create was sent is a new resync', ['R r1 a1', '>', 'R r2 a1'], ['C a1 r1', 'C a1 r2']],
      ['a resync of no endpoints leaves nothing in progress', ['R r1', 'R r2 a1'], ['C a1 r2']],
      ['an update during the resync rides on its create', ['R r1 a1 b1', 'U b2'], ['C b2 r1', 'C a1 r1']],
      ['a destroy during the resync goes after its create', ['R r1 a1 b1', 'D b'], ['C b1 r1', 'C a1 r1', 'D b']],
      ['a destroy after the create was sent', ['R r1 a1 b1', '>', 'D a'], ['C a1 r1', 'D a', 'C b1 r1']],
      ['a pushed create the resync also carries, then destroyed: still destroyed', ['C c1', 'R r1 c1', 'D c'], ['C c1 r1', 'D c']],
      ['destroyed and created again during the resync', ['R r1 a1', 'D a', 'C a2'], ['C a1 r1', 'D a', 'C a2']],
      ['pushes and resync creates take turns', ['R r1 a1 b1 c1', 'C x1', 'C y1'], ['C x1', 'C a1 r1', 'C y1', 'C b1 r1', 'C c1 r1']],
      [
        'a reset while a resync create is in flight abandons the resync and keeps the pushes',
        ['R r1 a1 b1', '>', 'C x1', 'reset', 'R r2 a1 b1'],
        ['C a1 r1', 'C x1', 'C a1 r2', 'C b1 r2'],
      ],
      [
        'a reset while a push is in flight keeps a resync asked for meanwhile (the 2014 Felix waits for it)',
        ['D z', '>', 'R r1 a1 b1', 'reset', 'R r2 a1'],
        ['D z', 'refused r2', 'C a1 r1', 'C b1 r1'],
      ],
    ];
    for (const [name, steps, expected] of rows) it(name, () => expect(run(steps)).to.deep.equal(expected));

    it('reports the resync in progress until its last create is taken', () => {
      const q = new FelixQueue();
      expect(q.startResync('r1', [ep('a'), ep('b')])).to.equal(true);
      expect(q.resyncInProgress).to.equal('r1');
      q.next();
      expect(q.resyncInProgress).to.equal('r1');
      q.next();
      expect(q.resyncInProgress).to.equal(null);
    });
  });

  describe('end state at Felix', () => {
    /** Felix's side of SPEC §3, as src/felix/endpoints.ts keeps it: endpoint → version, and its own resync. */
    class FelixModel {
      readonly eps = new Map<string, number>();
      private resync: { id: string; expected: number; seen: Set<string>; touched: Set<string> } | null = null;

      begin(id: string, expected: number): void {
        this.resync = { id, expected, seen: new Set(), touched: new Set() };
        this.completeIfDone();
      }

      receive(m: Outgoing): void {
        const id = m.endpoint.id;
        if (m.kind === 'destroyed') this.eps.delete(id);
        else if (m.kind === 'updated' && !this.eps.has(id)) return;
        else {
          if (m.kind === 'created' && m.resyncId !== null && m.resyncId === this.resync?.id) this.resync.seen.add(id);
          else this.resync?.touched.add(id);
          this.eps.set(id, version(m.endpoint));
        }
        this.completeIfDone();
      }

      private completeIfDone(): void {
        const r = this.resync;
        if (!r || r.seen.size < r.expected) return;
        for (const id of this.eps.keys()) if (!r.seen.has(id) && !r.touched.has(id)) this.eps.delete(id);
        this.resync = null;
      }
    }

    for (const seed of [1, 2, 3, 4, 5]) {
      it(`matches the data after random changes, Felix resyncs and foreign RESYNCSTATEs (seed ${seed})`, () => {
        const rand = seededRandom(seed);
        const q = new FelixQueue();
        const felix = new FelixModel();
        const data = new Map<string, number>();
        const snapshot = () => [...data].map(([id, v]) => ep(id, v));
        for (let i = 0; i < 3000; i++) {
          const r = rand();
          if (r < 0.4) {
            const id = `e${Math.floor(rand() * 12)}`;
            const v = data.get(id);
            if (v === undefined) {
              data.set(id, i + 1);
              q.push('created', ep(id, i + 1));
            } else if (rand() < 0.4) {
              data.delete(id);
              q.push('destroyed', ep(id, v));
            } else {
              data.set(id, i + 1);
              q.push('updated', ep(id, i + 1));
            }
          } else if (r < 0.45) {
            const endpoints = snapshot();
            if (q.startResync(`felix-${i}`, endpoints)) felix.begin(`felix-${i}`, endpoints.length);
          } else if (r < 0.5) {
            q.startResync(`foreign-${i}`, snapshot());
          } else {
            const m = q.next();
            if (m) felix.receive(m);
          }
        }
        for (let m = q.next(); m; m = q.next()) felix.receive(m);
        expect(Object.fromEntries(felix.eps)).to.deep.equal(Object.fromEntries(data));
      });
    }
  });

  describe('bounds and fairness', () => {
    const N = 50;
    const hostEndpoints = Array.from({ length: N }, (_, i) => ep(`e${i}`, 1));

    it(`holds at most N messages for 10 000 RESYNCSTATEs, one message sent per 10 requests (N = ${N})`, () => {
      const q = new FelixQueue();
      let accepted = 0;
      let sent = 0;
      let largest = 0;
      for (let i = 0; i < 10000; i++) {
        if (q.startResync(`r${i}`, hostEndpoints)) accepted++;
        largest = Math.max(largest, q.size);
        if (i % 10 === 9 && q.next()) sent++;
      }
      expect(largest).to.equal(N);
      expect(sent).to.equal(1000);
      expect(accepted).to.equal(sent / N);
    });

    it('stays within one resync plus two messages per endpoint under random pushes and continuous resyncs', () => {
      const rand = seededRandom(11);
      const q = new FelixQueue();
      const present = new Map<string, number>();
      let largest = 0;
      for (let i = 0; i < 10000; i++) {
        q.startResync(
          `r${i}`,
          [...present].map(([id, v]) => ep(id, v)),
        );
        const id = `e${Math.floor(rand() * N)}`;
        const v = present.get(id);
        if (v === undefined) present.set(id, 1);
        else if (rand() < 0.3) present.delete(id);
        else present.set(id, v + 1);
        q.push(v === undefined ? 'created' : present.has(id) ? 'updated' : 'destroyed', ep(id, present.get(id) ?? v));
        largest = Math.max(largest, q.size);
        if (rand() < 0.5) q.next();
      }
      expect(largest).to.be.at.most(3 * N);
    });

    it('sends k pushes within 2k messages while resyncs are asked for continuously', () => {
      const q = new FelixQueue();
      let i = 0;
      /** Every message is preceded by a RESYNCSTATE, as in a flood. */
      const sendOne = () => {
        q.startResync(`r${i++}`, hostEndpoints);
        return show(q.next()!);
      };
      while (i < 77) sendOne();
      for (const k of [1, 5, N]) {
        for (let j = 0; j < k; j++) q.push('created', ep(`new${k}-${j}`, 1));
        const sent: string[] = [];
        while (sent.filter((m) => m.startsWith(`C new${k}-`)).length < k) sent.push(sendOne());
        expect(sent.length, `${k} pushes`).to.be.at.most(2 * k);
      }
    });

    it('keeps resyncing while pushes arrive at every step', () => {
      const q = new FelixQueue();
      q.startResync('r1', hostEndpoints);
      let sent = 0;
      for (let i = 0; q.resyncInProgress; i++, sent++) {
        q.push('created', ep(`new${i}`, 1));
        q.next();
      }
      expect(sent).to.be.at.most(2 * N);
    });
  });
});
