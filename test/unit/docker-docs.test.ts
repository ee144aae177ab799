/**
 * docs/docker.md against the Docker files it describes (issue #18): every
 * compose command names the project (the files have no top-level name), the
 * `docker run` lines have the compose services' flags, network-container's
 * line the privileges the page lists, nothing runs privileged, the module
 * loading goes on in a `set -e` script where a module is built in, and the
 * example hosts are valid (host names, one subnet) and give the BGP session
 * names the page shows.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ipaddr from 'ipaddr.js';
import { execa } from 'execa';
import { ROOT } from '../support/process.js';
import { COMPOSE_DIR, DOCKERFILE, Service, loadCompose, parseDockerfile } from '../support/docker-files.js';
import { meshFor, parseFelixTxt, renderBirdConfig } from '../../src/lab/bird-config.js';

const DOC = path.join(ROOT, 'docs/docker.md');

/** The fenced code blocks of a Markdown text (indented ones too), and the inline code spans outside them. */
function codeOf(markdown: string): { blocks: string[]; spans: string[] } {
  const blocks: string[] = [];
  const rest = markdown.replace(/^[ \t]*```[a-z]*\n([\s\S]*?)^[ \t]*```[ \t]*$/gm, (_, body: string) => {
    blocks.push(body.replace(/^ {2}/gm, ''));
    return '';
  });
  const spans = [...rest.matchAll(/`([^`]+)`/g)].map((m) => m[1]!.replace(/\s+/g, ' '));
  return { blocks, spans };
}

/** Shell lines of a block: continuations joined, comments dropped. */
function shellLines(block: string): string[] {
  return block
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.replace(/(^|\s)#.*$/, '').trim())
    .filter((l) => l !== '');
}

/** Words of a shell line, quotes removed (enough for the page's commands: no quote holds a space). */
function words(line: string, vars: Record<string, string> = {}): string[] {
  const expanded = line.replace(/\$([a-z_]+)\b/g, (m, name: string) => vars[name] ?? m);
  return (expanded.match(/"[^"]*"|'[^']*'|\S+/g) ?? []).map((w) => w.replace(/^(["'])(.*)\1$/, '$2'));
}

interface DockerRun {
  name: string | null;
  net: string | null;
  init: boolean;
  restart: string | null;
  pid: string | null;
  privileged: boolean;
  capAdd: string[];
  securityOpt: string[];
  volumes: string[];
  env: string[];
  image: string;
  command: string[];
}

const VALUE_FLAGS = ['--name', '--net', '--network', '--restart', '--pid', '--cap-add', '--security-opt', '-v', '--volume', '-e', '--env'];

/** A `docker run` command line, read as the docker CLI reads it. */
function parseDockerRun(argv: string[]): DockerRun {
  const r: DockerRun = {
    name: null,
    net: null,
    init: false,
    restart: null,
    pid: null,
    privileged: false,
    capAdd: [],
    securityOpt: [],
    volumes: [],
    env: [],
    image: '',
    command: [],
  };
  let i = 2;
  for (; i < argv.length && argv[i]!.startsWith('-'); i++) {
    const [flag, given] = argv[i]!.split(/=(.*)/s, 2) as [string, string | undefined];
    let value = given;
    if (VALUE_FLAGS.includes(flag) && value === undefined) value = argv[++i];
    if (flag === '--name') r.name = value!;
    else if (flag === '--net' || flag === '--network') r.net = value!;
    else if (flag === '--restart') r.restart = value!;
    else if (flag === '--pid') r.pid = value!;
    else if (flag === '--cap-add') r.capAdd.push(value!);
    else if (flag === '--security-opt') r.securityOpt.push(value!);
    else if (flag === '-v' || flag === '--volume') r.volumes.push(value!);
    else if (flag === '-e' || flag === '--env') r.env.push(value!.split('=')[0]!);
    else if (flag === '--init') r.init = true;
    else if (flag === '--privileged') r.privileged = true;
    else if (!['-d', '-it', '-i', '-t', '--rm'].includes(flag)) throw new Error(`docker run flag ${flag} is not one this test reads`);
  }
  r.image = argv[i]!;
  r.command = argv.slice(i + 1);
  return r;
}

/** Every `docker run` of the page, `$var`s set earlier in its block expanded. */
function dockerRuns(blocks: string[]): DockerRun[] {
  return blocks.flatMap((b) => {
    const vars: Record<string, string> = {};
    const out: DockerRun[] = [];
    for (const line of shellLines(b)) {
      const assign = /^([a-z_]+)="([^"]*)"$/.exec(line);
      if (assign) vars[assign[1]!] = assign[2]!;
      const w = words(line, vars);
      if (w[0] === 'docker' && w[1] === 'run') out.push(parseDockerRun(w));
    }
    return out;
  });
}

/** Compose invocations (v1 `docker-compose`, v2 `docker compose`) in code: their project, files and subcommand. */
function composeCommands(code: string[]): { text: string; version: 1 | 2; project: string | null; files: string[]; subcommand: string | null }[] {
  return code.flatMap((c) =>
    [...c.matchAll(/(?<![\w/.-])docker(-compose| compose)\b([^\n|;&)]*)/g)].map((m) => {
      const argv = words(m[2]!);
      let project: string | null = null;
      const files: string[] = [];
      let subcommand: string | null = null;
      for (let i = 0; i < argv.length && subcommand === null; i++) {
        const a = argv[i]!;
        if (a === '-p' || a === '--project-name') project = argv[++i]!;
        else if (a === '-f' || a === '--file') files.push(argv[++i]!);
        else if (a === '--env-file') i++;
        else if (!a.startsWith('-')) subcommand = a;
      }
      return { text: m[0], version: m[1] === '-compose' ? 1 : 2, project, files, subcommand };
    }),
  );
}

/** Privileges a row of the page's table names (its first two cells), by container. */
function privilegeTable(markdown: string): Map<string, string> {
  const rows = new Map<string, string>();
  for (const m of markdown.matchAll(/^\| ([^|]+) \| ([^|]+) \|/gm)) {
    for (const name of [...m[1]!.matchAll(/`([^`]+)`/g)].map((n) => n[1]!)) rows.set(name, m[2]!);
  }
  return rows;
}

/** What each container needs besides an ordinary container's rights: as the compose files give it, and for network-container the page's own. */
const NETWORK_CONTAINER = { capAdd: ['NET_ADMIN', 'SYS_ADMIN'], securityOpt: ['apparmor=unconfined', 'systempaths=unconfined'], pid: 'host' };

const sorted = (a: string[] | undefined) => [...(a ?? [])].sort();

describe('docs/docker.md', () => {
  const markdown = fs.readFileSync(DOC, 'utf8');
  const { blocks, spans } = codeOf(markdown);
  const services: Record<string, Service> = loadCompose(path.join(COMPOSE_DIR, 'first-host.yaml'));

  it('the readers here read what they are given', () => {
    const md =
      'a `docker compose -f x.yaml ps` b\n\n```sh\nc="-d --init"\ndocker run $c --name n --cap-add NET_ADMIN \\\n  -v /a:/a img cmd arg   # note\n```\n';
    const code = codeOf(md);
    expect(code.spans).to.deep.equal(['docker compose -f x.yaml ps']);
    expect(composeCommands(code.spans)).to.deep.equal([
      { text: 'docker compose -f x.yaml ps', version: 2, project: null, files: ['x.yaml'], subcommand: 'ps' },
    ]);
    expect(dockerRuns(code.blocks)).to.deep.equal([
      {
        name: 'n',
        net: null,
        init: true,
        restart: null,
        pid: null,
        privileged: false,
        capAdd: ['NET_ADMIN'],
        securityOpt: [],
        volumes: ['/a:/a'],
        env: [],
        image: 'img',
        command: ['cmd', 'arg'],
      },
    ]);
    expect(dockerRuns(['docker run --privileged img\n'])[0]!.privileged).to.equal(true);
  });

  it('names the project in every compose command (the files have none), for compose v1 and v2, and only files that exist', () => {
    const commands = composeCommands([...blocks, ...spans]).filter((c) => c.subcommand !== null && c.subcommand !== 'version');
    expect(commands.length).to.be.greaterThan(3);
    for (const c of commands) {
      expect(c.project, c.text).to.equal('calico');
      expect(c.files, c.text).to.have.length(1);
      expect(fs.existsSync(path.join(ROOT, c.files[0]!)), c.text).to.equal(true);
    }
    for (const file of ['docker/compose/first-host.yaml', 'docker/compose/other-host.yaml']) {
      for (const version of [1, 2]) {
        expect(
          commands.some((c) => c.version === version && c.files[0] === file && c.subcommand === 'up'),
          `compose v${version} up of ${file}`,
        ).to.equal(true);
      }
    }
  });

  it('runs nothing privileged', () => {
    const runs = dockerRuns(blocks);
    expect(runs.length).to.be.greaterThan(5);
    for (const r of runs) expect(r.privileged, `docker run --name ${r.name}`).to.equal(false);
    for (const b of blocks) expect(b).to.not.match(/--privileged|privileged:\s*true/);
  });

  it('gives each container of step 4 the flags of its compose service: host network, init, restart, privileges, volumes, image, command', () => {
    const runs = dockerRuns(blocks).filter((r) => r.restart !== null);
    expect(runs.map((r) => r.name)).to.have.members(Object.keys(services));
    for (const r of runs) {
      const s = services[r.name!]!;
      expect(
        {
          net: r.net,
          init: r.init,
          restart: r.restart,
          pid: r.pid,
          capAdd: sorted(r.capAdd),
          securityOpt: sorted(r.securityOpt),
          volumes: sorted(r.volumes),
          image: r.image,
          command: r.command,
        },
        r.name!,
      ).to.deep.equal({
        net: s.network_mode,
        init: s.init,
        restart: s.restart,
        pid: s.pid ?? null,
        capAdd: sorted(s.cap_add),
        securityOpt: sorted(s.security_opt),
        volumes: sorted(s.volumes),
        image: s.image,
        command: s.command ?? [],
      });
      expect(Object.keys(s.environment ?? {}), `${r.name}: -e`).to.include.members(r.env);
    }
  });

  it('lists in its table the privileges the compose files and the network-container line give', () => {
    const table = privilegeTable(markdown);
    for (const [name, s] of Object.entries(services)) {
      const named = [...(s.cap_add ?? []), ...(s.security_opt ?? [])];
      const row = table.get(name);
      expect(row, name).to.be.a('string');
      if (named.length === 0) expect(row!.trim(), name).to.equal('none');
      for (const p of named) expect(row, name).to.include(`\`${p}\``);
    }
    const row = table.get('network-container')!;
    for (const p of [...NETWORK_CONTAINER.capAdd, ...NETWORK_CONTAINER.securityOpt, `--pid=${NETWORK_CONTAINER.pid}`]) expect(row).to.include(`\`${p}\``);
  });

  it('runs network-container with SYS_ADMIN, NET_ADMIN and the host PID namespace, from the felix image', () => {
    const runs = dockerRuns(blocks).filter((r) => r.command[0] === 'network-container');
    expect(runs).to.have.length(1);
    const r = runs[0]!;
    expect({ net: r.net, pid: r.pid, capAdd: sorted(r.capAdd), securityOpt: sorted(r.securityOpt), image: r.image }).to.deep.equal({
      net: 'host',
      ...NETWORK_CONTAINER,
      image: 'calico:felix',
    });
    expect(r.volumes).to.include('/var/run/netns:/var/run/netns');
  });

  it('loads kernel modules so that a set -e script goes on where one is built in or missing', async () => {
    const block = blocks.find((b) => /\bmodprobe\b/.test(b))!;
    const loop = block.split('\n');
    const start = loop.findIndex((l) => l.startsWith('for module'));
    const end = loop.findIndex((l) => l.trim() === 'done');
    expect(start, 'a for loop over the modules').to.be.at.least(0);
    expect(
      blocks.filter((b) => /\bmodprobe\b/.test(b)),
      'modprobe only there',
    ).to.have.length(1);
    expect(
      shellLines(block).filter((l) => /\bmodprobe\b/.test(l) && !/\|\|/.test(l)),
      'every modprobe has an || fallback',
    ).to.deep.equal([]);
    // The loop, run by sh -e with a modprobe that fails as on a kernel with the module built in.
    // PATH holds that modprobe only: the loop can run nothing else of this machine.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'calico-docs-'));
    try {
      fs.writeFileSync(path.join(dir, 'modprobe'), '#!/bin/sh\necho "modprobe: FATAL: Module $1 not found" >&2\nexit 1\n', { mode: 0o755 });
      const run = (script: string) => execa('/bin/sh', ['-e', '-c', `${script}\necho went-on`], { env: { PATH: dir }, extendEnv: false, reject: false });
      const ok = await run(loop.slice(start, end + 1).join('\n'));
      expect(ok.exitCode, ok.stderr).to.equal(0);
      expect(ok.stdout).to.equal('went-on');
      expect(ok.stderr).to.include('modprobe ip6_tables failed');
      const bare = await run('modprobe ip6_tables');
      expect(bare.exitCode, 'the line the page had').to.equal(1);
      expect(bare.stdout).to.equal('');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('the example hosts', () => {
    const block = blocks.find((b) => b.startsWith('cat > /opt/plugin/felix.txt'))!;
    const felixTxt = block.split('\n').slice(1, block.split('\n').indexOf('EOF')).join('\n') + '\n';
    const { hosts, problems } = parseFelixTxt(felixTxt, 'docs/docker.md');

    it('are a host list the plugin and BIRD accept', () => {
      expect(problems).to.deep.equal([]);
      expect(hosts).to.have.length(2);
    });

    it('have valid host names (letters, digits, hyphens), as `hostname` sets them', () => {
      const label = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;
      for (const h of hosts) for (const part of h.host.split('.')) expect(part, h.host).to.match(label);
      expect('host_1', 'the name the page had').to.not.match(label);
    });

    it('are on one subnet, IPv4 (/24) and IPv6 (/64)', () => {
      const [first, ...others] = hosts;
      for (const h of others) {
        expect(ipaddr.parse(h.ip).match(ipaddr.parse(first!.ip), 24), `${h.ip} and ${first!.ip}`).to.equal(true);
        expect(ipaddr.parse(h.ip6!).match(ipaddr.parse(first!.ip6!), 64), `${h.ip6} and ${first!.ip6}`).to.equal(true);
      }
      expect(ipaddr.parse('2.3.4.5').match(ipaddr.parse('1.2.3.4'), 24), 'the addresses the page had').to.equal(false);
    });

    it('are the only host addresses the page uses, and CALICO_HOSTS says the same', () => {
      const ips = new Set(hosts.flatMap((h) => [h.ip, h.ip6!]));
      const v4 = [...markdown.matchAll(/(?<![\d.:])(\d{1,3}(?:\.\d{1,3}){3})(?![\d.]|\/)/g)].map((m) => m[1]!).filter((a) => !a.startsWith('192.168.'));
      expect(v4.length).to.be.greaterThan(5);
      for (const a of v4) expect([...ips], a).to.include(a);
      for (const m of markdown.matchAll(/\b(2001:db8::[0-9a-f]+)\b(?!\/)/g)) expect([...ips], m[1]).to.include(m[1]);
      const calicoHosts = [...markdown.matchAll(/"((?:[a-z0-9-]+=[^ "]+ ?)+)"/g)].map((m) => m[1]!);
      expect(calicoHosts).to.have.length(2);
      for (const entry of calicoHosts.flatMap((c) => c.split(' '))) {
        const [name, addrs] = entry.split('=') as [string, string];
        const [ip, ip6] = addrs.split(',');
        const h = hosts.find((x) => x.host === name);
        expect(h, entry).to.not.equal(undefined);
        expect(ip).to.equal(h!.ip);
        if (ip6) expect(ip6).to.equal(h!.ip6);
      }
    });

    it('give the BGP session names the page shows', () => {
      const shown = [...new Set([...markdown.matchAll(/`(peer_[A-Za-z0-9_]+)`/g)].map((m) => m[1]!))];
      expect(shown.length).to.be.greaterThan(1);
      const configs = hosts.map((h) => renderBirdConfig(meshFor(hosts, h.host)));
      for (const name of shown)
        expect(
          configs.some((c) => c.includes(`protocol bgp ${name} `)),
          name,
        ).to.equal(true);
    });
  });

  it("builds the Dockerfile's targets and names its base images and their defaults", () => {
    const { args, stages } = parseDockerfile(fs.readFileSync(DOCKERFILE, 'utf8'));
    const loop = blocks.find((b) => b.includes('for image in'))!;
    const targets = /for image in ([a-z ]+); do/.exec(loop)![1]!.split(' ');
    expect(targets).to.have.members(['felix', 'plugin', 'bird', 'util']);
    for (const t of targets) expect(stages.has(t), t).to.equal(true);
    for (const [name, value] of Object.entries(args)) expect(markdown.replace(/\s+/g, ' '), name).to.include(`\`${name}\` (\`${value}\``);
  });
});
