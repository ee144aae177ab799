/**
 * Times how a newly networked container converges: from the start of
 * network-container, when Felix heard of it, when its route appeared on its
 * host (Felix) and on the other host (BIRD), and the first pings to its
 * group on the same host and across hosts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { waitFor } from '../common/poll.js';
import { ipFamily } from '../common/wire/codec.js';
import { Lab, LabContainer } from './lab.js';

export interface ConvergenceStep {
  what: string;
  /** Milliseconds from the start of network-container. */
  ms: number;
}

/** When Felix logged the endpoint's creation (pino JSON `time`) after `since`, if it did. */
function felixHeardAt(lab: Lab, host: string, id: string, since: number): number | null {
  const file = path.join(lab.logDir, `felix-${host}.log`);
  if (!fs.existsSync(file)) return null;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.includes(id) || !line.includes('"endpoint created"')) continue;
    try {
      const { time } = JSON.parse(line) as { time: number };
      if (time >= since) return time;
    } catch {
      /* a torn last line */
    }
  }
  return null;
}

function routeSeen(lab: Lab, hostName: string, ip: string, kind: 'local' | 'bird'): Promise<unknown> {
  const h = lab.host(hostName);
  const pattern = kind === 'local' ? / dev tap/ : /proto bird/;
  return waitFor(
    `${kind} route to ${ip} on ${hostName}`,
    async () => (await lab.routes(h, ipFamily(ip))).split('\n').some((l) => l.startsWith(`${ip} `) && pattern.test(l)),
    20000,
    20,
  );
}

/**
 * Networks a container at `ip` (one address) in `group` on `host` and times
 * its convergence towards `sameHost` and `otherHost`, members of its group
 * with one address of the same family.
 */
export async function networkAndTime(
  lab: Lab,
  ip: string,
  group: string,
  host: string,
  sameHost: LabContainer,
  otherHost: LabContainer,
): Promise<{ container: LabContainer; steps: ConvergenceStep[] }> {
  const t0 = Date.now();
  const c = await lab.addContainer(ip, group, host);
  const networked = Date.now() - t0;
  const since = (p: Promise<unknown>) => p.then(() => Date.now() - t0);
  const ping = (from: LabContainer, to: LabContainer) => waitFor(`ping ${from.ip} -> ${to.ip}`, () => lab.ping(from, to.ip, 0.1), 20000, 0);
  const [local, remote, toSame, toOther, fromOther] = await Promise.all([
    since(routeSeen(lab, host, ip, 'local')),
    since(routeSeen(lab, otherHost.host, ip, 'bird')),
    since(ping(c, sameHost)),
    since(ping(c, otherHost)),
    since(ping(otherHost, c)),
  ]);
  const heard = felixHeardAt(lab, host, c.id, t0);
  const steps: ConvergenceStep[] = [
    { what: 'network-container done', ms: networked },
    ...(heard !== null ? [{ what: 'Felix told by the plugin', ms: heard - t0 }] : []),
    { what: `route on ${host} (Felix)`, ms: local },
    { what: `route on ${otherHost.host} (BIRD)`, ms: remote },
    { what: `first ping new -> ${sameHost.ip} (same host)`, ms: toSame },
    { what: `first ping new -> ${otherHost.ip} (across hosts)`, ms: toOther },
    { what: `first ping ${otherHost.ip} -> new (across hosts)`, ms: fromOther },
  ];
  return { container: c, steps };
}
