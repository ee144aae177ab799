/**
 * calico-bird-config against the real BIRD 2: every rendered config parses
 * (`bird -p`), the built command behaves as a CLI should, and two BIRDs in
 * namespaces of this test carry an endpoint's host route from one host to
 * the other and withdraw it again, IPv4 and IPv6 each over its own session.
 */
import { expect } from 'chai';
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { BirdConfigInput, renderBirdConfig } from '../../src/lab/bird-config.js';
import { runCommand, waitFor } from '../support/process.js';

const CLI = 'src/lab/bird-config-main.js';
const host = (n: number) => ({ host: `instance-${n}`, ip: `198.18.0.${n}` });
/** A host of the lab's dual-stack fabric: IPv4 and IPv6 (felix.txt `ip6=`) addresses. */
const dualHost = (n: number) => ({ ...host(n), ip6: `fd00:198:18::${n}` });

const CONFIGS: [string, BirdConfigInput][] = [
  ['2 hosts', { self: host(1), peers: [host(2)] }],
  ['3 hosts', { self: host(2), peers: [host(1), host(3)] }],
  ['a host alone', { self: host(1), peers: [] }],
  ['dual-stack hosts, default prefixes (a session per family and peer)', { self: dualHost(1), peers: [dualHost(2), dualHost(3)] }],
  ['IPv4 and IPv6 prefixes', { self: dualHost(1), peers: [dualHost(2)], prefixes: ['192.168.0.0/16', 'fd00:192:168::/64'] }],
  [
    'IPv6 only, custom AS, log file',
    { self: dualHost(1), peers: [dualHost(2)], asNumber: 65000, prefixes: ['fd00:192:168::/64'], logFile: '/var/log/bird/bird.log' },
  ],
  [
    'IPv6 hosts with a router id',
    { self: { host: 'a', ip: 'fd00:198:18::1' }, peers: [{ host: 'b', ip: 'fd00:198:18::2' }], prefixes: ['fd00:192:168::/64'], routerId: '198.18.0.1' },
  ],
  [
    'host names BIRD would not accept as symbols',
    {
      self: host(1),
      peers: [
        { host: 'web-2.example', ip: '198.18.0.2' },
        { host: 'web_2', ip: '198.18.0.3' },
      ],
    },
  ],
  ['a 4-byte AS', { self: host(1), peers: [host(2)], asNumber: 4200000000 }],
];

describe('calico-bird-config with BIRD 2', function () {
  this.timeout(30000);
  let dir: string;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'calico-bird-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  describe('bird -p accepts every rendered config', () => {
    for (const [name, input] of CONFIGS) {
      it(name, async () => {
        const file = path.join(dir, 'parse.conf');
        fs.writeFileSync(file, renderBirdConfig(input));
        const r = await execa('bird', ['-p', '-c', file], { reject: false });
        expect(r.exitCode, `${r.stderr}\n${fs.readFileSync(file, 'utf8')}`).to.equal(0);
      });
    }
  });

  describe('the built command', () => {
    let felixTxt: string;
    before(() => {
      felixTxt = path.join(dir, 'felix.txt');
      fs.writeFileSync(
        felixTxt,
        '[felix instance-1]\nip=198.18.0.1\nip6=fd00:198:18::1\nhost=instance-1\n\n[felix instance-2]\nip=198.18.0.2\nip6=fd00:198:18::2\nhost=instance-2.lab.example\n',
      );
    });

    it('writes a config for a host named with its domain, which BIRD accepts', async () => {
      const out = path.join(dir, 'cli.conf');
      const r = await runCommand(CLI, [
        '--felix-txt',
        felixTxt,
        '--host',
        'instance-2.other.example',
        '--as',
        '65001',
        '--prefix',
        '192.168.0.0/16',
        '--prefix',
        'fd00:192:168::/64',
        '--out',
        out,
      ]);
      expect(r.code, r.output).to.equal(0);
      const text = fs.readFileSync(out, 'utf8');
      expect(text).to.include('router id 198.18.0.2;').and.include('neighbor 198.18.0.1 as 65001;').and.not.include('neighbor 198.18.0.2');
      expect(text)
        .to.include('local fd00:198:18::2 as 65001;')
        .and.include('neighbor fd00:198:18::1 as 65001;')
        .and.include('define ENDPOINT_ROUTES_V6 = [ fd00:192:168::/64{128,128} ];');
      expect((await execa('bird', ['-p', '-c', out], { reject: false })).exitCode).to.equal(0);
      expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'))).to.deep.equal([]);
    });

    it('prints to stdout without --out; without --prefix, hosts with ip6= get both default ranges', async () => {
      const r = await runCommand(CLI, ['--felix-txt', felixTxt, '--host', 'instance-1']);
      expect(r.code).to.equal(0);
      expect(r.output)
        .to.match(/^# BIRD 2 configuration for instance-1 /)
        .and.include('neighbor 198.18.0.2 as 64511;')
        .and.include('neighbor fd00:198:18::2 as 64511;');
      expect(r.output)
        .to.include('define ENDPOINT_ROUTES_V4 = [ 192.168.0.0/16{32,32} ];')
        .and.include('define ENDPOINT_ROUTES_V6 = [ fd00:192:168::/48{128,128} ];');
    });

    it('exits 1 naming the host when an IPv6 prefix is given and a host has no ip6=', async () => {
      const v4Only = path.join(dir, 'felix-v4.txt');
      fs.writeFileSync(v4Only, '[felix instance-1]\nip=198.18.0.1\nip6=fd00:198:18::1\n\n[felix instance-2]\nip=198.18.0.2\n');
      const r = await runCommand(CLI, ['--felix-txt', v4Only, '--host', 'instance-1', '--prefix', 'fd00:192:168::/64']);
      expect(r.code).to.equal(1);
      expect(r.output.trim()).to.equal(
        `calico-bird-config: ${v4Only}: host 'instance-2' has no IPv6 address (ip6= in felix.txt) for the IPv6 container prefixes fd00:192:168::/64`,
      );
    });

    const failures: [string, string[], number, RegExp][] = [
      ['no --felix-txt', ['--host', 'instance-1'], 2, /Missing required argument: felix-txt/],
      ['a bad prefix', ['--felix-txt', 'FELIX', '--prefix', '192.168.0.0'], 2, /bad prefix '192\.168\.0\.0'/],
      ['a bad AS', ['--felix-txt', 'FELIX', '--as', '0'], 2, /bad AS number '0'/],
      ['an IPv6 router id', ['--felix-txt', 'FELIX', '--router-id', 'fd00::1'], 2, /bad router id 'fd00::1'/],
      ['an unknown option', ['--felix-txt', 'FELIX', '--bogus'], 2, /Unknown argument: bogus/],
      [
        'a host not in the list',
        ['--felix-txt', 'FELIX', '--host', 'instance-9'],
        1,
        /host 'instance-9' is not in the host list \(have instance-1, instance-2\)/,
      ],
      ['a missing file', ['--felix-txt', '/nonexistent/felix.txt', '--host', 'instance-1'], 1, /cannot read \/nonexistent\/felix\.txt: ENOENT/],
    ];
    for (const [name, args, code, message] of failures) {
      it(`exits ${code} with one line on ${name}`, async () => {
        const r = await runCommand(
          CLI,
          args.map((a) => (a === 'FELIX' ? felixTxt : a)),
        );
        expect(r.code).to.equal(code);
        expect(r.output.trim().split('\n')).to.have.length(1);
        expect(r.output)
          .to.match(/^calico-bird-config: /)
          .and.match(message);
      });
    }

    it('exits 1 naming file and line when a section is bad', async () => {
      const bad = path.join(dir, 'bad-felix.txt');
      fs.writeFileSync(bad, '[felix instance-1]\nip=198.18.0.1\n\n[felix instance-2]\nip=198.18.0.300\n');
      const r = await runCommand(CLI, ['--felix-txt', bad, '--host', 'instance-1']);
      expect(r.code).to.equal(1);
      expect(r.output.trim()).to.equal(`calico-bird-config: ${bad}:5: [felix] ip: not an IP address`);
    });
  });

  describe('two BIRDs on a fabric of namespaces', () => {
    const prefix = `cbc${process.pid.toString(36)}`;
    const ns = [`${prefix}-h1`, `${prefix}-h2`];
    const birds: ChildProcess[] = [];
    const inNs = (n: string, ...args: string[]) => execa('ip', ['netns', 'exec', n, ...args]);
    const routes = async (n: string, family: '-4' | '-6') => (await inNs(n, 'ip', family, 'route', 'show')).stdout;
    const birdc = async (i: number, ...args: string[]) => (await inNs(ns[i]!, 'birdc', '-s', path.join(dir, `mesh-${i + 1}.ctl`), ...args)).stdout;

    before(async function () {
      this.timeout(20000);
      for (const n of ns) {
        await execa('ip', ['netns', 'add', n]);
        await inNs(n, 'ip', 'link', 'set', 'lo', 'up');
      }
      await inNs(ns[0]!, 'ip', 'link', 'add', 'fab0', 'type', 'veth', 'peer', 'name', 'fab0', 'netns', ns[1]!);
      for (const [i, n] of ns.entries()) {
        await inNs(n, 'ip', 'addr', 'add', `198.18.0.${i + 1}/24`, 'dev', 'fab0');
        await inNs(n, 'ip', 'addr', 'add', `fd00:198:18::${i + 1}/64`, 'dev', 'fab0', 'nodad');
        await inNs(n, 'ip', 'link', 'set', 'fab0', 'up');
        const conf = path.join(dir, `mesh-${i + 1}.conf`);
        // The lab's configuration: both families by default, as the hosts have ip6.
        fs.writeFileSync(conf, renderBirdConfig({ self: dualHost(i + 1), peers: [dualHost(2 - i)] }));
        const bird = spawn('ip', ['netns', 'exec', n, 'bird', '-f', '-c', conf, '-s', path.join(dir, `mesh-${i + 1}.ctl`)], { stdio: 'ignore' });
        birds.push(bird);
      }
      // An endpoint interface on host one, as Felix would have it.
      await inNs(ns[0]!, 'ip', 'link', 'add', 'tapendpoint1', 'type', 'veth', 'peer', 'name', 'eth0ep1');
      for (const dev of ['tapendpoint1', 'eth0ep1']) await inNs(ns[0]!, 'ip', 'link', 'set', dev, 'up');
      for (const session of ['peer_instance_2', 'peer_instance_2_v6'])
        await waitFor(`the BGP session ${session}`, async () => /Established/.test(await birdc(0, 'show', 'protocols', session)), 15000, 100);
    });

    after(async () => {
      for (const b of birds) b.kill('SIGTERM');
      await Promise.all(birds.map((b) => (b.exitCode === null && b.signalCode === null ? new Promise((r) => b.once('exit', r)) : Promise.resolve())));
      for (const n of ns) await execa('ip', ['netns', 'del', n], { reject: false });
      const left = (await execa('ip', ['netns', 'list'])).stdout.split('\n').filter((l) => l.startsWith(`${prefix}-`));
      expect(left, 'namespaces left behind').to.deep.equal([]);
    });

    it("carries an endpoint's /32 to the other host, and only that", async () => {
      // Routes BIRD must leave alone: outside the container range, and not a host route.
      await inNs(ns[0]!, 'ip', 'route', 'add', '10.1.2.3/32', 'dev', 'tapendpoint1');
      await inNs(ns[0]!, 'ip', 'route', 'add', '192.168.5.0/24', 'dev', 'tapendpoint1');
      await inNs(ns[0]!, 'ip', 'route', 'add', '192.168.1.1/32', 'dev', 'tapendpoint1', 'scope', 'link');
      const seen = await waitFor(
        '192.168.1.1 on host two',
        async () => (await routes(ns[1]!, '-4')).split('\n').find((l) => l.startsWith('192.168.1.1 ')),
        10000,
        100,
      );
      expect(seen).to.match(/^192\.168\.1\.1 via 198\.18\.0\.1 dev fab0 proto bird/);
      const all = await routes(ns[1]!, '-4');
      expect(all)
        .to.not.match(/^10\.1\.2\.3/m)
        .and.not.match(/^192\.168\.5\.0/m);
      // Host one keeps Felix's route and does not get a BIRD copy of it.
      expect(await routes(ns[0]!, '-4'))
        .to.match(/^192\.168\.1\.1 dev tapendpoint1 scope link $/m)
        .and.not.match(/proto bird/);
    });

    it('withdraws the route when the endpoint goes', async () => {
      await inNs(ns[0]!, 'ip', 'route', 'del', '192.168.1.1/32', 'dev', 'tapendpoint1');
      await waitFor('192.168.1.1 to leave host two', async () => !/^192\.168\.1\.1 /m.test(await routes(ns[1]!, '-4')), 10000, 100);
    });

    it("carries an IPv6 endpoint's /128 over the IPv6 session, next hop the owner's IPv6 fabric address, and only that", async () => {
      // Routes BIRD must leave alone: outside the container range, and not a host route.
      await inNs(ns[0]!, 'ip', '-6', 'route', 'add', 'fd00:192:169::1/128', 'dev', 'tapendpoint1');
      await inNs(ns[0]!, 'ip', '-6', 'route', 'add', 'fd00:192:168:5::/64', 'dev', 'tapendpoint1');
      await inNs(ns[0]!, 'ip', '-6', 'route', 'add', 'fd00:192:168::1/128', 'dev', 'tapendpoint1');
      const seen = await waitFor(
        'fd00:192:168::1 on host two',
        async () => (await routes(ns[1]!, '-6')).split('\n').find((l) => l.startsWith('fd00:192:168::1 ')),
        10000,
        100,
      );
      expect(seen).to.match(/^fd00:192:168::1 via fd00:198:18::1 dev fab0 proto bird/);
      const bird = await birdc(1, 'show', 'route', 'for', 'fd00:192:168::1', 'all');
      expect(bird, bird)
        .to.match(/\[peer_instance_1_v6 /)
        .and.match(/BGP\.next_hop: fd00:198:18::1\b/);
      expect(await routes(ns[1]!, '-6'))
        .to.not.match(/^fd00:192:169::1/m)
        .and.not.match(/^fd00:192:168:5::/m);
      // The IPv4 session carries no IPv6 route.
      expect(await birdc(1, 'show', 'route', 'protocol', 'peer_instance_1')).to.not.include('fd00:');
    });

    it('withdraws the IPv6 route when the endpoint goes', async () => {
      await inNs(ns[0]!, 'ip', '-6', 'route', 'del', 'fd00:192:168::1/128', 'dev', 'tapendpoint1');
      await waitFor('fd00:192:168::1 to leave host two', async () => !/^fd00:192:168::1 /m.test(await routes(ns[1]!, '-6')), 10000, 100);
    });
  });
});
