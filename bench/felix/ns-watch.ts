/**
 * Watches a Felix from outside it, inside its network namespace (`ip netns
 * exec NS node dist/bench/felix/ns-watch.js`): polls Felix's metrics
 * endpoint on 127.0.0.1 and the kernel (iptables, ipset). One JSON command
 * per stdin line, one answer line per command on stdout (`{seq, ok, result
 * | error}`), plus `{seq, progress}` lines while a long wait runs. Times are
 * wall-clock milliseconds (performance.timeOrigin + performance.now()), the
 * same clock as the benchmark's, taken when a poll that saw the condition
 * had finished.
 *
 * Commands:
 *   {op:'ready', port, timeoutMs}                          /readyz answers 200
 *   {op:'programmed', port, n, intervalMs, pace, timeoutMs} /metrics: n endpoints, all programmed, none
 *                                                          without ACLs, none failed
 *   {op:'scrape', port, count}                             median time of one /metrics scrape; Felix's apply histogram sums
 *   {op:'members', chain}                                  the sets `chain` references → their entries
 *   {op:'waitEntry', chain, entry, intervalMs, timeoutMs}  until a set `chain` references holds `entry`
 *   {op:'stop'}
 */
import http from 'node:http';
import readline from 'node:readline';
import childProcess from 'node:child_process';
import { promisify } from 'node:util';
import { errorMessage } from '../../src/common/errors.js';

interface Command {
  op: string;
  seq: number;
  [k: string]: unknown;
}

const wall = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const out = (line: unknown) => process.stdout.write(JSON.stringify(line) + '\n');

function get(port: number, path: string): Promise<{ code: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent, timeout: 10000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ code: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
  });
}

const FACTS = {
  endpoints: 'calico_felix_endpoints',
  programmed: 'calico_felix_endpoints_programmed',
  withoutAcls: 'calico_felix_endpoints_without_acls',
  failed: 'calico_felix_endpoints_failed',
} as const;
type Facts = Record<keyof typeof FACTS, number>;
/** Only the facts polled: a full scrape would also read the kernel's rule counters each time (denied packets). */
const FACTS_PATH = `/metrics?${Object.values(FACTS)
  .map((m) => `name=${m}`)
  .join('&')}`;

function parseFacts(text: string): Facts {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(?:\{[^}]*\})? (\S+)$/.exec(line);
    if (m) values.set(m[1]!, Number(m[2]));
  }
  const facts = {} as Facts;
  for (const [k, metric] of Object.entries(FACTS)) {
    const v = values.get(metric);
    if (v === undefined) throw new Error(`${metric} missing from /metrics`);
    facts[k as keyof Facts] = v;
  }
  return facts;
}

/** Polls `check` every `intervalMs` (from the start of one poll to the next; `pace`: see below); `progress` every 5 s. */
async function poll<T>(
  c: Command,
  what: string,
  check: () => Promise<T | null>,
  progress?: () => unknown,
): Promise<{ at: number; polls: number; value: T; pollMs: number }> {
  const intervalMs = Number(c['intervalMs'] ?? 50);
  const timeoutMs = Number(c['timeoutMs'] ?? 600000);
  const start = wall();
  let polls = 0;
  let busy = 0;
  let lastProgress = start;
  let lastError = '';
  for (;;) {
    const t = wall();
    polls++;
    let v: T | null = null;
    try {
      v = await check();
    } catch (err) {
      lastError = (err as Error).message;
    }
    const at = wall();
    busy += at - t;
    if (v !== null) return { at, polls, value: v, pollMs: busy / polls };
    if (at - start > timeoutMs)
      throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}${lastError ? ` (last error: ${lastError})` : ''}`);
    if (progress && at - lastProgress >= 5000) {
      lastProgress = at;
      out({ seq: c.seq, progress: progress() });
    }
    // With `pace`, wait at least as long as the poll took: polling never takes more than half of Felix's time.
    const took = wall() - t;
    await sleep(Math.max(intervalMs - took, c['pace'] ? took : 0));
  }
}

const execFile = promisify(childProcess.execFile);

/** `cmd args` with `input` on stdin; rejects on a non-zero exit. */
function run(cmd: string, args: string[], input?: string): Promise<string> {
  const p = execFile(cmd, args, { maxBuffer: 1 << 28 });
  if (input !== undefined) p.child.stdin!.end(input);
  return p.then((r) => r.stdout);
}

/** The sets a chain's rules reference (`--match-set NAME`) → their entries: two processes, `iptables -S` and one `ipset -` batch. */
async function members(chain: string): Promise<Record<string, string[]>> {
  const names = [...new Set([...(await run('iptables', ['-w', '-S', chain])).matchAll(/--match-set (\S+)/g)].map((m) => m[1]!))];
  const result: Record<string, string[]> = Object.fromEntries(names.map((n) => [n, []]));
  if (names.length === 0) return result;
  const saved = await run('ipset', ['-'], names.map((n) => `save ${n}\n`).join(''));
  for (const raw of saved.split('\n')) {
    const line = raw.replace(/^(ipset> )+/, '');
    if (!line.startsWith('add ')) continue;
    const [, name, entry] = line.split(' ');
    result[name!]?.push(entry!);
  }
  return result;
}

async function perform(c: Command): Promise<unknown> {
  const port = Number(c['port']);
  switch (c.op) {
    case 'ready': {
      const r = await poll(c, 'Felix /readyz', async () => ((await get(port, '/readyz')).code === 200 ? true : null));
      return { at: r.at };
    }
    case 'programmed': {
      const n = Number(c['n']);
      let last: Facts | null = null;
      const r = await poll(
        c,
        `${n} endpoints programmed with ACLs (/metrics)`,
        async () => {
          const f = parseFacts((await get(port, FACTS_PATH)).body);
          last = f;
          return f.endpoints === n && f.programmed === n && f.withoutAcls === 0 && f.failed === 0 ? f : null;
        },
        () => last,
      );
      return { at: r.at, polls: r.polls, pollMs: r.pollMs, facts: r.value };
    }
    case 'scrape': {
      // What one /metrics scrape costs an idle Felix (the price of polling it): median of `count`.
      const times: number[] = [];
      for (let i = 0; i < Number(c['count'] ?? 5); i++) {
        const t = wall();
        parseFacts((await get(port, FACTS_PATH)).body);
        times.push(wall() - t);
      }
      // And what Felix reports of its own applies, if it does (calico_felix_dataplane_apply_seconds{part}).
      const applies: Record<string, { count: number; seconds: number }> = {};
      for (const m of (await get(port, '/metrics')).body.matchAll(/^calico_felix_dataplane_apply_seconds_(sum|count)\{part="([^"]+)"\} (\S+)$/gm)) {
        const a = (applies[m[2]!] ??= { count: 0, seconds: 0 });
        if (m[1] === 'sum') a.seconds = Number(m[3]);
        else a.count = Number(m[3]);
      }
      return { ms: times.sort((a, b) => a - b)[Math.floor(times.length / 2)], applies };
    }
    case 'members':
      return members(String(c['chain']));
    case 'waitEntry': {
      const chain = String(c['chain']);
      const entry = String(c['entry']);
      const r = await poll(c, `${entry} in a set ${chain} references`, async () => {
        const sets = await members(chain);
        return Object.values(sets).some((m) => m.includes(entry)) ? true : null;
      });
      return { at: r.at, polls: r.polls, pollMs: r.pollMs };
    }
    case 'stop':
      setImmediate(() => process.exit(0));
      return null;
    default:
      throw new Error(`unknown op ${c.op}`);
  }
}

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const c = JSON.parse(line) as Command;
  perform(c).then(
    (result) => out({ seq: c.seq, ok: true, result }),
    (err: unknown) => out({ seq: c.seq, ok: false, error: errorMessage(err) }),
  );
});
process.stdin.on('end', () => process.exit(0));
