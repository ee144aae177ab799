import { expect } from 'chai';
import { seededRandom } from '../../support/fuzz.js';
import { DISPATCH_LEAF_MAX, DispatchTarget, DispatchTree, dispatchChainNames } from '../../../src/felix/dataplane/render/dispatch.js';
import { CHAIN_FROM_ENDPOINT, CHAIN_TO_ENDPOINT } from '../../../src/felix/dataplane/render/names.js';

const PREFIX = 'tap';
const HEX = '0123456789abcdef';
const MIXED = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-';

/** The target an interface gets in these tests: its endpoint chains, named after the interface. */
function target(ifname: string, version = 0): DispatchTarget {
  const s = ifname.slice(PREFIX.length) + (version ? `v${version}` : '');
  return { from: `felix-from-${s}`, to: `felix-to-${s}` };
}

function treeOf(names: Iterable<string>): DispatchTree {
  const t = new DispatchTree(PREFIX);
  for (const n of names) t.set(n, target(n));
  return t;
}

function pick<T>(rand: () => number, xs: ArrayLike<T>): T {
  return xs[Math.floor(rand() * xs.length)]!;
}

function randomName(rand: () => number, alphabet: string, len: number): string {
  let s = PREFIX;
  while (s.length < len) s += pick(rand, alphabet);
  return s;
}

/** Sorted [name, rules] pairs, to compare chain maps regardless of insertion order. */
function sorted<V>(m: Map<string, V>): [string, V][] {
  return [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

const RULE_RE = /^-[io] (\S+) -g (\S+)$/;

/**
 * Follows the chains as iptables would for a packet from (or to) `ifname`:
 * the first rule whose `-i IF` matches exactly or whose `-i P+` matches as a
 * prefix wins; `-g` into a dispatch chain continues there, into anything else
 * ends the walk. Returns where the packet ends and how many rules it was tested against.
 */
function walk(chains: Map<string, string[]>, dir: 'from' | 'to', ifname: string): { end: string; rules: number } {
  let chain = dir === 'from' ? CHAIN_FROM_ENDPOINT : CHAIN_TO_ENDPOINT;
  let rules = 0;
  for (let hops = 0; hops < 64; hops++) {
    const next = (): string => {
      for (const rule of chains.get(chain)!) {
        rules++;
        if (rule === '-j DROP') return 'DROP';
        const m = RULE_RE.exec(rule);
        if (!m) throw new Error(`unexpected rule ${rule} in ${chain}`);
        if (!rule.startsWith(dir === 'from' ? '-i ' : '-o ')) throw new Error(`wrong direction: ${rule} in ${chain}`);
        const pat = m[1]!;
        if (pat.endsWith('+') ? ifname.startsWith(pat.slice(0, -1)) : ifname === pat) return m[2]!;
      }
      throw new Error(`chain ${chain} fell through without a final DROP`);
    };
    const dest = next();
    if (!chains.has(dest)) return { end: dest, rules };
    chain = dest;
  }
  throw new Error('dispatch walk did not end');
}

describe('DispatchTree (SPEC §6 Dispatch v2)', function () {
  this.timeout(60000); // the property and 5000-interface cases take seconds, not milliseconds

  describe('golden rule lists for small trees', () => {
    const hexRange = (stem: string, n: number): string[] => Array.from({ length: n }, (_, i) => stem + HEX[i]!);
    const leaves = (names: string[], dir: 'from' | 'to'): string[] =>
      [...names].sort().map((n) => (dir === 'from' ? `-i ${n} -g ${target(n).from}` : `-o ${n} -g ${target(n).to}`));
    const tree = (path: string, dir: 'from' | 'to'): string => (dir === 'from' ? `-i ${path}+ -g felix-FROM-IF-${path}` : `-o ${path}+ -g felix-TO-IF-${path}`);

    /** Expected chains, given in the from direction; the to direction is derived by the same helpers. */
    type Golden = (dir: 'from' | 'to') => Record<string, string[]>;
    const both = (g: Golden): Map<string, string[]> => {
      const m = new Map<string, string[]>();
      for (const dir of ['from', 'to'] as const) {
        for (const [path, rules] of Object.entries(g(dir))) {
          const name = path === PREFIX ? (dir === 'from' ? CHAIN_FROM_ENDPOINT : CHAIN_TO_ENDPOINT) : dispatchChainNames(path)[dir];
          m.set(name, rules);
        }
      }
      return m;
    };

    const exact17 = ['tapx', ...hexRange('tapx0', 16), 'tapx1'];
    const rows: [string, string[], Golden][] = [
      ['empty: the root chains are just DROP', [], () => ({ tap: ['-j DROP'] })],
      ['three, listed flat and sorted', ['tapc', 'tapa1', 'tapb'], (d) => ({ tap: [...leaves(['tapa1', 'tapb', 'tapc'], d), '-j DROP'] })],
      ['16 (DISPATCH_LEAF_MAX) still flat', hexRange('tap', 16), (d) => ({ tap: [...leaves(hexRange('tap', 16), d), '-j DROP'] })],
      [
        '17 split by the next character; a single-interface group directly',
        [...hexRange('tapa', 10), ...hexRange('tapb', 6), 'tapc1'],
        (d) => ({
          tap: [tree('tapa', d), tree('tapb', d), ...leaves(['tapc1'], d), '-j DROP'],
          tapa: [...leaves(hexRange('tapa', 10), d), '-j DROP'],
          tapb: [...leaves(hexRange('tapb', 6), d), '-j DROP'],
        }),
      ],
      [
        'an exact-name interface before the wildcard that would also match it',
        exact17,
        (d) => ({
          tap: [tree('tapx', d), '-j DROP'],
          tapx: [...leaves(['tapx'], d), tree('tapx0', d), ...leaves(['tapx1'], d), '-j DROP'],
          tapx0: [...leaves(hexRange('tapx0', 16), d), '-j DROP'],
        }),
      ],
      [
        'the name equal to the prefix, and a deep single interface',
        ['tap', ...hexRange('tapa', 16), 'tapq123456'],
        (d) => ({
          tap: [...leaves(['tap'], d), tree('tapa', d), ...leaves(['tapq123456'], d), '-j DROP'],
          tapa: [...leaves(hexRange('tapa', 16), d), '-j DROP'],
        }),
      ],
      [
        'a chain with one wildcard when all names share a longer prefix',
        hexRange('tapab', 16).concat('tapabz'),
        (d) => ({
          tap: [tree('tapa', d), '-j DROP'],
          tapa: [tree('tapab', d), '-j DROP'],
          tapab: [...leaves(hexRange('tapab', 16).concat('tapabz'), d), '-j DROP'],
        }),
      ],
    ];

    for (const [name, names, golden] of rows) {
      it(name, () => {
        const t = treeOf(names);
        const want = both(golden);
        expect(sorted(t.chains())).to.deep.equal(sorted(want));
        expect(sorted(t.flush())).to.deep.equal(sorted(want)); // first flush: everything
        expect(t.flush().size).to.equal(0);
        expect(t.size).to.equal(names.length);
      });
    }

    it('collapses back to flat when it shrinks to DISPATCH_LEAF_MAX, deleting the child chains', () => {
      const names = [...hexRange('tapa', 10), ...hexRange('tapb', 6), 'tapc1'];
      const t = treeOf(names);
      t.flush();
      t.set('tapc1', null);
      const out = t.flush();
      expect(sorted(out)).to.deep.equal(
        sorted(
          new Map<string, string[] | null>([
            [CHAIN_FROM_ENDPOINT, [...leaves(names.slice(0, 16), 'from'), '-j DROP']],
            [CHAIN_TO_ENDPOINT, [...leaves(names.slice(0, 16), 'to'), '-j DROP']],
            ['felix-FROM-IF-tapa', null],
            ['felix-TO-IF-tapa', null],
            ['felix-FROM-IF-tapb', null],
            ['felix-TO-IF-tapb', null],
          ]),
        ),
      );
    });

    it('returns nothing for no-op changes: same target, unknown removal, add then remove', () => {
      const t = treeOf(hexRange('tapa', 17));
      t.flush();
      t.set('tapa0', target('tapa0'));
      t.set('tapzz', null);
      t.set('tapa55', target('tapa55'));
      t.set('tapa55', null);
      expect(t.flush().size).to.equal(0);
      expect(t.size).to.equal(17);
    });

    it("a target change in one direction rewrites only that direction's chain", () => {
      const t = treeOf(hexRange('tapa', 17));
      t.flush();
      t.set('tapa3', { from: target('tapa3').from, to: 'felix-to-other' });
      expect([...t.flush().keys()]).to.deep.equal(['felix-TO-IF-tapa']);
    });
  });

  describe('chain names', () => {
    it("fit iptables' 28 characters for the deepest chain 15-character names can force", () => {
      // A chain needs two distinct names below its path, so with names of at most
      // 15 characters its path has at most 14: 'felix-FROM-IF-' (14) + 14 = 28.
      // Build that worst case: 17 names below a 13-character path, two of them below a 14-character one.
      const p13 = PREFIX + 'a'.repeat(10);
      const names = [`${p13}a0`, `${p13}a1`, ...Array.from({ length: 15 }, (_, i) => p13 + MIXED[27 + i]!)];
      expect(Math.max(...names.map((n) => n.length))).to.equal(15);
      const chains = treeOf(names).chains();
      expect(chains.has(`felix-FROM-IF-${p13}a`)).to.equal(true);
      expect(Math.max(...[...chains.keys()].map((n) => n.length))).to.equal(28);
    });

    it('never exceed 28 characters, nor wildcards 15, for random names of at most 15 characters', () => {
      const rand = seededRandom(28);
      for (let round = 0; round < 20; round++) {
        // Few stems, so that long shared prefixes force deep trees.
        const stems = Array.from({ length: 3 }, () => randomName(rand, 'ab', 12));
        const names = new Set<string>();
        while (names.size < 400) {
          const stem = pick(rand, stems).slice(0, 3 + Math.floor(rand() * 13));
          names.add((stem + randomName(rand, 'ab01', 15).slice(3)).slice(0, 4 + Math.floor(rand() * 12)));
        }
        for (const n of names) expect(n.length).to.be.at.most(15);
        const chains = treeOf(names).chains();
        for (const [name, rules] of chains) {
          expect(name.length, name).to.be.at.most(28);
          expect(name.startsWith('felix-')).to.equal(true);
          for (const r of rules) {
            const m = RULE_RE.exec(r);
            if (m) expect(m[1]!.length, r).to.be.at.most(15);
          }
        }
      }
    });
  });

  describe('property: incremental flush equals the whole tree, which equals one built from scratch', () => {
    const cases: [string, number, string, number][] = [
      // name, seed, alphabet, maximum size
      ['hex names', 1, HEX, 3000],
      ['hex names, small sizes around the split', 2, HEX, 40],
      ['mixed [A-Za-z0-9_.-] names', 3, MIXED, 3000],
      ['mixed names over a tiny alphabet (deep trees)', 4, 'a_.', 800],
    ];
    for (const [name, seed, alphabet, maxSize] of cases) {
      it(name, () => {
        const rand = seededRandom(seed);
        const t = new DispatchTree(PREFIX);
        const entries = new Map<string, DispatchTarget>();
        let state = new Map<string, string[]>();
        let peak = 0; // coverage: the sequence reached large sizes and deleted chains
        let deleted = 0;
        const randomIf = (): string => {
          // Half the time extend a present name's prefix, so names share long prefixes.
          if (entries.size > 0 && rand() < 0.5) {
            const base = pick(rand, [...entries.keys()].slice(-50));
            return base.slice(0, 3 + Math.floor(rand() * (base.length - 2))) + randomName(rand, alphabet, 15).slice(3, 3 + Math.floor(rand() * 4));
          }
          return randomName(rand, alphabet, 4 + Math.floor(rand() * 12));
        };
        for (let batch = 0; batch < 40; batch++) {
          const goal = Math.floor(rand() * maxSize);
          const ops = 1 + Math.floor(rand() * (batch % 5 === 0 ? maxSize : Math.min(50, maxSize)));
          for (let i = 0; i < ops; i++) {
            const r = rand();
            if (r < 0.1 && entries.size > 0) {
              const n = pick(rand, [...entries.keys()]); // change a target
              const tg = target(n, 1 + Math.floor(rand() * 3));
              t.set(n, tg);
              entries.set(n, tg);
            } else if (entries.size > goal || (r < 0.3 && entries.size > 0)) {
              const n = rand() < 0.9 ? pick(rand, [...entries.keys()]) : randomIf();
              t.set(n, null);
              entries.delete(n);
            } else {
              const n = randomIf().slice(0, 15);
              t.set(n, target(n));
              entries.set(n, target(n));
            }
          }
          const out = t.flush();
          peak = Math.max(peak, entries.size);
          deleted += [...out.values()].filter((r) => r === null).length;
          // Exactly the changed chains: no unchanged chain, no deletion of a chain that did not exist.
          for (const [chain, rules] of out) {
            if (rules === null) expect(state.has(chain), `deleted ${chain}`).to.equal(true);
            else expect(state.get(chain), `unchanged ${chain} returned`).to.not.deep.equal(rules);
          }
          const next = new Map(state);
          for (const [chain, rules] of out) {
            if (rules === null) next.delete(chain);
            else next.set(chain, rules);
          }
          const whole = t.chains();
          expect(sorted(next)).to.deep.equal(sorted(whole));
          expect(sorted(whole)).to.deep.equal(sorted(rebuilt(entries).chains()));
          expect(t.size).to.equal(entries.size);
          checkShape(whole, alphabet === HEX);
          // A sample walked as iptables would: names that are prefixes of others must still reach their own chain.
          for (const n of [...entries.keys()].slice(-30)) expect(walk(whole, 'from', n).end).to.equal(entries.get(n)!.from);
          for (let i = 0; i < 5; i++) {
            const n = randomIf().slice(0, 15);
            expect(walk(whole, 'to', n).end).to.equal(entries.get(n)?.to ?? 'DROP');
          }
          state = next;
        }
        expect(peak).to.be.greaterThan(maxSize / 2);
        expect(deleted).to.be.greaterThan(0);
      });
    }

    function rebuilt(entries: Map<string, DispatchTarget>): DispatchTree {
      const t = new DispatchTree(PREFIX);
      for (const [n, tg] of [...entries].reverse()) t.set(n, tg);
      return t;
    }

    /** Every chain ends in DROP and holds at most one rule per next character, one exact, one DROP. */
    function checkShape(chains: Map<string, string[]>, hex: boolean): void {
      for (const [name, rules] of chains) {
        expect(rules[rules.length - 1], name).to.equal('-j DROP');
        expect(rules.slice(0, -1)).to.not.include('-j DROP');
        const path = name === CHAIN_FROM_ENDPOINT || name === CHAIN_TO_ENDPOINT ? PREFIX : name.replace(/^felix-(FROM|TO)-IF-/, '');
        const pats = rules.slice(0, -1).map((r) => RULE_RE.exec(r)![1]!);
        for (const p of pats) expect(p.startsWith(path), `${name}: ${p}`).to.equal(true);
        const nexts = new Set(pats.filter((p) => p !== path).map((p) => p[path.length]));
        expect(rules.length, name).to.be.at.most(Math.max(DISPATCH_LEAF_MAX + 1, nexts.size + 2));
        if (hex) expect(rules.length, name).to.be.at.most(18);
      }
    }
  });

  describe('walk: a packet reaches its own endpoint chain in O(log N) rules', () => {
    for (const n of [17, 1000, 5000]) {
      it(`${n} random hex interfaces`, () => {
        const rand = seededRandom(n);
        const names = new Set<string>();
        while (names.size < n) names.add(randomName(rand, HEX, 14)); // tap + 11 hex, as endpoint ids give
        const chains = treeOf(names).chains();
        let max = 0;
        let sum = 0;
        for (const ifname of names) {
          for (const dir of ['from', 'to'] as const) {
            const w = walk(chains, dir, ifname);
            expect(w.end).to.equal(target(ifname)[dir]);
            max = Math.max(max, w.rules);
            sum += w.rules;
          }
        }
        for (const unknown of ['tapzzz', 'tap', randomName(rand, HEX, 14), [...names][0]! + '0', [...names][0]!.slice(0, 10)]) {
          if (names.has(unknown)) continue;
          expect(walk(chains, 'from', unknown).end).to.equal('DROP');
          expect(walk(chains, 'to', unknown).end).to.equal('DROP');
        }
        console.log(
          `      ${n} interfaces: ${chains.size / 2} chains per direction, rules walked max ${max}, mean ${(sum / (2 * n)).toFixed(1)} (flat: up to ${n})`,
        );
        if (n >= 1000) expect(max).to.be.at.most(60);
      });
    }
  });

  describe('parseLeafRule', () => {
    const rows: [string, ReturnType<typeof DispatchTree.parseLeafRule>][] = [
      ['-i tapX -g felix-from-S', { ifname: 'tapX', direction: 'from', target: 'felix-from-S' }],
      ['-o tap0123456789a -g felix-to-0123456789a', { ifname: 'tap0123456789a', direction: 'to', target: 'felix-to-0123456789a' }],
      ['-i tapa+ -g felix-FROM-IF-tapa', null],
      ['-o tapa+ -g felix-TO-IF-tapa', null],
      ['-i tapa+ -g felix-from-x', null],
      ['-i tapX -g felix-to-S', null],
      ['-o tapX -g felix-from-S', null],
      ['-i tapX -j felix-from-S', null],
      ['-j DROP', null],
      ['', null],
    ];
    for (const [rule, want] of rows) {
      it(JSON.stringify(rule), () => expect(DispatchTree.parseLeafRule(rule)).to.deep.equal(want));
    }

    it('reads back every leaf rule the tree writes, and no tree rule', () => {
      const rand = seededRandom(7);
      const names = new Set<string>();
      while (names.size < 500) names.add(randomName(rand, HEX, 14));
      const seen = new Set<string>();
      for (const [, rules] of treeOf(names).chains()) {
        for (const r of rules) {
          const p = DispatchTree.parseLeafRule(r);
          if (r.includes('+ -g ') || r === '-j DROP') expect(p).to.equal(null);
          else {
            expect(p!.target).to.equal(target(p!.ifname)[p!.direction]);
            seen.add(`${p!.direction} ${p!.ifname}`);
          }
        }
      }
      expect(seen.size).to.equal(2 * names.size);
    });
  });

  describe('performance sanity (logged, not asserted)', () => {
    it('flush() after one change with 5000 entries present', () => {
      const rand = seededRandom(5000);
      const names = new Set<string>();
      while (names.size < 5000) names.add(randomName(rand, HEX, 14));
      let t0 = performance.now();
      const t = treeOf(names);
      t.flush();
      const build = performance.now() - t0;
      const present = [...names];
      const rounds = 2000;
      let chainsOut = 0;
      t0 = performance.now();
      for (let i = 0; i < rounds; i++) {
        // Alternate: add a new interface, then remove a present one.
        if (i % 2 === 0) {
          const n = randomName(rand, HEX, 14);
          t.set(n, target(n));
          present.push(n);
        } else {
          t.set(present.splice(Math.floor(rand() * present.length), 1)[0]!, null);
        }
        chainsOut += t.flush().size;
      }
      const perFlush = (performance.now() - t0) / rounds;
      t0 = performance.now();
      for (let i = 0; i < 20; i++) t.chains();
      const whole = (performance.now() - t0) / 20;
      console.log(
        `      5000 entries: build+first flush ${build.toFixed(1)} ms; one change's set+flush ${(perFlush * 1000).toFixed(1)} µs ` +
          `(${(chainsOut / rounds).toFixed(1)} chains returned); full chains() ${whole.toFixed(2)} ms`,
      );
    });
  });
});
