/**
 * ACL manager benchmark (printed, not asserted). N endpoints in G groups of
 * the prototype's shape; measures the initial full computation, then one
 * membership change handled by the incremental calculator against the 2014
 * behaviour (recompute every endpoint from scratch and republish them all),
 * in the same run. Publishing goes through the real AclServer (ZeroMQ XPUB on
 * 127.0.0.1); "publish" times run until one SUB has received every ACLUPDATE.
 *
 *   node dist/bench/aclmgr/run.js [--endpoints 10000] [--groups 500] [--repeats 15]
 */
import { performance } from 'node:perf_hooks';
import * as zmq from 'zeromq';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { AclCalculator, AclChange, GroupState } from '../../src/aclmgr/calculator.js';
import { AclServer } from '../../src/aclmgr/acl-server.js';
import { createLogger } from '../../src/common/logging.js';
import type { Members } from '../../src/common/wire/network-api.js';
import { freePorts } from '../../test/support/ports.js';

const argv = yargs(hideBin(process.argv))
  .options({
    endpoints: { type: 'number', default: 10000 },
    groups: { type: 'number', default: 500 },
    repeats: { type: 'number', default: 15 },
  })
  .strict()
  .parseSync();

const N = argv.endpoints;
const G = argv.groups;

function prototypeGroup(id: string, members: Members): GroupState {
  return {
    group: id,
    members,
    rules: {
      inbound: [{ group: id, cidr: null, protocol: null, port: null }],
      outbound: [
        { group: id, cidr: null, protocol: null, port: null },
        { group: null, cidr: '0.0.0.0/0', protocol: null, port: null },
      ],
      inbound_default: 'deny',
      outbound_default: 'deny',
    },
  };
}

const addr = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;

function initialGroups(): GroupState[] {
  const members: Members[] = Array.from({ length: G }, () => ({}));
  for (let i = 0; i < N; i++) members[i % G]![`ep${i}`] = [addr(i)];
  return members.map((m, g) => prototypeGroup(`group${g}`, m));
}

/** The 2014 way: every endpoint's ACLs from scratch, every one of them reported for publication. */
function recomputeAll(groups: Iterable<GroupState>): AclChange[] {
  const calc = new AclCalculator();
  const all = new Map<string, AclChange>();
  for (const g of groups) for (const c of calc.applyGroupUpdate(g).changes) all.set(c.endpoint, c);
  return [...all.values()];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (x: number) => `${x.toFixed(2)} ms`;

async function main(): Promise<void> {
  const log = createLogger({ name: 'bench', file: null, fileLevel: 'NONE', screenLevel: 'NONE' });
  const [reqPort, pubPort] = await freePorts(2);
  const calc = new AclCalculator();
  const server = await AclServer.start({
    log,
    routerAddress: `tcp://127.0.0.1:${reqPort}`,
    publishAddress: `tcp://127.0.0.1:${pubPort}`,
    heartbeatMs: 30000,
    aclsFor: (ep) => calc.aclsFor(ep),
  });
  const sub = new zmq.Subscriber({ linger: 0 });
  sub.connect(`tcp://127.0.0.1:${pubPort}`);
  sub.subscribe('');
  let received = 0;
  void (async () => {
    for await (const [, body] of sub) if (body!.includes('"ACLUPDATE"')) received++;
  })().catch(() => {});
  await new Promise((r) => setTimeout(r, 300));

  /** Queues `changes` for publication, returning the time until the SUB received them all (or gave up after 3 s), and how many it got. */
  async function publish(changes: AclChange[]): Promise<{ sendMs: number; delivered: number }> {
    const before = received;
    const t = performance.now();
    for (const c of changes) server.publishChange(c.endpoint, c.acls);
    const deadline = Date.now() + 3000;
    while (received - before < changes.length && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    return { sendMs: performance.now() - t, delivered: received - before };
  }

  const groups = initialGroups();
  console.log(`ACL manager benchmark: ${N} endpoints in ${G} groups of ${Math.round(N / G)} (prototype rules), node ${process.version}`);
  console.log('publishing: real AclServer XPUB on tcp://127.0.0.1, timed until one SUB has received every ACLUPDATE\n');

  // Initial full set.
  const t = performance.now();
  const changes: AclChange[] = [];
  for (const g of groups) changes.push(...calc.applyGroupUpdate(g).changes);
  const initialCalcMs = performance.now() - t;
  const initialPub = await publish(changes);
  console.log(
    `initial full set:  compute ${ms(initialCalcMs)} for ${changes.length} endpoints; publish ${ms(initialPub.sendMs)}, ${initialPub.delivered} received\n`,
  );

  // One membership change: a new endpoint joins group0 (one GROUPUPDATE).
  const state = new Map(groups.map((g) => [g.group, g]));
  const base = groups[0]!;
  type Series = { calc: number[]; total: number[]; count: number; delivered: number };
  const inc: Series = { calc: [], total: [], count: 0, delivered: 0 };
  const full: Series = { calc: [], total: [], count: 0, delivered: 0 };
  /** Times one way of computing the change, then publishes what it found. */
  async function measure(series: Series, compute: () => AclChange[]): Promise<void> {
    const start = performance.now();
    const found = compute();
    const calcMs = performance.now() - start;
    const pub = await publish(found);
    series.calc.push(calcMs);
    series.total.push(calcMs + pub.sendMs);
    series.count = found.length;
    series.delivered = pub.delivered;
  }
  for (let r = 0; r < argv.repeats; r++) {
    const joined = prototypeGroup(base.group, { ...base.members, [`new${r}`]: [addr(N + r)] });
    await measure(inc, () => calc.applyGroupUpdate(joined).changes);
    state.set(base.group, joined);
    await measure(full, () => recomputeAll(state.values()));

    // Back to the initial state for the next round (not measured).
    state.set(base.group, base);
    calc.applyGroupUpdate(base);
  }
  console.log(`one membership change (an endpoint joins a group of ${Object.keys(base.members).length}), median of ${argv.repeats}:`);
  console.log(
    `  incremental (this rebuild):       compute ${ms(median(inc.calc))}, compute+publish ${ms(median(inc.total))}, ${inc.count} ACLUPDATEs (${inc.delivered} received)`,
  );
  console.log(
    `  recompute + republish all (2014): compute ${ms(median(full.calc))}, compute+publish ${ms(median(full.total))}, ${full.count} ACLUPDATEs (${full.delivered} received)`,
  );
  const goal = median(inc.total) < 20 && inc.count === Object.keys(base.members).length + 1;
  console.log(`goal (only the affected endpoints, under 20 ms): ${goal ? 'met' : 'NOT met'}`);

  sub.close();
  await server.stop();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
