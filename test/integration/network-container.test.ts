/**
 * The built `network-container` in namespaces this test creates: the veth
 * pair, eth0's addresses and default routes (IPv4, IPv6, dual stack), the
 * data file — and on every failure a one-line reason and nothing half-made
 * left behind. Two containers it networked reach each other through a host
 * namespace set up the way Felix sets a host up (SPEC §6, done here by hand).
 */
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Netns, createNetns, deleteAllNetns } from '../support/netns.js';
import { runCommand } from '../support/process.js';
import { parseDataFile } from '../../src/plugin/data.js';
import { defaultInterfaceName } from '../../src/common/endpoint-names.js';

const NC = 'src/lab/network-container.js';

describe('network-container (built command, in namespaces)', function () {
  this.timeout(30000);
  let dir: string;
  let host: Netns;
  let container: Netns;

  before(async () => {
    host = await createNetns('nchost', 'cnc');
    container = await createNetns('nccont', 'cnc');
  });

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'network-container-'));
  });

  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  after(() => deleteAllNetns());

  const run = (...args: string[]) => runCommand(NC, args, { netns: host.name });
  const links = async (ns: Netns) =>
    (await ns.run('ip', ['-o', 'link', 'show']))
      .split('\n')
      .map((l) => l.split(': ')[1]?.split('@')[0])
      .filter(Boolean);

  it('networks a namespace and writes the endpoint’s section atomically', async () => {
    const r = await run('--netns', container.name, '--data-dir', dir, '--hostname', 'instance-7', 'abcdef0123456789', '192.168.40.1', 'group1');
    expect(r.code, r.output).to.equal(0);
    expect(await links(host)).to.include('tapabcdef01234');
    expect((await host.run('cat', ['/sys/class/net/tapabcdef01234/operstate'])).trim()).to.equal('up');
    expect(await container.run('ip', ['-4', '-o', 'addr', 'show', 'dev', 'eth0'])).to.match(/inet 192\.168\.40\.1\/32/);
    expect((await container.run('ip', ['route'])).trim()).to.equal('default dev eth0 scope link');
    const mac = (await container.run('cat', ['/sys/class/net/eth0/address'])).trim();
    expect(fs.readdirSync(dir)).to.deep.equal(['192_168_40_1.txt']);
    expect(fs.readFileSync(path.join(dir, '192_168_40_1.txt'), 'utf8')).to.equal(
      `[endpoint 192_168_40_1]\nid=abcdef0123456789\nip=192.168.40.1\nmac=${mac}\nhost=instance-7\ngroup=group1\n`,
    );
  });

  it('networks an IPv6 address: a /128 without duplicate address detection, default via fe80::1', async () => {
    const other = await createNetns('nc6', 'cnc');
    const r = await run('--netns', other.name, '--data-dir', dir, '--hostname', 'h', 'v6endpoint0001', 'fd00:192:168:0::40:5', 'g6');
    expect(r.code, r.output).to.equal(0);
    expect(await other.run('ip', ['-6', '-o', 'addr', 'show', 'dev', 'eth0', 'scope', 'global'])).to.match(/inet6 fd00:192:168::40:5\/128 scope global nodad/);
    expect((await other.run('ip', ['-6', 'route', 'show', 'default'])).trim()).to.match(/^default via fe80::1 dev eth0 /);
    expect(await other.run('ip', ['-4', 'addr', 'show', 'dev', 'eth0'])).to.equal('');
    expect(fs.readdirSync(dir)).to.deep.equal(['fd00_192_168__40_5.txt']);
    expect(fs.readFileSync(path.join(dir, 'fd00_192_168__40_5.txt'), 'utf8')).to.match(
      /^\[endpoint fd00_192_168__40_5\]\nid=v6endpoint0001\nip=fd00:192:168::40:5\n/,
    );
  });

  it('networks a dual-stack IPv4,IPv6 pair (given in either order): both addresses and default routes, one section', async () => {
    const other = await createNetns('ncdual', 'cnc');
    const r = await run('--netns', other.name, '--data-dir', dir, '--hostname', 'h', 'dualendpoint1', 'fd00:192:168::40:6,192.168.40.6', 'g');
    expect(r.code, r.output).to.equal(0);
    expect(await other.run('ip', ['-4', '-o', 'addr', 'show', 'dev', 'eth0'])).to.match(/inet 192\.168\.40\.6\/32/);
    expect(await other.run('ip', ['-6', '-o', 'addr', 'show', 'dev', 'eth0', 'scope', 'global'])).to.match(/inet6 fd00:192:168::40:6\/128 scope global nodad/);
    expect((await other.run('ip', ['route'])).trim()).to.equal('default dev eth0 scope link');
    expect((await other.run('ip', ['-6', 'route', 'show', 'default'])).trim()).to.match(/^default via fe80::1 dev eth0 /);
    const file = '192_168_40_6-fd00_192_168__40_6.txt';
    expect(fs.readdirSync(dir)).to.deep.equal([file]);
    const parsed = parseDataFile(fs.readFileSync(path.join(dir, file), 'utf8'), file);
    expect([...parsed.entries.keys()]).to.deep.equal(['endpoint 192_168_40_6-fd00_192_168__40_6']);
    expect([...parsed.entries.values()][0]!.value).to.deep.include({ id: 'dualendpoint1', addrs: ['192.168.40.6', 'fd00:192:168::40:6'] });
  });

  it('gives containers that reach each other through the host: IPv6 via fe80::1 on the tap, IPv4 by proxy ARP', async () => {
    // A host of its own, prepared as Felix prepares one (SPEC §6): forwarding, and per endpoint interface
    // proxy_arp, fe80::1/64 nodad, and a route per address.
    const router = await createNetns('ncrouter', 'cnc');
    await router.sh('sysctl -q -w net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1');
    const a = await createNetns('ncpinga', 'cnc');
    const b = await createNetns('ncpingb', 'cnc');
    const peers = [
      { ns: a, id: 'pingendpointa', ip: '192.168.40.11,fd00:192:168::40:11' },
      { ns: b, id: 'qingendpointb', ip: 'fd00:192:168::40:12,192.168.40.12' },
    ].map((p) => ({ ...p, tap: defaultInterfaceName('tap', p.id) }));
    for (const p of peers) {
      const r = await runCommand(NC, ['--netns', p.ns.name, '--data-dir', dir, '--hostname', 'h', p.id, p.ip, 'g'], { netns: router.name });
      expect(r.code, r.output).to.equal(0);
      const [v4, v6] = p.ip.split(',').sort((x, y) => Number(x.includes(':')) - Number(y.includes(':')));
      await router.sh(
        `sysctl -q -w net.ipv4.conf.${p.tap}.proxy_arp=1 net.ipv6.conf.${p.tap}.accept_ra=0; ip -6 addr add fe80::1/64 dev ${p.tap} nodad; ` +
          `ip route add ${v4}/32 dev ${p.tap}; ip -6 route add ${v6}/128 dev ${p.tap}`,
      );
    }
    for (const [from, to] of [
      [a, '192.168.40.12'],
      [a, 'fd00:192:168::40:12'],
      [b, '192.168.40.11'],
      [b, 'fd00:192:168::40:11'],
    ] as const) {
      const r = await from.exec('ping', ['-c', '1', '-W', '2', to]);
      expect(r.code, `${from.name} ping ${to}: ${r.stdout}${r.stderr}`).to.equal(0);
    }
    // The IPv6 replies came through the gateway: the container learnt fe80::1 as a router.
    expect(await a.run('ip', ['-6', 'neigh', 'show', 'fe80::1', 'dev', 'eth0'])).to.match(/router/);
  });

  const failures: Array<[string, () => string[], RegExp]> = [
    ['the interface exists already', () => ['--netns', container.name, 'abcdef0123456789', '192.168.40.2', 'g'], /interface tapabcdef01234 already exists/],
    ['the namespace does not exist', () => ['--netns', 'cnc-no-such-ns', 'fresh000001', '192.168.40.3', 'g'], /network namespace 'cnc-no-such-ns' not found/],
    ['the container has an eth0 already', () => ['--netns', container.name, 'second00001', '192.168.40.4', 'g'], /eth0.*File exists/],
  ];
  for (const [name, args, message] of failures) {
    it(`fails with one line and leaves nothing behind when ${name}`, async () => {
      const before = { host: await links(host), container: await links(container) };
      const r = await run('--data-dir', dir, ...args());
      expect(r.code).to.equal(1);
      expect(r.output.trim().split('\n')).to.have.length(1);
      expect(r.output)
        .to.match(/^network-container: /)
        .and.to.match(message);
      expect(await links(host)).to.deep.equal(before.host);
      expect(await links(container)).to.deep.equal(before.container);
      expect(fs.readdirSync(dir)).to.deep.equal([]);
    });
  }

  it('refuses bad arguments before touching anything', async () => {
    for (const [args, message] of [
      [['--netns', container.name, 'cid', '192.168.400.1', 'g'], /bad IP address "192\.168\.400\.1"/],
      [
        ['--netns', container.name, 'cid', '192.168.40.9,192.168.40.10', 'g'],
        /bad IP address "192\.168\.40\.9,192\.168\.40\.10": more than one address of a family/,
      ],
      [
        ['--netns', container.name, 'cid', 'fd00::9, 192.168.40.10', 'g'],
        /bad IP address "fd00::9, 192\.168\.40\.10": not an IP address \(or an IPv4,IPv6 pair\)/,
      ],
      [['--netns', container.name, 'bad id', '192.168.40.9', 'g'], /bad container id/],
      [['--netns', container.name, 'cid', '192.168.40.9', 'no group'], /bad group name/],
      [['cid', '192.168.40.9'], /Not enough non-option arguments/],
    ] as Array<[string[], RegExp]>) {
      const r = await runCommand(NC, args);
      expect(r.code, args.join(' ')).to.equal(2);
      expect(r.output).to.match(message);
    }
  });

  it('refuses a value that would inject a line or read back differently (issue #11), touching nothing and writing nothing', async function () {
    this.timeout(120000); // eleven runs of the command
    // A fresh namespace: if a refusal failed, what was made stays out of the other tests' way.
    const target = await createNetns('ncinj', 'cnc');
    const hostLinks = await links(host);
    for (const [args, message] of [
      [
        [
          '--hostname',
          'instance-7\n[endpoint evil]\nid=evil\nip=192.168.40.66\nmac=ee:ee:ee:ee:ee:66\nhost=instance-7\ngroup=admin',
          'injected01',
          '192.168.40.21',
          'g',
        ],
        /bad --hostname "instance-7\\n\[endpoint/,
      ],
      [['--hostname', 'instance-7\rgroup=admin', 'injected02', '192.168.40.22', 'g'], /bad --hostname/],
      [['--hostname', 'instance-7 group=admin', 'injected03', '192.168.40.23', 'g'], /bad --hostname/],
      [['--hostname', '[instance-7]', 'injected04', '192.168.40.24', 'g'], /bad --hostname/],
      [['--hostname', 'a=b', 'injected05', '192.168.40.25', 'g'], /bad --hostname/],
      [['--hostname', '', 'injected06', '192.168.40.26', 'g'], /bad --hostname/],
      [['--hostname', 'h', 'injected07\ngroup=admin', '192.168.40.27', 'g'], /bad container id "injected07\\ngroup=admin"/],
      [['--hostname', 'h', ';injected08', '192.168.40.28', 'g'], /bad container id ";injected08": .*comment/],
      [['--hostname', 'h', '#injected09', '192.168.40.29', 'g'], /bad container id "#injected09": .*comment/],
      [['--hostname', 'h', 'injected10', '192.168.40.30', 'g\n[endpoint evil]'], /bad group name "g\\n\[endpoint evil\]"/],
      [['--hostname', 'h', 'injected11', '192.168.40.31', 'g,admin'], /bad group name/],
    ] as Array<[string[], RegExp]>) {
      const r = await run('--netns', target.name, '--data-dir', dir, ...args);
      expect(r.code, r.output).to.equal(2);
      expect(r.output.trim().split('\n'), r.output).to.have.length(1);
      expect(r.output)
        .to.match(/^network-container: /)
        .and.to.match(message);
      expect(fs.readdirSync(dir)).to.deep.equal([]);
      expect(await links(host)).to.deep.equal(hostLinks);
      expect(await links(target)).to.deep.equal(['lo']);
    }
  });

  it('writes ids such as host1:ctr/web, and characters INI gives meaning to inside an id, so that they read back as given', async () => {
    const target = await createNetns('ncid', 'cnc');
    const id = 'host1:ctr/web=[a];b#c';
    const r = await run('--netns', target.name, '--data-dir', dir, '--hostname', 'Instance-7.example.com', id, '192.168.40.41', 'group_1.a-b');
    expect(r.code, r.output).to.equal(0);
    const parsed = parseDataFile(fs.readFileSync(path.join(dir, '192_168_40_41.txt'), 'utf8'), 'x.txt');
    expect([...parsed.badSections.values(), ...parsed.syntaxErrors]).to.deep.equal([]);
    expect([...parsed.entries.values()].map((e) => e.value)).to.deep.include.members([
      {
        id,
        addrs: ['192.168.40.41'],
        mac: (await target.run('cat', ['/sys/class/net/eth0/address'])).trim(),
        host: 'instance-7',
        groups: ['group_1.a-b'],
        source: 'x.txt:1',
      },
    ]);
  });

  it('says so when docker cannot find the container', async () => {
    const r = await run('--data-dir', dir, 'nosuchcontainer', '192.168.40.8', 'g');
    expect(r.code).to.equal(1);
    expect(r.output).to.match(/^network-container: container 'nosuchcontainer' not found/);
    expect(await links(host)).to.not.include('tapnosuchconta');
  });
});
