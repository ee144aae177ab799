#!/usr/bin/env node
/**
 * `calico-lab up|down|status|add-container|remove-container|demo` (SPEC §9).
 */
import { commandLine } from '../common/cli.js';
import { canonicalEndpointIp } from '../plugin/data.js';
import { Lab } from './lab.js';
import { runDemo } from './demo.js';
import { formatMatrix, measureMatrix } from './matrix.js';
import { ExplainError } from '../status/explain-session.js';
import { agrees, explainInLab, formatLabExplanation, labExplainSession } from './explain.js';
import { errorMessage } from '../common/errors.js';

const say = (line: string) => process.stdout.write(`${line}\n`);
const curveOption = { curve: { type: 'boolean' as const, default: false, describe: 'CurveZMQ on every socket, key pairs in DIR/keys' } };
const dirOption = { dir: { type: 'string' as const, default: '/tmp/calico-lab', describe: 'folder for the lab’s configs, data and logs' } };

/** Ctrl-C during `up` or `demo` removes whatever the lab made so far. */
function downOnInterrupt(dir: string): void {
  const handler = (signal: string) => {
    say(`${signal}: removing the lab`);
    let lab: Lab | undefined;
    try {
      lab = Lab.load(dir);
    } catch {
      process.exit(130);
    }
    void lab.down().finally(() => process.exit(130));
  };
  process.once('SIGINT', () => handler('SIGINT'));
  process.once('SIGTERM', () => handler('SIGTERM'));
}

async function main(): Promise<number> {
  let result: Promise<number> = Promise.resolve(0);
  commandLine('calico-lab', '$0 <command> [options]')
    .command(
      'up',
      'build the hosts and start every component',
      (y) => y.options({ ...dirOption, ...curveOption, hosts: { type: 'number', default: 2 } }),
      (a) => {
        downOnInterrupt(a.dir);
        result = Lab.up({ dir: a.dir, hosts: a.hosts, curve: a.curve, say }).then(() => {
          say(`lab up in ${a.dir}; logs in ${a.dir}/logs`);
          return 0;
        });
      },
    )
    .command(
      'down',
      'stop everything and remove the namespaces',
      (y) => y.options(dirOption),
      (a) => {
        result = Lab.load(a.dir)
          .down()
          .then(() => 0);
      },
    )
    .command(
      'status',
      'processes, daemon status (calico-status), routes, BGP sessions, connectivity',
      (y) => y.options(dirOption),
      (a) => {
        result = (async () => {
          const lab = Lab.load(a.dir);
          let code = 0;
          for (const p of lab.processes()) say(`${p.alive ? 'running' : 'DEAD   '} ${p.name} (pid ${p.pid})`);
          for (const h of lab.hosts) {
            const status = await lab.calicoStatus(h);
            if (status.code !== 0) code = 1;
            say(`\n${h.name} (${h.ns}) calico-status:\n${(status.stdout || status.stderr).trimEnd().replace(/^/gm, '  ')}`);
            say(`${h.name} (${h.ns}, ${h.ip}) routes:\n${(await lab.routes(h)).replace(/^/gm, '  ')}`);
            say(`${h.name} (${h.ns}, ${h.ip6}) IPv6 routes:\n${(await lab.routes(h, 6)).replace(/^/gm, '  ')}`);
            say(`${h.name} BGP:\n${(await lab.birdc(h, 'show', 'protocols').catch((e: unknown) => errorMessage(e))).replace(/^/gm, '  ')}`);
          }
          if (lab.containers.length > 1) say(`\nconnectivity (pairs sharing an address family):\n${formatMatrix(await measureMatrix(lab))}`);
          return code;
        })();
      },
    )
    .command(
      'add-container <ip> <group>',
      'network a new container namespace (ip: an address, or IPv4,IPv6 for dual stack)',
      (y) =>
        y
          .options({ ...dirOption, host: { type: 'string', default: 'instance-1' } })
          .positional('ip', { type: 'string' })
          .positional('group', { type: 'string' }),
      (a) => {
        const ip = canonicalEndpointIp(String(a.ip));
        result = Lab.load(a.dir)
          .addContainer(ip, String(a.group), a.host)
          .then((c) => {
            say(`container ${c.ip} (${c.group}) on ${c.host}: namespace ${c.ns}, endpoint ${c.id}`);
            return 0;
          });
      },
    )
    .command(
      'remove-container <ip>',
      'remove a container and its data (ip: either address of a dual-stack one, or both)',
      (y) => y.options(dirOption).positional('ip', { type: 'string' }),
      (a) => {
        const ip = canonicalEndpointIp(String(a.ip));
        result = Lab.load(a.dir)
          .removeContainer(ip)
          .then(() => 0);
      },
    )
    .command(
      'explain <src> <dst>',
      'calico-status explain for two containers, then a real probe: does the kernel agree? (exit 0 yes, 1 no, 2 unanswerable)',
      (y) =>
        y
          .options({
            ...dirOption,
            protocol: { type: 'string', default: 'icmp', describe: 'tcp, udp, icmp (a ping) or a protocol number or name (not probed)' },
            port: { type: 'number', describe: 'destination port (tcp, udp)' },
            family: { type: 'number', describe: 'for the ids of two dual-stack containers: which family (default 4)' },
            json: { type: 'boolean', default: false, describe: 'the explanation and the probe as JSON' },
          })
          .positional('src', { type: 'string', demandOption: true, describe: 'container address or endpoint id' })
          .positional('dst', { type: 'string', demandOption: true, describe: 'container address or endpoint id' })
          .check((a) => {
            if (a.family !== undefined && a.family !== 4 && a.family !== 6) throw new Error('--family must be 4 or 6');
            return true;
          }),
      (a) => {
        const lab = Lab.load(a.dir);
        const family = a.family === 4 || a.family === 6 ? a.family : undefined;
        result = explainInLab(lab, labExplainSession(lab), {
          src: a.src,
          dst: a.dst,
          packet: { protocol: a.protocol, port: a.port ?? null },
          ...(family ? { family } : {}),
        }).then(
          (r) => {
            say(a.json ? JSON.stringify({ ...r, agrees: agrees(r) }, null, 2) : formatLabExplanation(r));
            return agrees(r) === false ? 1 : 0;
          },
          (err: unknown) => {
            if (!(err instanceof ExplainError)) throw err;
            process.stderr.write(`calico-lab: ${err.message}\n`);
            return 2;
          },
        );
      },
    )
    .command(
      'demo',
      'the seed’s two-host demo, checked and timed',
      (y) => y.options({ ...dirOption, ...curveOption, keep: { type: 'boolean', default: false, describe: 'leave the lab running' } }),
      (a) => {
        downOnInterrupt(a.dir);
        result = runDemo({ dir: a.dir, keep: a.keep, curve: a.curve, say }).then((ok) => (ok ? 0 : 1));
      },
    )
    .demandCommand(1, 'name a command')
    .parseSync();
  return result;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`calico-lab: ${errorMessage(err)}\n`);
    process.exit(1);
  },
);
