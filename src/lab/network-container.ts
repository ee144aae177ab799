#!/usr/bin/env node
/**
 * `network-container [--netns NAME] [--data-dir DIR] [--hostname NAME] CID IP GROUP`
 * (SPEC §8): the prototype's networking script. A veth pair with
 * `tap<S>` (S: CID[:11], or a hash for ids with other characters; SPEC §3)
 * in the current (host) namespace and `eth0` in the container's namespace:
 * IPv4 `IP/32` and `default dev eth0` (the host answers ARP by proxy), IPv6
 * `IP/128` and `default via fe80::1 dev eth0` (Felix puts fe80::1 on the
 * tap; SPEC §6). IP may be an IPv4,IPv6 pair: a dual-stack container gets
 * both. Then the endpoint's section for the plugin, written atomically. On
 * failure nothing half-made is left behind.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { commandLine } from '../common/cli.js';
import { writeFileAtomic } from '../common/files.js';
import { ipFamily } from '../common/wire/codec.js';
import { defaultInterfaceName } from '../common/endpoint-names.js';
import { canonicalEndpointIp, endpointKey, formatEndpointSection, unwritable } from '../plugin/data.js';
// The containers' IPv6 gateway: the link-local address Felix gives every endpoint interface (SPEC §6).
import { IPV6_GATEWAY } from '../felix/dataplane/routes.js';
import { errorMessage } from '../common/errors.js';

const argv = commandLine('network-container', '$0 [--netns NAME] [--data-dir DIR] [--hostname NAME] CID IP GROUP')
  .command('$0 <cid> <ip> <group>', 'network a container and tell the plugin about it')
  .positional('cid', { type: 'string', describe: 'docker container id, or with --netns the endpoint id' })
  .positional('ip', { type: 'string', describe: 'the address to give it, or an IPv4,IPv6 pair (dual stack)' })
  .positional('group', { type: 'string', describe: 'its security group' })
  .options({
    netns: { type: 'string', describe: 'a named network namespace instead of a docker container' },
    'data-dir': { type: 'string', default: '/opt/plugin/data', describe: "where the endpoint's section is written" },
    hostname: { type: 'string', default: os.hostname(), describe: 'the host the endpoint lives on' },
  })
  .check((a) => {
    // Every value written into the data file is checked, so none can inject a line; quoted with
    // JSON.stringify so that the refusal stays one line whatever the value holds.
    const refuse = (what: string, v: unknown, why: string | null) => {
      if (why) throw new Error(`bad ${what} ${JSON.stringify(String(v))}: ${why}`);
    };
    refuse('container id', a.cid, unwritable('id', String(a.cid)));
    refuse('IP address', a.ip, unwritable('ip', String(a.ip)));
    refuse('group name', a.group, unwritable('group', String(a.group)));
    refuse('--hostname', a.hostname, unwritable('host', a.hostname));
    return true;
  })
  .parseSync();

const cid = String(argv.cid);
/** The `ip=` value: canonical, IPv4 first. */
const ip = canonicalEndpointIp(String(argv.ip));
const group = String(argv.group);
const tap = defaultInterfaceName('tap', cid);

async function ip_(...args: string[]): Promise<string> {
  return (await execa('ip', args)).stdout;
}

/** The container's network namespace, as something `ip link set netns` and `ip -n`/nsenter accept. */
async function containerNamespace(): Promise<{ moveTo: string; exec: string[] }> {
  if (argv.netns) {
    if (!fs.existsSync(path.join('/run/netns', argv.netns))) throw new Error(`network namespace '${argv.netns}' not found`);
    return { moveTo: argv.netns, exec: ['ip', 'netns', 'exec', argv.netns] };
  }
  let pid: string;
  try {
    pid = (await execa('docker', ['inspect', '-f', '{{.State.Pid}}', cid])).stdout.trim();
  } catch (err) {
    throw new Error(`container '${cid}' not found (docker inspect: ${((err as { stderr?: string }).stderr ?? (err as Error).message).trim().split('\n')[0]})`);
  }
  if (!/^[1-9]\d*$/.test(pid)) throw new Error(`container '${cid}' is not running`);
  return { moveTo: pid, exec: ['nsenter', '-t', pid, '-n'] };
}

async function main(): Promise<void> {
  const ns = await containerNamespace();
  if (fs.existsSync(`/sys/class/net/${tap}`)) throw new Error(`interface ${tap} already exists`);
  // The peer gets a temporary name unique to this run: eth0 may exist in the host namespace.
  const peer = `nc${process.pid.toString(36)}`.slice(0, 15);
  const inContainer = (...args: string[]) => execa(ns.exec[0]!, [...ns.exec.slice(1), ...args]);
  const dataFile = path.join(argv['data-dir'], `${endpointKey(ip)}.txt`);
  try {
    await ip_('link', 'add', tap, 'type', 'veth', 'peer', 'name', peer);
    await ip_('link', 'set', peer, 'netns', ns.moveTo);
    await inContainer('ip', 'link', 'set', peer, 'name', 'eth0');
    await inContainer('ip', 'link', 'set', 'lo', 'up');
    await inContainer('ip', 'link', 'set', 'eth0', 'up');
    for (const addr of ip.split(',')) {
      if (ipFamily(addr) === 4) {
        await inContainer('ip', 'addr', 'add', `${addr}/32`, 'dev', 'eth0');
        await inContainer('ip', 'route', 'add', 'default', 'dev', 'eth0');
      } else {
        // Docker switches IPv6 off in containers without an IPv6 network; this one is getting one.
        await inContainer('sysctl', '-q', '-w', 'net.ipv6.conf.eth0.disable_ipv6=0');
        // No duplicate address detection: the address is this container's alone (Felix refuses a duplicate), and usable at once.
        await inContainer('ip', '-6', 'addr', 'add', `${addr}/128`, 'dev', 'eth0', 'nodad');
        await inContainer('ip', '-6', 'route', 'add', 'default', 'via', IPV6_GATEWAY.addr, 'dev', 'eth0');
      }
    }
    await ip_('link', 'set', tap, 'up');
    const mac = (await inContainer('cat', '/sys/class/net/eth0/address')).stdout.trim();
    const section = formatEndpointSection({ id: cid, ip, mac, host: argv.hostname, group });
    fs.mkdirSync(argv['data-dir'], { recursive: true });
    writeFileAtomic(dataFile, section);
    process.stdout.write(`networked ${cid}: ${tap} <-> eth0 ${ip} mac ${mac} group ${group}; wrote ${dataFile}\n`);
  } catch (err) {
    // Deleting either end removes the pair, wherever the peer is by now.
    await execa('ip', ['link', 'del', tap], { reject: false });
    const stderr = (err as { stderr?: string }).stderr;
    throw new Error(stderr ? `${(err as { command?: string }).command}: ${stderr.trim().split('\n')[0]}` : (err as Error).message);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`network-container: ${errorMessage(err)}\n`);
  process.exit(1);
});
