/**
 * The three measurements of bench/datapath, each from container b to container
 * a of one host: flood-ping RTT, iperf3 TCP throughput, new TCP connections per
 * second (connect-rate.js). Servers run in a for the one measurement only.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import type { Netns } from '../../test/support/netns.js';
import type { Host } from './hosts.js';

const CONNECT_RATE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'connect-rate.js');
const PING_COUNT = 20000;
const IPERF_PORT = 5201;
const CONNECT_PORT = 7000;
const CONNECT_PARALLEL = 8;

/** Waits until something listens on TCP `port` inside `ns`. */
async function listening(ns: Netns, port: number): Promise<void> {
  for (const started = Date.now(); Date.now() - started < 10_000; await new Promise((r) => setTimeout(r, 50))) {
    if ((await ns.run('ss', ['-Hltn', `sport = :${port}`])).trim()) return;
  }
  throw new Error(`[${ns.name}] nothing listens on ${port} after 10 s`);
}

/** Runs `args` in a's namespace while `measure` runs; stops it afterwards. */
async function withServer<T>(h: Host, args: string[], port: number, measure: () => Promise<T>): Promise<T> {
  const server = execa('ip', ['netns', 'exec', h.a.ns.name, ...args], { reject: false });
  try {
    await listening(h.a.ns, port);
    return await measure();
  } finally {
    server.kill('SIGKILL');
    await server;
  }
}

/** Average RTT of a bounded flood ping, in µs. */
export async function rttMicros(h: Host): Promise<number> {
  const out = await h.b.ns.run('ping', ['-f', '-q', '-c', String(PING_COUNT), '-w', '60', h.a.ip], { timeoutMs: 70_000 });
  const [, sent, received] = /(\d+) packets transmitted, (\d+) received/.exec(out) ?? [];
  const avg = /= [\d.]+\/([\d.]+)\//.exec(out)?.[1];
  if (!avg || Number(received) < 0.99 * Number(sent)) throw new Error(`${h.label}: flood ping lost over 1% or printed no RTT: ${out.trim()}`);
  return Number(avg) * 1000;
}

/** TCP throughput b → a over `seconds` (iperf3, receiver side), in Gbit/s. */
export async function tcpGbits(h: Host, seconds: number): Promise<number> {
  return withServer(h, ['iperf3', '-s', '-1', '-B', h.a.ip, '-p', String(IPERF_PORT)], IPERF_PORT, async () => {
    const out = await h.b.ns.run('iperf3', ['-c', h.a.ip, '-p', String(IPERF_PORT), '-t', String(seconds), '-J'], { timeoutMs: (seconds + 30) * 1000 });
    return (JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second / 1e9;
  });
}

/** New TCP connections per second b → a over `seconds`, a few in parallel. */
export async function connPerSecond(h: Host, seconds: number): Promise<number> {
  const server = [process.execPath, CONNECT_RATE, 'server', h.a.ip, String(CONNECT_PORT), String(seconds + 60)];
  return withServer(h, server, CONNECT_PORT, async () => {
    const r = await h.b.ns.exec(process.execPath, [CONNECT_RATE, 'client', h.a.ip, String(CONNECT_PORT), String(seconds), String(CONNECT_PARALLEL)], {
      timeoutMs: (seconds + 30) * 1000,
    });
    const result = JSON.parse(r.stdout || '{}') as { perSecond?: number; errors?: number; lastError?: string };
    if (r.code !== 0 || result.perSecond === undefined)
      throw new Error(`${h.label}: connect-rate client failed (${result.errors ?? '?'} errors, last: ${result.lastError ?? r.stderr.trim()})`);
    return result.perSecond;
  });
}
