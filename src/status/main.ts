#!/usr/bin/env node
/**
 * `calico-status --url URL… | --lab-dir DIR [--json]`: asks daemons for
 * their /status and prints a table per component (connections; Felix's
 * endpoints with what is programmed and the age of their ACLs). Exits 1 if
 * a daemon is unreachable or not ready.
 *
 * `calico-status explain SRC DST [--protocol P] [--port N]`: why a new
 * connection from SRC to DST is allowed or denied, hop by hop (explain.ts).
 *
 * A lab's daemons listen inside its host namespaces, so with `--lab-dir`
 * this command asks them from there (`ip netns exec`).
 */
import { commandLine } from '../common/cli.js';
import { labStatusUrls, readLabState } from '../lab/state.js';
import { DaemonRef, httpGet, netnsGet, queryStatus } from './daemons.js';
import { ExplainError, ExplainSession } from './explain-session.js';
import { explain, formatExplanation } from './explain.js';
import { QueryResult, allReady, formatReport, statusUrl } from './format.js';
import { errorMessage } from '../common/errors.js';

interface Where {
  url?: string[] | undefined;
  'lab-dir'?: string | undefined;
  'timeout-ms': number;
}

const whereOptions = {
  url: { type: 'string' as const, array: true as const, describe: "a daemon's metrics address (http://127.0.0.1:9091) or its /status URL; repeatable" },
  'lab-dir': { type: 'string' as const, describe: "a lab's folder: ask every daemon of every host" },
  json: { type: 'boolean' as const, default: false, describe: 'print the documents as JSON' },
  'timeout-ms': { type: 'number' as const, default: 3000, describe: 'per daemon' },
};

function checkWhere(a: Where): true {
  if (!a.url?.length && !a['lab-dir']) throw new Error('give --url (one or more) or --lab-dir');
  if (a.url?.length && a['lab-dir']) throw new Error('give --url or --lab-dir, not both');
  for (const u of a.url ?? []) {
    let parsed: URL;
    try {
      parsed = new URL(u);
    } catch {
      throw new Error(`bad URL '${u}'`);
    }
    if (parsed.protocol !== 'http:') throw new Error(`bad URL '${u}': only http:// is served`);
  }
  if (!(a['timeout-ms'] > 0)) throw new Error('--timeout-ms must be positive');
  return true;
}

/** The daemons to ask: the URLs given, or every daemon of every host of a lab (asked from inside its namespace). */
export function daemonRefs(a: Where): DaemonRef[] {
  if (a.url?.length) return a.url.map((u) => ({ url: statusUrl(u), get: httpGet }));
  const lab = readLabState(a['lab-dir']!);
  return lab.hosts.flatMap((h) => labStatusUrls(lab, h).map((url) => ({ url, get: netnsGet(h.ns) })));
}

async function status(a: Where & { json: boolean }): Promise<number> {
  if (a.url?.length) {
    const results = await Promise.all(daemonRefs(a).map((r) => queryStatus(r, a['timeout-ms'])));
    process.stdout.write(a.json ? `${JSON.stringify(results, null, 2)}\n` : `${formatReport(results)}\n`);
    return allReady(results) ? 0 : 1;
  }
  const lab = readLabState(a['lab-dir']!);
  const hosts: Array<{ host: string; results: QueryResult[] }> = [];
  for (const h of lab.hosts) {
    const refs = labStatusUrls(lab, h).map((url) => ({ url, get: netnsGet(h.ns) }));
    hosts.push({ host: h.name, results: await Promise.all(refs.map((r) => queryStatus(r, a['timeout-ms']))) });
  }
  if (a.json) process.stdout.write(`${JSON.stringify(hosts, null, 2)}\n`);
  else process.stdout.write(hosts.map((h) => `== ${h.host} ==\n${formatReport(h.results)}\n`).join('\n'));
  return hosts.every((h) => allReady(h.results)) ? 0 : 1;
}

/** Exit 0: allowed; 1: denied; 2: the question could not be answered. */
async function explainCommand(
  a: Where & { json: boolean; src: string; dst: string; protocol: string; port: number | undefined; family: number | undefined },
): Promise<number> {
  const session = new ExplainSession(daemonRefs(a), a['timeout-ms']);
  const family = a.family === 4 || a.family === 6 ? a.family : undefined;
  const x = explain(await session.inputs({ src: a.src, dst: a.dst, packet: { protocol: a.protocol, port: a.port ?? null }, ...(family ? { family } : {}) }));
  if ('error' in x) throw new ExplainError(x.error);
  process.stdout.write(a.json ? `${JSON.stringify(x, null, 2)}\n` : `${formatExplanation(x)}\n`);
  return x.verdict === 'ALLOW' ? 0 : 1;
}

let result: Promise<number> = Promise.resolve(0);
commandLine(
  'calico-status',
  '$0 --url URL [--url URL…] | --lab-dir DIR [--json]\n$0 explain SRC DST [--protocol tcp|udp|icmp|N] [--port P] (--url URL… | --lab-dir DIR)',
)
  .command(
    '$0',
    "each daemon's connections, readiness and endpoints",
    (y) => y.options(whereOptions).check(checkWhere),
    (a) => {
      result = status(a);
    },
  )
  .command(
    'explain <src> <dst>',
    'why a new connection from SRC to DST (container addresses or endpoint ids) is allowed or denied, hop by hop; exit 0 allowed, 1 denied',
    (y) =>
      y
        .positional('src', { type: 'string', demandOption: true })
        .positional('dst', { type: 'string', demandOption: true })
        .options({
          ...whereOptions,
          protocol: { type: 'string', default: 'icmp', describe: 'tcp, udp, icmp (an echo request, as ping) or a protocol number or name' },
          port: { type: 'number', describe: 'destination port (tcp, udp)' },
          family: { type: 'number', describe: 'when SRC and DST are ids of dual-stack endpoints: which family (default 4)' },
        })
        .check((a) => {
          if (a.port !== undefined && !(Number.isInteger(a.port) && a.port >= 0 && a.port <= 65535)) throw new Error('--port must be 0..65535');
          if (a.family !== undefined && a.family !== 4 && a.family !== 6) throw new Error('--family must be 4 or 6');
          return checkWhere(a);
        }),
    (a) => {
      result = explainCommand({ ...a, src: a.src, dst: a.dst });
    },
  )
  .parseSync();

result.then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`calico-status: ${errorMessage(err)}\n`);
    process.exit(err instanceof ExplainError ? 2 : 1);
  },
);
