/**
 * The Felix dataplane's apply loop against a fake kernel and a fake clock
 * (no root): ordering (sets → chains → unused sets → conntrack), shared sets
 * and their lifetimes, latest-wins coalescing, failure isolation and retries,
 * restart retention and cleanup. What only the kernel can show (packets) is
 * in test/integration/felix-dataplane.test.ts.
 */
import { expect } from 'chai';
import { pino } from 'pino';
import type { Acls } from '../../../src/common/wire/acl-api.js';
import type { Rule } from '../../../src/common/wire/rules.js';
import { Dataplane, DataplaneOptions, EndpointSpec } from '../../../src/felix/dataplane/index.js';
import type { CommandRunner } from '../../../src/felix/dataplane/drivers/commands.js';
import { contentSetName } from '../../../src/felix/dataplane/render/names.js';
import { FakeKernel } from '../../support/fake-kernel.js';
import { FakeClock } from '../../support/fake-clock.js';
import { errorMessage } from '../../../src/common/errors.js';

const rule = (cidr: string, more: Partial<Rule> = {}): Rule => ({ group: null, cidr, protocol: null, port: null, ...more });
const rules = (inbound: Rule[], outbound: Rule[] = [rule('0.0.0.0/0')]) => ({
  inbound,
  outbound,
  inbound_default: 'deny' as const,
  outbound_default: 'deny' as const,
});
const acls = (inbound: Rule[]): Acls => ({ v4: rules(inbound), v6: rules([], []) });
const GROUP = acls([rule('192.168.0.0/16')]);
const OUT = contentSetName(4, 'addr', ['0.0.0.0/1', '128.0.0.0/1']);

const hex = (i: number): string => i.toString(16).padStart(4, '0');
const ep = (i: number, over: Partial<EndpointSpec> = {}): EndpointSpec => ({
  id: `e${hex(i)}aaaaaa${hex(i)}`,
  ifname: `tape${hex(i)}aaaaaa`,
  mac: `ee:ee:00:00:${hex(i).slice(0, 2)}:${hex(i).slice(2)}`,
  addrs: [`192.168.${Math.floor(i / 250)}.${(i % 250) + 1}`],
  enabled: true,
  ...over,
});

interface World {
  k: FakeKernel;
  clock: FakeClock;
  dp: Dataplane;
}

/** Dataplane options over the defaults below; a test that needs its clock early passes its own. */
type Options = Omit<Partial<DataplaneOptions>, 'clock'> & { clock?: FakeClock };

async function start(k = new FakeKernel(), over: Options = {}): Promise<World> {
  const clock = over.clock ?? new FakeClock();
  const dp = new Dataplane({
    log: pino({ level: 'silent' }),
    interfacePrefix: 'tap',
    metadata: null,
    retryMs: 100,
    refreshMs: 0,
    commands: k.runner,
    netlink: k.newNetlink(),
    sysctl: k.sysctl,
    clock,
    ...over,
  });
  await dp.start();
  return { k, clock, dp };
}

/** Applies and waits until nothing is left to do. */
async function settle(w: World): Promise<void> {
  await w.k.settle();
  await w.dp.idle();
  w.k.checkInvariants();
}

const filter = (w: World, family: 4 | 6 = 4) => w.k.chains(family, 'filter');
const felixSets = (w: World) => [...w.k.sets().keys()].filter((n) => n.startsWith('felix-')).sort();
const restoreInputs = (w: World, cmd: string) =>
  w.k.calls.filter((c) => c.cmd === cmd && (cmd !== 'ipset' || c.args.includes('restore'))).map((c) => c.input ?? '');
const snapshot = (w: World) =>
  [w.k.iptablesSave(4), w.k.iptablesSave(6), w.k.ipsetSave().replace(/ initval \S+/g, ''), JSON.stringify(w.k.routes()), JSON.stringify(w.k.neighbours())].join(
    '\n',
  );

function plug(k: FakeKernel, ...specs: EndpointSpec[]): void {
  for (const s of specs) k.addLink(s.ifname);
}

/**
 * A command runner over `k` that, once armed, holds the next run of `tool`
 * (`ipset` only for `ipset restore`) until released: for what happens while
 * a command runs.
 */
function holdNext(k: FakeKernel, tool: string) {
  let armed = false;
  let enter!: () => void;
  let release!: () => void;
  const entered = new Promise<void>((r) => (enter = r));
  const released = new Promise<void>((r) => (release = r));
  const commands: CommandRunner = {
    run: async (cmd, args, input) => {
      if (armed && cmd === tool && (cmd !== 'ipset' || args.includes('restore'))) {
        armed = false;
        enter();
        await released;
      }
      return k.runner.run(cmd, args, input);
    },
  };
  return { commands, entered, release, arm: () => void (armed = true) };
}

/** A started dataplane with endpoints 1 and 2 programmed in GROUP. */
async function twoEndpoints(over: Options = {}): Promise<World & { a: EndpointSpec; b: EndpointSpec }> {
  const w = await start(new FakeKernel(), over);
  const [a, b] = [ep(1), ep(2)];
  plug(w.k, a, b);
  for (const e of [a, b]) {
    w.dp.upsertEndpoint(e);
    w.dp.setAcls(e.id, GROUP);
  }
  await settle(w);
  return { ...w, a, b };
}

/** A started dataplane with endpoint 1 programmed in GROUP. */
async function oneEndpoint(spec = ep(1), over: Options = {}): Promise<World & { a: EndpointSpec }> {
  const w = await start(new FakeKernel(), over);
  plug(w.k, spec);
  w.dp.upsertEndpoint(spec);
  w.dp.setAcls(spec.id, GROUP);
  await settle(w);
  return { ...w, a: spec };
}

describe('Felix dataplane apply loop (fake kernel)', () => {
  it('starts on an empty kernel: host chains, the raw source check, one jump each; nothing else', async () => {
    const w = await start();
    await settle(w);
    expect([...filter(w).keys()].filter((n) => n.startsWith('felix-')).sort()).to.deep.equal([
      'felix-DHCP',
      'felix-FORWARD',
      'felix-FROM-ENDPOINT',
      'felix-INPUT',
      'felix-TO-ENDPOINT',
    ]);
    expect(filter(w).get('FORWARD')).to.deep.equal(['-j felix-FORWARD']);
    expect(w.k.chains(6, 'raw').get('PREROUTING')).to.deep.equal(['-j felix-RPF']);
    expect(filter(w).get('felix-FROM-ENDPOINT')).to.deep.equal(['-j DROP']);
    expect(felixSets(w)).to.deep.equal([]);
    const before = snapshot(w);
    w.k.resetCalls();
    await w.dp.stop();
    const again = await start(w.k);
    await settle(again);
    expect(snapshot(again), 'a restart changes nothing').to.equal(before);
    expect(again.k.count('iptables-restore') + again.k.count('ip6tables-restore'), 'and writes nothing').to.equal(0);
  });

  it('a new endpoint is deny-all without sets; its ACLs make the sets before the chains that use them, and old sets go after', async () => {
    const w = await start();
    const a = ep(1);
    plug(w.k, a);
    w.dp.upsertEndpoint(a);
    await settle(w);
    expect(filter(w).get('felix-to-e0001aaaaaa')).to.deep.equal(['-j DROP']);
    expect(felixSets(w)).to.deep.equal([]);
    expect(w.dp.status(a.id)).to.deep.equal({ programmed: true, routesProgrammed: true, filterProgrammed: true, interfaceUp: true });

    w.k.resetCalls();
    w.dp.setAcls(a.id, acls([rule('10.0.0.1/32')]));
    await settle(w);
    const first = contentSetName(4, 'addr', ['10.0.0.1']);
    expect(felixSets(w)).to.deep.equal([first, OUT].sort());
    expect(w.k.calls.map((c) => c.cmd)).to.deep.equal(['ipset', 'iptables-restore'], 'sets, then one restore (IPv4 only)');

    w.k.resetCalls();
    w.dp.setAcls(a.id, acls([rule('10.0.0.2/32')]));
    await settle(w);
    expect(felixSets(w)).to.deep.equal([contentSetName(4, 'addr', ['10.0.0.2']), OUT].sort());
    expect(w.k.calls.map((c) => c.cmd)).to.deep.equal(['ipset', 'iptables-restore', 'ipset']);
    expect(w.k.calls[2]!.input).to.equal(`destroy ${first}\n`);
  });

  it('latest ACLs win: several updates before an apply render once and make no intermediate set', async () => {
    const w = await start();
    const a = ep(1);
    plug(w.k, a);
    w.dp.upsertEndpoint(a);
    for (let i = 1; i <= 5; i++) w.dp.setAcls(a.id, acls([rule(`10.0.0.${i}/32`)]));
    await settle(w);
    const made = restoreInputs(w, 'ipset')
      .join('')
      .split('\n')
      .filter((l) => l.startsWith('rename '))
      .map((l) => l.split(' ')[2]);
    expect(made.sort()).to.deep.equal([contentSetName(4, 'addr', ['10.0.0.5']), OUT].sort());
  });

  it('endpoints with equal ACLs share sets: 300 endpoints in 10 groups hold 11 sets; a set goes with its last user', async () => {
    const w = await start();
    const eps = Array.from({ length: 300 }, (_, i) => ep(i));
    plug(w.k, ...eps);
    const groupAcls = (g: number) => acls(eps.filter((_, i) => i % 10 === g).map((e) => rule(`${e.addrs[0]}/32`)));
    for (const [i, e] of eps.entries()) {
      w.dp.upsertEndpoint(e);
      w.dp.setAcls(e.id, groupAcls(i % 10));
    }
    await settle(w);
    expect(felixSets(w)).to.have.length(11);
    const group0 = contentSetName(
      4,
      'addr',
      eps
        .filter((_, i) => i % 10 === 0)
        .map((e) => e.addrs[0]!)
        .sort(),
    );
    for (const e of eps.filter((_, i) => i % 10 === 0).slice(1)) w.dp.removeEndpoint(e.id);
    await settle(w);
    expect(felixSets(w)).to.include(group0, 'one user left');
    w.dp.removeEndpoint(eps[0]!.id);
    await settle(w);
    expect(felixSets(w)).not.to.include(group0);
    expect(felixSets(w)).to.have.length(10);
  });

  it('dispatch is a tree: no dispatch chain holds more than 18 rules, and one change rewrites only the chains on its path', async () => {
    const w = await start();
    const eps = Array.from({ length: 1000 }, (_, i) => ep(i, { ifname: `tap${((i * 2654435761) >>> 0).toString(16).padStart(8, '0')}` }));
    plug(w.k, ...eps);
    for (const e of eps) {
      w.dp.upsertEndpoint(e);
      w.dp.setAcls(e.id, GROUP);
    }
    await settle(w);
    const dispatch = [...filter(w)].filter(([n]) => /^felix-(FROM|TO)-(ENDPOINT|IF-)/.test(n));
    expect(dispatch.length).to.be.greaterThan(2);
    expect(Math.max(...dispatch.map(([, r]) => r.length))).to.be.at.most(18);

    w.k.resetCalls();
    const extra = ep(5000, { ifname: 'tap0123abcd' });
    plug(w.k, extra);
    w.dp.upsertEndpoint(extra);
    w.dp.setAcls(extra.id, GROUP);
    await settle(w);
    const declared = restoreInputs(w, 'iptables-restore')
      .join('')
      .split('\n')
      .filter((l) => l.startsWith(':'));
    expect(declared.length, declared.join(' ')).to.be.at.most(2 + 2 * 4, 'its two chains and at most four levels of dispatch per direction');
  });

  it('a set that cannot be made fails only its endpoints: out of dispatch, flows forgotten, retried after the backoff', async () => {
    const w = await start();
    const [a, b] = [ep(1), ep(2)];
    plug(w.k, a, b);
    w.dp.upsertEndpoint(a);
    w.dp.upsertEndpoint(b);
    w.dp.setAcls(a.id, GROUP);
    await settle(w);
    w.k.addFlow(b.addrs[0]!, a.addrs[0]!);
    const bad = contentSetName(4, 'addr', ['10.9.9.9']);
    w.k.failNext((cmd, _args, input) => cmd === 'ipset' && (input ?? '').includes(bad), 'ipset v7.17: Error in line 1: Hash is full: cannot add more elements');
    w.dp.setAcls(b.id, acls([rule('10.9.9.9/32')]));
    await settle(w);
    expect(w.dp.status(b.id)!.error).to.match(/Hash is full/);
    expect(w.dp.status(a.id)!.programmed).to.equal(true);
    expect(
      filter(w)
        .get('felix-FROM-ENDPOINT')!
        .some((r) => r.includes(b.ifname)),
      'b out of dispatch',
    ).to.equal(false);
    expect(filter(w).has('felix-to-e0002aaaaaa'), 'its chains removed').to.equal(false);
    expect(w.k.flows(), 'its flows forgotten').to.deep.equal([]);

    w.clock.advance(100);
    await settle(w);
    expect(w.dp.status(b.id)).to.deep.include({ programmed: true });
    expect(felixSets(w)).to.include(bad);
  });

  it('an iptables-restore failure changes nothing, re-reads the kernel and is retried after the host backoff', async () => {
    const w = await start();
    const a = ep(1);
    plug(w.k, a);
    w.k.failNext((cmd) => cmd === 'iptables-restore', 'iptables-restore: line 3 failed');
    w.dp.upsertEndpoint(a);
    w.dp.setAcls(a.id, GROUP);
    await settle(w);
    expect(w.dp.status(a.id)!.filterProgrammed).to.equal(false);
    expect(filter(w).has('felix-to-e0001aaaaaa')).to.equal(false);
    const saves = w.k.count('iptables-save');
    w.clock.advance(1000);
    await settle(w);
    expect(w.dp.status(a.id)!.programmed).to.equal(true);
    expect(w.k.count('iptables-save'), 'read again before the retry').to.equal(saves + 1);
  });

  it('removal: chains, dispatch, sets, routes and neighbours go; conntrack runs after the restore that removed the chains', async () => {
    const w = await start();
    const [a, b] = [ep(1), ep(2)];
    plug(w.k, a, b);
    for (const e of [a, b]) {
      w.dp.upsertEndpoint(e);
      w.dp.setAcls(e.id, acls([rule(`${e.addrs[0]}/32`)]));
    }
    await settle(w);
    expect(
      w.k
        .routes()
        .map((r) => r.dst)
        .sort(),
    ).to.deep.equal([a.addrs[0], b.addrs[0]].sort());
    w.k.addFlow(a.addrs[0]!, b.addrs[0]!);
    w.k.addFlow('192.168.200.1', '192.168.200.2');
    w.k.resetCalls();
    w.dp.removeEndpoint(b.id);
    await settle(w);
    expect(filter(w).has('felix-to-e0002aaaaaa')).to.equal(false);
    expect(felixSets(w)).not.to.include(contentSetName(4, 'addr', [b.addrs[0]!]));
    expect(w.k.routes().map((r) => r.dst)).to.deep.equal([a.addrs[0]]);
    expect(w.k.neighbours().map((n) => n.dst)).to.deep.equal([a.addrs[0]]);
    expect(w.k.flows(), 'only flows of other addresses stay').to.deep.equal([{ src: '192.168.200.1', dst: '192.168.200.2' }]);
    const order = w.k.calls.map((c) => c.cmd);
    expect(order.indexOf('conntrack')).to.be.greaterThan(order.indexOf('iptables-restore'));
  });

  for (const tool of ['ipset', 'iptables-restore'])
    it(`an endpoint removed while ${tool} runs loses its dispatch entry and chains in the next restore, which does not fail (seen under churn)`, async () => {
      const k = new FakeKernel();
      const gate = holdNext(k, tool);
      const w = await start(k, { commands: gate.commands });
      const [a, b] = [ep(1), ep(2)];
      plug(k, a, b);
      w.dp.upsertEndpoint(a);
      w.dp.setAcls(a.id, GROUP);
      await settle(w);
      gate.arm();
      w.dp.upsertEndpoint(b);
      w.dp.setAcls(b.id, acls([rule('10.0.0.0/8')]));
      await gate.entered;
      w.dp.removeEndpoint(a.id);
      gate.release();
      await settle(w);
      expect(w.dp.status(b.id)!.programmed, 'the endpoint being written').to.equal(true);
      expect(filter(w).has('felix-to-e0001aaaaaa'), 'the endpoint removed meanwhile').to.equal(false);
      expect(filter(w).has('felix-from-e0001aaaaaa')).to.equal(false);
      expect(w.k.iptablesSave(4)).not.to.include(a.ifname);
      expect(w.dp.status(b.id)!.programmed, 'no failure on the way').to.equal(true);
    });

  it('sets left unused while more is staged are destroyed by the next apply’s set restore, not by a process of their own', async () => {
    const k = new FakeKernel();
    const gate = holdNext(k, 'iptables-restore');
    const w = await start(k, { commands: gate.commands });
    const a = ep(1);
    plug(k, a);
    w.dp.upsertEndpoint(a);
    w.dp.setAcls(a.id, acls([rule('10.1.0.0/16')]));
    await settle(w);
    const first = contentSetName(4, 'addr', ['10.1.0.0/16']);
    gate.arm();
    w.dp.setAcls(a.id, acls([rule('10.2.0.0/16')]));
    await gate.entered;
    // Staged while the chains that drop `first` are being written.
    w.dp.setAcls(a.id, acls([rule('10.3.0.0/16')]));
    k.resetCalls();
    gate.release();
    await settle(w);
    const restores = restoreInputs(w, 'ipset');
    expect(restores[0], 'the next apply makes its set and destroys the one left unused').to.include(`destroy ${first}`).and.to.include('add felix-tmp-');
    expect(felixSets(w)).to.deep.equal([contentSetName(4, 'addr', ['10.3.0.0/16']), OUT].sort());
  });

  it('a removal whose iptables-restore fails is retried after the backoff, not forgotten', async () => {
    const { a, ...w } = await twoEndpoints();
    w.k.failNext((cmd) => cmd === 'iptables-restore', 'iptables-restore: line 3 failed');
    w.dp.removeEndpoint(a.id);
    await settle(w);
    expect(filter(w).has('felix-to-e0001aaaaaa'), 'still there after the failure').to.equal(true);
    w.clock.advance(1000);
    await settle(w);
    expect(filter(w).has('felix-to-e0001aaaaaa')).to.equal(false);
    expect(filter(w).has('felix-from-e0001aaaaaa')).to.equal(false);
    expect(w.k.iptablesSave(4)).not.to.include(a.ifname);
  });

  it('flows are deleted in the background: a failing conntrack holds back no apply, and is retried after a backoff', async () => {
    const { a, b, ...w } = await twoEndpoints();
    w.k.addFlow(b.addrs[0]!, a.addrs[0]!);
    w.k.failNext((cmd) => cmd === 'conntrack', 'conntrack v1.4.7 (conntrack-tools): Operation failed: Device or resource busy');
    w.dp.removeEndpoint(b.id);
    await settle(w);
    expect(filter(w).has('felix-to-e0002aaaaaa')).to.equal(false);
    expect(w.k.flows(), 'not deleted yet').to.have.length(1);
    w.dp.setAcls(a.id, acls([rule('10.0.0.0/8')]));
    await settle(w);
    expect(w.dp.status(a.id)!.programmed, 'the next change applied meanwhile').to.equal(true);
    w.clock.advance(1000);
    await settle(w);
    expect(w.k.flows()).to.deep.equal([]);
  });

  it('an ACL change replaces the changed rules of the endpoint chains in place (-R), without writing the chains whole', async () => {
    const { a, ...w } = await oneEndpoint();
    w.k.resetCalls();
    w.dp.setAcls(a.id, acls([rule('10.0.0.0/8')]));
    await settle(w);
    const [text] = restoreInputs(w, 'iptables-restore');
    expect(text).to.match(/^-R felix-to-e0001aaaaaa \d+ -m set --match-set felix-4a-\S+ src -j RETURN$/m);
    expect(text).not.to.include(':felix-to-e0001aaaaaa');
    const set = /--match-set (\S+) src/.exec(filter(w).get('felix-to-e0001aaaaaa')!.join('\n'))![1]!;
    expect([...w.k.sets().get(set)!.members]).to.deep.equal(['10.0.0.0/8']);
  });

  describe('denied packets (issue #16)', () => {
    /** Packets the kernel counts against the last rule (the final DROP) of a chain. */
    const hitDrop = (w: World, chain: string, packets: number, family: 4 | 6 = 4) =>
      w.k.hitRule(family, 'filter', chain, filter(w, family).get(chain)!.length, packets);
    const lastCount = (w: World, chain: string) => w.k.ruleCounters(4, 'filter', chain).at(-1)!;
    const denied = async (w: World) =>
      Object.fromEntries((await w.dp.deniedPackets()).map((c) => [`${c.endpoint || '-'} ${c.direction} ${c.family}`, c.packets]));
    const TO = 'felix-to-e0001aaaaaa';
    const FROM = 'felix-from-e0001aaaaaa';
    const A = 'e0001aaaaaa0001';
    /** Every read goes to the kernel (the fake's reads take no time worth reusing). */
    const FRESH = { countersReuse: 0 };

    // name, the ACLs the chain goes to from GROUP (one set rule and DROP in felix-to-S)
    const changes: Array<[string, Acls]> = [
      [
        'the chain grows (a protocol rule and a port set are added)',
        acls([rule('192.168.0.0/16'), rule('10.0.0.0/8', { protocol: 'tcp' }), rule('10.1.0.0/16', { protocol: 'udp', port: 53 })]),
      ],
      ['the chain shrinks (no inbound rule left: just DROP)', acls([])],
      ['its middle changes (another set)', acls([rule('10.0.0.0/8')])],
      [
        'everything but the DROP changes (protocol rules instead of the set)',
        acls([rule('10.0.0.0/8', { protocol: 'tcp' }), rule('10.0.0.0/8', { protocol: 'udp' })]),
      ],
    ];
    for (const [name, next] of changes)
      it(`an ACL change edits the endpoint chain in place and its DROP keeps counting: ${name}`, async () => {
        const { a, ...w } = await oneEndpoint(ep(1), FRESH);
        hitDrop(w, TO, 5);
        hitDrop(w, FROM, 2);
        w.k.hitRule(4, 'filter', FROM, 3, 1); // the anti-spoofing DROP
        expect(await denied(w)).to.include({ [`${A} inbound 4`]: 5, [`${A} outbound 4`]: 3 });
        w.k.resetCalls();
        w.dp.setAcls(a.id, next);
        await settle(w);
        const [text] = restoreInputs(w, 'iptables-restore');
        expect(text).not.to.include(`:${TO} `, 'not declared (flushed)');
        expect(text).not.to.match(/^-A felix-to-e0001aaaaaa /m, 'no rule appended: edited by number');
        expect(lastCount(w, TO)).to.deep.equal({ rule: '-j DROP', packets: 5 });
        hitDrop(w, TO, 2);
        expect(await denied(w)).to.include({ [`${A} inbound 4`]: 7, [`${A} outbound 4`]: 3 });
        // The chain is what a whole rewrite would have made.
        const fresh = await oneEndpoint(ep(1), FRESH);
        fresh.dp.setAcls(fresh.a.id, next);
        await settle(fresh);
        expect(filter(w).get(TO)).to.deep.equal(filter(fresh).get(TO));
      });

    it('the dispatch chains’ DROP keeps counting as endpoints come and go; it is endpoint ""', async () => {
      const { b, ...w } = await twoEndpoints(FRESH);
      w.k.hitRule(4, 'filter', 'felix-TO-ENDPOINT', 3, 4);
      w.k.hitRule(4, 'filter', 'felix-FROM-ENDPOINT', 3, 1);
      const extra = ep(3);
      plug(w.k, extra);
      w.dp.upsertEndpoint(extra);
      w.dp.setAcls(extra.id, GROUP);
      await settle(w);
      w.dp.removeEndpoint(b.id);
      await settle(w);
      expect(filter(w).get('felix-TO-ENDPOINT')).to.have.length(3);
      expect(lastCount(w, 'felix-TO-ENDPOINT')).to.deep.equal({ rule: '-j DROP', packets: 4 });
      expect(await denied(w)).to.include({ '- inbound 4': 4, '- outbound 4': 1, '- inbound 6': 0, '- outbound 6': 0 });
    });

    it('one iptables-save -c and one ip6tables-save -c per read whatever the endpoints; concurrent reads share them; a count survives the chains going', async () => {
      const { a, ...w } = await twoEndpoints(FRESH);
      hitDrop(w, TO, 6);
      w.k.resetCalls();
      const [first, second] = await Promise.all([w.dp.deniedPackets(), w.dp.deniedPackets()]);
      expect(first).to.equal(second);
      expect(w.k.calls.map((c) => `${c.cmd} ${c.args.join(' ')}`)).to.deep.equal(['iptables-save -c -t filter', 'ip6tables-save -c -t filter']);
      expect(first.filter((c) => c.endpoint !== '').map((c) => [c.endpoint, c.direction, c.family, c.packets])).to.deep.equal([
        [A, 'inbound', 4, 6],
        [A, 'outbound', 4, 0],
        ['e0002aaaaaa0002', 'inbound', 4, 0],
        ['e0002aaaaaa0002', 'outbound', 4, 0],
      ]);
      // An update the dataplane cannot program takes its chains out (fail closed): the count stays.
      w.dp.upsertEndpoint({ ...a, mac: 'not a mac' });
      await settle(w);
      expect(filter(w).has(TO)).to.equal(false);
      expect(await denied(w)).to.include({ [`${A} inbound 4`]: 6 });
      w.dp.upsertEndpoint(a);
      await settle(w);
      hitDrop(w, TO, 1);
      expect(await denied(w)).to.include({ [`${A} inbound 4`]: 7 });
      // Removed: no count for it any more.
      w.dp.removeEndpoint(a.id);
      await settle(w);
      expect(await denied(w)).not.to.have.property(`${A} inbound 4`);
    });

    it('a reading is reused while younger than 10 times what it took (at most 10 s), so a scraper in a loop cannot keep iptables-save running', async () => {
      const k = new FakeKernel();
      const clock = new FakeClock();
      // Each iptables-save -c (one per family) takes `saveMs` of the clock.
      let saveMs = 10;
      const commands: CommandRunner = {
        run: async (cmd, args, input) => {
          if (cmd.endsWith('-save') && args.includes('-c')) clock.advance(saveMs);
          return k.runner.run(cmd, args, input);
        },
      };
      const w = await start(k, { commands, clock });
      const saves = () => k.calls.filter((c) => c.cmd.endsWith('-save') && c.args.includes('-c')).length;
      const first = await w.dp.deniedPackets();
      expect(saves()).to.equal(2);
      // The read took 20 ms: reused for 200 ms after it ended, not a moment longer.
      w.clock.advance(199);
      expect(await w.dp.deniedPackets()).to.equal(first, 'reused');
      expect(saves()).to.equal(2);
      w.clock.advance(1);
      expect(await w.dp.deniedPackets()).to.not.equal(first, 'read afresh');
      expect(saves()).to.equal(4);
      // A read of 2 s would be reused for 20 s: the reuse is capped at 10 s.
      saveMs = 1000;
      w.clock.advance(200);
      const slow = await w.dp.deniedPackets();
      expect(saves()).to.equal(6);
      w.clock.advance(9999);
      expect(await w.dp.deniedPackets()).to.equal(slow, 'reused');
      w.clock.advance(1);
      await w.dp.deniedPackets();
      expect(saves()).to.equal(8);
    });

    it('a failed read rejects (the probe shows the counts as unknown); the next read works', async () => {
      const { ...w } = await oneEndpoint(ep(1), FRESH);
      w.k.failNext((cmd, args) => cmd === 'ip6tables-save' && args.includes('-c'));
      const err = await w.dp.deniedPackets().then(
        () => null,
        (e: unknown) => e,
      );
      expect(errorMessage(err)).to.match(/ip6tables-save -c -t filter failed/);
      expect(await denied(w)).to.include({ [`${A} inbound 4`]: 0 });
    });
  });

  it('a disabled endpoint: no routes, no allow rules, its flows forgotten; an address it loses is forgotten too', async () => {
    const { a, ...w } = await oneEndpoint(ep(1, { addrs: ['192.168.0.2', '192.168.0.3'] }));
    w.k.addFlow('192.168.0.3', '10.0.0.1');
    w.dp.upsertEndpoint({ ...a, addrs: ['192.168.0.2'] });
    await settle(w);
    expect(w.k.flows()).to.deep.equal([], 'the lost address');
    w.k.addFlow('10.0.0.1', '192.168.0.2');
    w.dp.upsertEndpoint({ ...a, addrs: ['192.168.0.2'], enabled: false });
    await settle(w);
    expect(w.k.routes()).to.deep.equal([]);
    expect(filter(w).get('felix-to-e0001aaaaaa')).to.deep.equal(['-j DROP']);
    expect(w.k.flows()).to.deep.equal([]);
  });

  it('a restart keeps what the previous run programmed until the ACLs arrive; cleanup removes only the stale', async () => {
    const w = await start();
    const [a, b] = [ep(1), ep(2)];
    plug(w.k, a, b);
    for (const e of [a, b]) {
      w.dp.upsertEndpoint(e);
      w.dp.setAcls(e.id, acls([rule(`${e.addrs[0]}/32`), rule('10.0.0.0/8')]));
    }
    await settle(w);
    const before = snapshot(w);
    await w.dp.stop();

    const again = await start(w.k);
    await settle(again);
    expect(snapshot(again), 'start changes nothing').to.equal(before);
    again.dp.upsertEndpoint(a);
    await settle(again);
    expect(snapshot(again), 'a known endpoint without ACLs keeps its chains and sets').to.equal(before);
    again.dp.setAcls(a.id, GROUP);
    again.dp.cleanupStale();
    await settle(again);
    expect(filter(again).has('felix-to-e0002aaaaaa'), 'b is stale').to.equal(false);
    expect(filter(again).get('felix-FROM-ENDPOINT')!.join(' ')).not.to.contain(b.ifname);
    expect(again.k.routes().map((r) => r.dst)).to.deep.equal([a.addrs[0]]);
    expect(felixSets(again)).to.deep.equal([contentSetName(4, 'addr', ['192.168.0.0/16']), OUT].sort());
  });

  it('a content-named set whose members do not hash to its name is replaced (swapped), never reused; crash leftovers go', async () => {
    const { a, ...w } = await oneEndpoint();
    await w.dp.stop();
    const name = contentSetName(4, 'addr', ['192.168.0.0/16']);
    await w.k.runner.run(
      'ipset',
      ['restore'],
      `add ${name} 10.66.0.0/16\ncreate felix-tmp-4a-0123456789abcdef hash:net family inet\nadd felix-tmp-4a-0123456789abcdef 10.0.0.0/8\n`,
    );

    const again = await start(w.k);
    await settle(again);
    expect(felixSets(again)).not.to.include('felix-tmp-4a-0123456789abcdef');
    again.k.resetCalls();
    again.dp.upsertEndpoint(a);
    again.dp.setAcls(a.id, GROUP);
    await settle(again);
    expect(restoreInputs(again, 'ipset').join('')).to.contain(`swap felix-tmp-${name.slice(6)} ${name}`);
    expect([...again.k.sets().get(name)!.members]).to.deep.equal(['192.168.0.0/16']);
  });

  it('the periodic refresh re-reads set members and repairs a set whose members drifted (a member added, one removed)', async () => {
    const { a, ...w } = await oneEndpoint(ep(1), { refreshMs: 90000 });
    const name = contentSetName(4, 'addr', ['192.168.0.0/16']);
    expect([...w.k.sets().get(name)!.members]).to.deep.equal(['192.168.0.0/16']);
    await w.k.runner.run('ipset', ['restore'], `add ${name} 10.66.0.0/16\ndel ${name} 192.168.0.0/16\nadd ${OUT} 10.77.0.0/16\n`);
    w.k.resetCalls();
    w.clock.advance(89000);
    await settle(w);
    expect([...w.k.sets().get(name)!.members], 'not yet: nothing re-read before the refresh').to.deep.equal(['10.66.0.0/16']);
    expect(w.k.calls.filter((c) => c.cmd === 'ipset')).to.deep.equal([]);

    w.clock.advance(1000);
    await settle(w);
    // One `ipset save` (members included), then both drifted sets rebuilt under a temporary name and swapped in.
    expect(w.k.calls.filter((c) => c.cmd === 'ipset' && c.args[0] === 'save')).to.have.length(1);
    expect(restoreInputs(w, 'ipset').join(''))
      .to.contain(`swap felix-tmp-${name.slice(6)} ${name}`)
      .and.to.contain(`swap felix-tmp-${OUT.slice(6)} ${OUT}`);
    expect([...w.k.sets().get(name)!.members]).to.deep.equal(['192.168.0.0/16']);
    expect([...w.k.sets().get(OUT)!.members].sort()).to.deep.equal(['0.0.0.0/1', '128.0.0.0/1']);
    expect(w.dp.status(a.id)!.programmed).to.equal(true);

    // A refresh that finds every set as it should be writes none.
    w.k.resetCalls();
    w.clock.advance(90000);
    await settle(w);
    expect(w.k.calls.filter((c) => c.cmd === 'ipset' && c.args[0] === 'save')).to.have.length(1);
    expect(restoreInputs(w, 'ipset')).to.deep.equal([]);
  });

  it('programs routes when the interface appears, and puts them back after it goes down and up', async () => {
    const w = await start();
    const a = ep(1);
    w.dp.upsertEndpoint(a);
    w.dp.setAcls(a.id, GROUP);
    await settle(w);
    expect(w.dp.status(a.id)).to.deep.equal({ programmed: false, routesProgrammed: false, filterProgrammed: true, interfaceUp: false });
    plug(w.k, a);
    await settle(w);
    expect(w.dp.status(a.id)!.programmed).to.equal(true);
    expect(w.k.routes().map((r) => r.dst)).to.deep.equal(a.addrs);
    w.k.setLinkUp(a.ifname, false);
    await settle(w);
    expect(w.k.routes()).to.deep.equal([]);
    w.k.setLinkUp(a.ifname, true);
    await settle(w);
    expect(w.k.routes().map((r) => r.dst)).to.deep.equal(a.addrs);
    expect(w.k.neighbours().map((n) => n.dst)).to.deep.equal(a.addrs);
  });

  it('link events lost to a full netlink buffer: links, routes and neighbours are read again and every endpoint is programmed', async () => {
    const w = await start();
    const eps = Array.from({ length: 50 }, (_, i) => ep(i + 1));
    for (const e of eps) {
      w.dp.upsertEndpoint(e);
      w.dp.setAcls(e.id, GROUP);
    }
    await settle(w);
    expect(eps.filter((e) => w.dp.status(e.id)!.interfaceUp)).to.have.length(0);
    w.k.loseLinkEvents(() => plug(w.k, ...eps));
    await settle(w);
    expect(eps.filter((e) => !w.dp.status(e.id)!.programmed).map((e) => e.id)).to.deep.equal([]);
    expect(w.k.routes()).to.have.length(50);
  });

  it('IPv6: the interface gets fe80::1/64 and accept_ra=0, each address a route and a permanent neighbour; all come back after down and up', async () => {
    const w = await start();
    const a = ep(1, { addrs: ['192.168.0.2', 'fd00:192:168::1:2'] });
    plug(w.k, a);
    w.dp.upsertEndpoint(a);
    w.dp.setAcls(a.id, GROUP);
    await settle(w);
    const index = w.k.link(a.ifname)!.index;
    const programmed = () => ({
      addresses: w.k.ipv6Addresses(),
      routes: w.k
        .routes()
        .map((r) => r.dst)
        .sort(),
      neighbours: w.k
        .neighbours()
        .map((n) => `${n.dst} ${n.mac}`)
        .sort(),
    });
    const want = {
      addresses: [{ addr: 'fe80::1', prefixLen: 64, ifindex: index }],
      routes: ['192.168.0.2', 'fd00:192:168::1:2'],
      neighbours: [`192.168.0.2 ${a.mac}`, `fd00:192:168::1:2 ${a.mac}`],
    };
    expect(programmed()).to.deep.equal(want);
    expect(w.k.sysctl.values.get(`net/ipv6/conf/${a.ifname}/accept_ra`)).to.equal('0');
    w.k.setLinkUp(a.ifname, false);
    await settle(w);
    expect(programmed(), 'the kernel flushed them with the link').to.deep.equal({ addresses: [], routes: [], neighbours: [] });
    w.k.setLinkUp(a.ifname, true);
    await settle(w);
    expect(programmed(), 'put back on up').to.deep.equal(want);
    w.dp.upsertEndpoint({ ...a, addrs: ['192.168.0.2'] });
    await settle(w);
    expect(programmed(), 'no IPv6 address left: no gateway either').to.deep.equal({
      addresses: [],
      routes: ['192.168.0.2'],
      neighbours: [`192.168.0.2 ${a.mac}`],
    });
  });

  it('an IPv4-only endpoint gets no IPv6 gateway or sysctl; a removed IPv6 endpoint takes its gateway along', async () => {
    const { a, ...w } = await oneEndpoint();
    expect(w.k.ipv6Addresses()).to.deep.equal([]);
    expect([...w.k.sysctl.values.keys()].filter((k) => k.startsWith('net/ipv6/conf/tap'))).to.deep.equal([]);
    const b = ep(2, { addrs: ['fd00:192:168::1:3'] });
    plug(w.k, b);
    w.dp.upsertEndpoint(b);
    await settle(w);
    expect(w.k.ipv6Addresses().map((x) => x.addr)).to.deep.equal(['fe80::1']);
    w.dp.removeEndpoint(b.id);
    await settle(w);
    expect(w.k.ipv6Addresses()).to.deep.equal([]);
    expect(w.k.neighbours().map((n) => n.dst)).to.deep.equal(a.addrs);
  });

  it('refuses endpoint addresses no endpoint can have: link-local (the gateway fe80::1 among them), multicast, loopback, unspecified', async () => {
    const w = await start();
    for (const addr of ['fe80::1', 'fe80::2', 'ff02::1', '::1', '::', '169.254.1.1', '224.0.0.1', '127.0.0.1', '0.0.0.0']) {
      expect(await w.dp.addressProblem(addr), addr).to.match(/is not an address an endpoint can have/);
    }
    expect(await w.dp.addressProblem('fd00:192:168::1:2')).to.equal(null);
  });

  it('an unchanged upsert runs no command; a spec with an interface outside the prefix is refused and left denied', async () => {
    const { a, ...w } = await oneEndpoint();
    w.k.resetCalls();
    w.dp.upsertEndpoint(a);
    await settle(w);
    expect(w.k.calls.filter((c) => c.cmd !== 'conntrack')).to.deep.equal([]);
    w.k.addLink('eth9');
    w.dp.upsertEndpoint({ ...a, ifname: 'eth9' });
    await settle(w);
    expect(w.dp.status(a.id)!.error).to.match(/bad interface name/);
    expect(filter(w).get('felix-FROM-ENDPOINT')).to.deep.equal(['-j DROP']);
    expect(w.k.ops.filter((o) => o.args.some((x) => x.includes('eth9')))).to.deep.equal([]);
  });
});
