/**
 * `calico-status` output: the /status documents of some daemons turned into
 * readable tables (pure; the command fetches, this formats).
 */
import type { DaemonStatus } from '../common/metrics.js';

/** One daemon asked: its document, or why there is none. */
export interface QueryResult {
  url: string;
  status?: DaemonStatus;
  error?: string;
}

/** `http://host:port` alone means its /status. */
export function statusUrl(url: string): string {
  const u = new URL(url);
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/status';
  return u.toString();
}

/** Every daemon answered and is ready. */
export function allReady(results: QueryResult[]): boolean {
  return results.length > 0 && results.every((r) => r.status?.ready === true);
}

/** `0.4s`, `12s`, `5m03s`, `2h05m`, `3d04h`; null → `never`. */
export function formatAge(seconds: number | null): string {
  if (seconds === null) return 'never';
  if (seconds < 10) return `${seconds.toFixed(1)}s`;
  const s = Math.floor(seconds);
  if (s < 60) return `${s}s`;
  const pad = (n: number) => String(n).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${pad(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86400)}d${pad(Math.floor(s / 3600) % 24)}h`;
}

/** Columns padded to their widest cell, two spaces apart, no trailing blanks. */
export function table(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}

const yesNo = (b: boolean) => (b ? 'yes' : 'no');

/** `in/out` packets denied (issue #16); `-` when Felix could not read them (or predates them). */
const denied = (e: NonNullable<DaemonStatus['endpoints']>[number]): string =>
  e.deniedPackets ? `${e.deniedPackets.inbound}/${e.deniedPackets.outbound}` : '-';

function endpointState(e: NonNullable<DaemonStatus['endpoints']>[number]): string {
  if (e.error !== null) return `FAILED: ${e.error}`;
  if (e.programmed) return e.aclAgeSeconds === null ? 'programmed (denied: no ACLs yet)' : 'programmed';
  if (e.enabled && !e.interfaceUp) return 'waiting for interface';
  return 'pending';
}

/** Felix's kernel tables, a row each: entries, limit and share, what the count covers. */
function kernelTableRows(tables: NonNullable<DaemonStatus['kernelTables']>): string[] {
  const rows = [['kernel table', 'entries', 'limit', 'counted in']];
  for (const t of tables) {
    const limit =
      t.limit === null ? 'limit not visible from a network namespace' : t.limit === 0 ? 'none (0)' : `${t.limit} (${Math.floor((t.entries * 100) / t.limit)}%)`;
    rows.push([t.table, String(t.entries), limit, t.scope === 'kernel' ? 'all namespaces' : 'this namespace']);
  }
  return table(rows);
}

/** The block for one daemon: a heading line, its connections, facts, (Felix) kernel tables, warnings and endpoints. */
export function formatResult(r: QueryResult): string[] {
  const s = r.status;
  if (!s) return [`${r.url}  UNREACHABLE: ${r.error ?? 'no answer'}`];
  const readiness = s.ready ? 'ready' : `NOT READY (waiting for ${s.waitingFor.join(', ')})`;
  const lines = [`${s.component}  ${r.url}  ${readiness}  version ${s.version}  pid ${s.pid}  up ${formatAge(s.uptimeSeconds)}`];
  if (s.connections.length) {
    const rows = [['connection', 'api', 'socket', 'address', 'received', 'last message', 'resets']];
    for (const c of s.connections)
      rows.push([
        c.name,
        c.api,
        c.kind,
        c.address,
        String(c.received),
        c.lastMessageAgeSeconds === null ? 'never' : `${formatAge(c.lastMessageAgeSeconds)} ago`,
        String(c.resets),
      ]);
    lines.push(...table(rows).map((l) => `  ${l}`));
  }
  const facts = Object.entries(s.facts);
  if (facts.length) lines.push(`  ${facts.map(([k, v]) => `${k} ${v}`).join('  ')}`);
  if (s.kernelTables?.length) lines.push(...kernelTableRows(s.kernelTables).map((l) => `  ${l}`));
  for (const w of s.warnings ?? []) lines.push(`  WARNING: ${w}`);
  if (s.endpoints) {
    if (s.endpoints.length === 0) lines.push('  no endpoints');
    else {
      const rows = [['endpoint', 'interface', 'addresses', 'enabled', 'iface up', 'routes', 'chains', 'ACLs', 'denied in/out', 'state']];
      for (const e of s.endpoints)
        rows.push([
          e.id,
          e.ifname,
          e.addrs.join(',') || '-',
          yesNo(e.enabled),
          yesNo(e.interfaceUp),
          yesNo(e.routesProgrammed),
          yesNo(e.chainsProgrammed),
          e.aclAgeSeconds === null ? 'none' : `${formatAge(e.aclAgeSeconds)} ago`,
          denied(e),
          endpointState(e),
        ]);
      lines.push(...table(rows).map((l) => `  ${l}`));
    }
  }
  return lines;
}

/** Every daemon's block, a blank line between them. */
export function formatReport(results: QueryResult[]): string {
  return results.map((r) => formatResult(r).join('\n')).join('\n\n');
}
