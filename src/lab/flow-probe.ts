/**
 * One real packet flow between two lab containers, for `calico-lab explain`
 * (issue #16): does the kernel let a new connection of this protocol and
 * port through? ICMP is a ping; TCP a connect to a listener started for the
 * probe (or the lab's own on 7000); UDP a datagram with a unique token that
 * a listener must receive. Everything runs in the containers' namespaces and
 * is bounded in time.
 */
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import { waitFor } from '../common/poll.js';
import type { PacketSpec } from '../status/explain.js';
import type { LabContainer } from './state.js';

/** The TCP port every lab container listens on (Lab.addContainer). */
export const LAB_TCP_PORT = 7000;

const inNs = (ns: string, cmd: string, args: string[], timeoutMs: number, input?: string) =>
  execa('ip', ['netns', 'exec', ns, cmd, ...args], { reject: false, timeout: timeoutMs, ...(input !== undefined ? { input } : {}) });

/** Whether `check` comes true within `ms`. */
const within = (what: string, check: () => boolean | Promise<boolean>, ms: number): Promise<boolean> =>
  waitFor(what, check, ms, 25).then(
    () => true,
    () => false,
  );

/** Waits (bounded) until something in `ns` listens on `port`. */
function listening(ns: string, proto: 'tcp' | 'udp', port: number): Promise<boolean> {
  return within(
    'listener',
    async () => (await inNs(ns, 'ss', ['-H', proto === 'tcp' ? '-ltn' : '-lun', 'sport', '=', `:${port}`], 2000)).stdout.trim() !== '',
    2000,
  );
}

/**
 * Whether a new flow from `from` to `toIp` (in `to`) gets through; null for a
 * protocol this cannot send (only tcp, udp and icmp are probed).
 */
export async function probeFlow(from: LabContainer, to: LabContainer, toIp: string, packet: PacketSpec): Promise<boolean | null> {
  const proto = packet.protocol.toLowerCase();
  if (proto === 'icmp' || proto === 'icmpv6' || proto === 'ipv6-icmp') return (await inNs(from.ns, 'ping', ['-c', '1', '-W', '1', toIp], 5000)).exitCode === 0;
  if ((proto !== 'tcp' && proto !== 'udp') || packet.port === null) return null;
  const port = packet.port;
  if (proto === 'tcp' && port === LAB_TCP_PORT) return (await inNs(from.ns, 'nc', ['-z', '-w', '1', toIp, String(port)], 5000)).exitCode === 0;
  // An IPv6 socket takes IPv4 too.
  const listener = execa('ip', ['netns', 'exec', to.ns, 'nc', '-6', ...(proto === 'udp' ? ['-u'] : []), '-l', String(port)], { reject: false, timeout: 10000 });
  try {
    if (!(await listening(to.ns, proto, port))) throw new Error(`no ${proto} listener on port ${port} in ${to.ns} (port in use?)`);
    if (proto === 'tcp') return (await inNs(from.ns, 'nc', ['-z', '-w', '1', toIp, String(port)], 5000)).exitCode === 0;
    const token = randomBytes(8).toString('hex');
    let received = '';
    listener.stdout.on('data', (d: Buffer) => (received += d.toString()));
    await inNs(from.ns, 'nc', ['-u', '-w', '1', toIp, String(port)], 5000, `${token}\n`);
    return await within('datagram', () => received.includes(token), 1000);
  } finally {
    listener.kill('SIGKILL');
    await listener;
  }
}
