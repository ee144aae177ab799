/**
 * Asking daemons over their metrics address: `/status` for `calico-status`,
 * and the `/status/NAME` documents `explain` needs (src/common/status-api.ts).
 * A lab's daemons listen on 127.0.0.1 inside its host namespaces, so a GET
 * can also run there ({@link netnsGet}).
 */
import { execa } from 'execa';
import type { DaemonStatus } from '../common/metrics.js';
import type { QueryResult } from './format.js';

/** An HTTP answer; code 0 when there was none (`text` says why). */
export interface HttpAnswer {
  code: number;
  text: string;
}

export type HttpGet = (url: string, timeoutMs: number) => Promise<HttpAnswer>;

/** A GET from this process; never throws. */
export const httpGet: HttpGet = async (url, timeoutMs) => {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    return { code: res.status, text: await res.text() };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    return { code: 0, text: e.cause?.code ?? e.message };
  }
};

/** An HTTP/1.x response as text → status code and body; null if it is not one. */
export function parseHttpResponse(raw: string): HttpAnswer | null {
  const m = /^HTTP\/1\.[01] (\d{3})[^\r\n]*\r?\n/.exec(raw);
  const end = raw.indexOf('\r\n\r\n');
  if (!m || end < 0) return null;
  return { code: Number(m[1]), text: raw.slice(end + 4) };
}

/**
 * A GET made inside network namespace `ns`: HTTP/1.0 through `nc` (a few
 * milliseconds; the daemons close the connection after answering).
 */
export function netnsGet(ns: string): HttpGet {
  return async (url, timeoutMs) => {
    const u = new URL(url);
    const request = `GET ${u.pathname}${u.search} HTTP/1.0\r\nHost: ${u.host}\r\n\r\n`;
    const wait = String(Math.max(1, Math.ceil(timeoutMs / 1000)));
    const r = await execa('ip', ['netns', 'exec', ns, 'nc', '-w', wait, u.hostname, u.port || '80'], {
      input: request,
      reject: false,
      timeout: timeoutMs + 2000,
      stripFinalNewline: false,
    });
    return parseHttpResponse(r.stdout) ?? { code: 0, text: `no answer from ${u.host} in ${ns}${r.stderr.trim() ? `: ${r.stderr.trim()}` : ''}` };
  };
}

/** A daemon to ask: its /status URL, and how to reach it. */
export interface DaemonRef {
  url: string;
  get: HttpGet;
}

/** Its /status document, or why there is none. */
export async function queryStatus(ref: DaemonRef, timeoutMs: number): Promise<QueryResult> {
  const r = await ref.get(ref.url, timeoutMs);
  if (r.code === 0) return { url: ref.url, error: r.text };
  if (r.code !== 200) return { url: ref.url, error: `HTTP ${r.code}` };
  try {
    const status: unknown = JSON.parse(r.text);
    if (typeof status === 'object' && status !== null && 'component' in status && typeof status.component === 'string')
      return { url: ref.url, status: status as DaemonStatus };
  } catch {
    /* below */
  }
  return { url: ref.url, error: 'not a calico /status document' };
}

/** `/status/NAME?query` of a daemon: its document, null on 404 (nothing by that key); throws on anything else. */
export async function queryView<T>(ref: DaemonRef, name: string, query: Record<string, string>, timeoutMs: number): Promise<T | null> {
  const url = new URL(ref.url);
  url.pathname = `/status/${name}`;
  url.search = new URLSearchParams(query).toString();
  const r = await ref.get(url.toString(), timeoutMs);
  if (r.code === 404) return null;
  if (r.code !== 200) throw new Error(`${url.toString()}: ${r.code === 0 ? r.text : `HTTP ${r.code}: ${r.text.trim()}`}`);
  return JSON.parse(r.text) as T;
}
