#!/usr/bin/env node
/**
 * `calico-status --url URL… | --lab-dir DIR [--json]`: asks daemons for
 * their /status and prints a table per component (connections; Felix's
 * endpoints with what is programmed and the age of their ACLs). Exits 1 if
 * a daemon is unreachable or not ready.
 *
 * A lab's daemons listen inside its host namespaces, so with `--lab-dir`
 * this command runs itself once per host through `ip netns exec`.
 */
import { commandLine } from '../common/cli.js';
import type { DaemonStatus } from '../common/metrics.js';
import { Lab } from '../lab/lab.js';
import { QueryResult, allReady, formatReport, statusUrl } from './format.js';

async function query(url: string, timeoutMs: number): Promise<QueryResult> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) return { url, error: `HTTP ${res.status}` };
    const status = (await res.json()) as DaemonStatus;
    if (typeof status !== 'object' || status === null || typeof status.component !== 'string') return { url, error: 'not a calico /status document' };
    return { url, status };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    return { url, error: e.cause?.code ?? e.message };
  }
}

const argv = commandLine('calico-status', '$0 --url URL [--url URL…] | --lab-dir DIR [--json]')
  .options({
    url: { type: 'string', array: true, describe: "a daemon's metrics address (http://127.0.0.1:9091) or its /status URL; repeatable" },
    'lab-dir': { type: 'string', describe: "a lab's folder: ask every daemon of every host" },
    json: { type: 'boolean', default: false, describe: 'print the /status documents as JSON' },
    'timeout-ms': { type: 'number', default: 3000, describe: 'per daemon' },
  })
  .check((a) => {
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
  })
  .parseSync();

async function main(): Promise<number> {
  if (argv.url?.length) {
    const results = await Promise.all(argv.url.map((u) => query(statusUrl(u), argv['timeout-ms'])));
    process.stdout.write(argv.json ? `${JSON.stringify(results, null, 2)}\n` : `${formatReport(results)}\n`);
    return allReady(results) ? 0 : 1;
  }
  const lab = Lab.load(argv['lab-dir']!);
  const hosts: Array<{ host: string; results: QueryResult[] }> = [];
  for (const h of lab.hosts) {
    const r = await lab.calicoStatus(h, '--json', '--timeout-ms', String(argv['timeout-ms']));
    let results: QueryResult[];
    try {
      results = JSON.parse(r.stdout) as QueryResult[];
    } catch {
      results = lab.statusUrls(h).map((url) => ({ url, error: `calico-status in ${h.ns} failed: ${r.stderr.trim() || `exit ${r.code}`}` }));
    }
    hosts.push({ host: h.name, results });
  }
  if (argv.json) process.stdout.write(`${JSON.stringify(hosts, null, 2)}\n`);
  else process.stdout.write(hosts.map((h) => `== ${h.host} ==\n${formatReport(h.results)}\n`).join('\n'));
  return hosts.every((h) => allReady(h.results)) ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`calico-status: ${err.message}\n`);
    process.exit(1);
  },
);
