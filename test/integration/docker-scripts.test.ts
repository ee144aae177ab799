/**
 * The images' start scripts and build steps, run as the images run them but
 * without Docker: the felix entrypoint turns environment variables into
 * config files that Felix's own loader accepts; run-bird generates BIRD's
 * config and runs BIRD in the foreground (inside a namespace of this test,
 * never the root one); the zeromq prune leaves an addon zeromq's loader
 * loads; the util image's PID 1 ends on docker stop's signal (in a PID
 * namespace of this test). And the tools Debian 12 ships read the compose
 * files and the build context as the files mean them: docker-compose 1.29.2's
 * own `config`, and docker-py's .dockerignore matcher (issue #18).
 */
import { expect } from 'chai';
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import YAML from 'yaml';
import { loadFelixConfig } from '../../src/felix/config.js';
import { loadConfig } from '../../src/common/config.js';
import { ROOT, waitFor } from '../support/process.js';
import { COMPOSE_DIR, DOCKERFILE, Service, filesUnder, loadCompose, parseStages } from '../support/docker-files.js';

const ENTRYPOINT = path.join(ROOT, 'docker/felix/entrypoint');
const RUN_BIRD = path.join(ROOT, 'docker/bird/run-bird');

describe('docker start scripts', function () {
  this.timeout(20000);
  let dir: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'calico-docker-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  describe('felix entrypoint', () => {
    /** Runs the entrypoint with only `env` (and PATH) set, the command listing the config dir. */
    const entrypoint = (env: Record<string, string>, command = ['ls', path.join(dir, 'etc')]) =>
      execa('sh', [ENTRYPOINT, ...command], {
        env: { PATH: process.env.PATH!, CALICO_CONFIG_DIR: path.join(dir, 'etc'), CALICO_LOG_DIR: path.join(dir, 'log'), ...env },
        extendEnv: false,
        reject: false,
      });

    it('writes felix.cfg and acl_manager.cfg from the environment, which the config loaders accept, then runs the command', async () => {
      const r = await entrypoint({
        PluginAddress: '10.240.0.2',
        FelixHostname: 'instance-2',
        ResyncIntervalSecs: '60',
        LogSeverityScreen: 'INFO',
        ConnectionTimeoutMillis: '10000',
      });
      expect(r.exitCode, r.stderr).to.equal(0);
      expect(r.stdout.split('\n')).to.deep.equal(['acl_manager.cfg', 'felix.cfg']);
      const { config, warnings } = loadFelixConfig(path.join(dir, 'etc/felix.cfg'));
      expect(warnings).to.deep.equal([]);
      expect(config.global).to.deep.include({ PluginAddress: '10.240.0.2', ACLAddress: '10.240.0.2', FelixHostname: 'instance-2', ResyncIntervalSecs: 60 });
      expect(config.log).to.deep.include({ LogFilePath: path.join(dir, 'log/felix.log'), LogSeverityScreen: 'INFO' });
      expect(config.connection).to.deep.include({ ConnectionTimeoutMillis: 10000 });
      const acl = fs.readFileSync(path.join(dir, 'etc/acl_manager.cfg'), 'utf8');
      expect(acl).to.equal(`[global]\nPluginAddress = 10.240.0.2\n\n[log]\nLogFilePath = ${path.join(dir, 'log/acl_manager.log')}\nLogSeverityScreen = INFO\n`);
      const parsed = loadConfig(path.join(dir, 'etc/acl_manager.cfg'), {
        global: { PluginAddress: { parse: String, required: true } },
        log: { LogFilePath: { parse: String }, LogSeverityScreen: { parse: String } },
      });
      expect(parsed.warnings).to.deep.equal([]);
      expect(fs.existsSync(path.join(dir, 'log'))).to.equal(true);
    });

    it('uses ACLAddress when given', async () => {
      await entrypoint({ PluginAddress: '10.240.0.2', ACLAddress: '10.240.0.9' });
      expect(loadFelixConfig(path.join(dir, 'etc/felix.cfg')).config.global.ACLAddress).to.equal('10.240.0.9');
    });

    it('leaves a mounted file alone', async () => {
      fs.mkdirSync(path.join(dir, 'etc'));
      fs.writeFileSync(path.join(dir, 'etc/felix.cfg'), '[global]\nPluginAddress = 1.2.3.4\nACLAddress = 1.2.3.4\n');
      const r = await entrypoint({ PluginAddress: '10.240.0.2' }, ['cat', path.join(dir, 'etc/felix.cfg')]);
      expect(r.stdout).to.equal('[global]\nPluginAddress = 1.2.3.4\nACLAddress = 1.2.3.4');
      expect(fs.existsSync(path.join(dir, 'etc/acl_manager.cfg'))).to.equal(true);
    });

    it('writes nothing without PluginAddress, and still runs the command (whose own error names the missing file)', async () => {
      const r = await entrypoint({}, ['echo', 'ran']);
      expect(r.exitCode).to.equal(0);
      expect(r.stdout).to.equal('ran');
      expect(fs.readdirSync(path.join(dir, 'etc'))).to.deep.equal([]);
    });

    describe('with /proc/sys read-only, as Docker mounts it', () => {
      /**
       * The entrypoint running `calico-felix` (a stand-in that reports what it
       * may write and its capabilities) in a mount namespace of its own, never
       * the machine's: /proc/sys bound read-only over itself there, as in a
       * container. `dropSysAdmin`: without SYS_ADMIN, as a container without
       * cap_add SYS_ADMIN. Nothing is written under /proc/sys.
       */
      async function inContainerLikeProc(dropSysAdmin: boolean) {
        const bin = path.join(dir, 'bin');
        fs.mkdirSync(bin);
        fs.writeFileSync(
          path.join(bin, 'calico-felix'),
          '#!/bin/sh\nfor f in net/ipv4/ip_forward kernel/hostname; do if [ -w /proc/sys/$f ]; then echo "$f writable"; else echo "$f read-only"; fi; done\ngrep CapEff /proc/self/status\n',
          { mode: 0o755 },
        );
        const drop = dropSysAdmin ? 'setpriv --inh-caps=-sys_admin --bounding-set=-sys_admin -- ' : '';
        const script = `mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys && [ ! -w /proc/sys/net/ipv4/ip_forward ] && exec ${drop}sh ${ENTRYPOINT} calico-felix`;
        return execa('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', script], {
          env: { PATH: `${bin}:${process.env.PATH}`, CALICO_CONFIG_DIR: path.join(dir, 'etc'), CALICO_LOG_DIR: path.join(dir, 'log') },
          extendEnv: false,
          reject: false,
        });
      }
      const hasSysAdmin = (out: string) => (BigInt(`0x${/CapEff:\s*([0-9a-f]+)/.exec(out)![1]}`) >> 21n) & 1n;

      it('with SYS_ADMIN: mounts /proc/sys/net alone read-write, then runs the command without SYS_ADMIN', async () => {
        const r = await inContainerLikeProc(false);
        expect(r.exitCode, r.stderr).to.equal(0);
        expect(r.stdout).to.include('net/ipv4/ip_forward writable').and.include('kernel/hostname read-only');
        expect(hasSysAdmin(r.stdout), r.stdout).to.equal(0n);
        expect(r.stderr).to.include('calico-entrypoint: made /proc/sys/net writable');
      });

      it('without SYS_ADMIN: leaves it read-only and says what Felix needs', async () => {
        const r = await inContainerLikeProc(true);
        expect(r.exitCode, r.stderr).to.equal(0);
        expect(r.stdout).to.include('net/ipv4/ip_forward read-only');
        expect(r.stderr).to.include('Felix cannot set its sysctls; give the container SYS_ADMIN');
      });
    });

    const refusals: [string, Record<string, string>, RegExp][] = [
      ['a value of two lines', { PluginAddress: '10.240.0.2', FelixHostname: 'a\n[global]' }, /FelixHostname must be one line/],
      ['an unknown iptables backend', { PluginAddress: '10.240.0.2', IPTABLES_BACKEND: 'xtables' }, /IPTABLES_BACKEND must be nft or legacy, not 'xtables'/],
    ];
    for (const [name, env, message] of refusals) {
      it(`refuses ${name} with exit 2 and does not run the command`, async () => {
        const r = await entrypoint(env, ['echo', 'ran']);
        expect(r.exitCode).to.equal(2);
        expect(r.stdout).to.equal('');
        expect(r.stderr).to.match(message);
        expect(fs.existsSync(path.join(dir, 'etc')), 'nothing written').to.equal(false);
      });
    }
  });

  describe('run-bird', () => {
    const ns = `cdk${process.pid.toString(36)}-bird`;
    let bin: string;

    before(async () => {
      await execa('ip', ['netns', 'add', ns]);
      await execa('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
      await execa('ip', ['netns', 'exec', ns, 'ip', 'addr', 'add', '198.18.0.1/24', 'dev', 'lo']);
    });
    after(async () => {
      await execa('ip', ['netns', 'del', ns], { reject: false });
      expect((await execa('ip', ['netns', 'list'])).stdout).to.not.include(ns);
    });
    beforeEach(() => {
      // What the image does: package.json bins on the PATH, pointing into dist/.
      bin = path.join(dir, 'bin');
      fs.mkdirSync(bin);
      const script = path.join(ROOT, 'dist/src/lab/bird-config-main.js');
      fs.chmodSync(script, 0o755);
      fs.symlinkSync(script, path.join(bin, 'calico-bird-config'));
    });

    /** run-bird's environment (the image's PATH, files in this test's folder) and `env`. */
    const birdEnv = (env: Record<string, string>) => ({
      PATH: `${bin}:${process.env.PATH}`,
      BIRD_LOG_DIR: path.join(dir, 'log'),
      BIRD_CONF: path.join(dir, 'etc/bird.conf'),
      BIRD_SOCKET: path.join(dir, 'run/bird.ctl'),
      ...env,
    });
    /** `sh run-bird` inside the namespace (never the root one: BIRD may start) with `vars` as its whole environment. */
    const runBirdArgs = (vars: Record<string, string>) => ['netns', 'exec', ns, 'env', ...Object.entries(vars).map(([k, v]) => `${k}=${v}`), 'sh', RUN_BIRD];
    /** Runs run-bird where it is expected to stop before BIRD starts. */
    const runBirdToExit = (env: Record<string, string>) => execa('ip', runBirdArgs(birdEnv(env)), { reject: false, timeout: 10000 });

    /** Runs run-bird in the namespace until BIRD answers on its socket; returns the config it ran with. */
    async function runBird(env: Record<string, string>): Promise<string> {
      const vars = birdEnv(env);
      const child = spawn('ip', runBirdArgs(vars), { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise((r) => child.once('exit', r));
      try {
        await waitFor(
          'BIRD to answer on its socket',
          async () => {
            if (child.exitCode !== null) throw new Error(`run-bird exited ${child.exitCode}: ${stderr}`);
            return /Daemon is up and running/.test((await execa('birdc', ['-s', vars.BIRD_SOCKET, 'show', 'status'])).stdout);
          },
          10000,
          100,
        );
        // BIRD is the foreground process: run-bird exec'd it.
        expect((await execa('birdc', ['-s', vars.BIRD_SOCKET, 'show', 'protocols'])).stdout).to.include('peer_instance_2');
        expect(fs.readFileSync(path.join(dir, 'log/bird.log'), 'utf8')).to.match(/Started/);
        return fs.readFileSync(vars.BIRD_CONF, 'utf8');
      } finally {
        child.kill('SIGTERM');
        await exited;
      }
    }

    it('generates the config from felix.txt for this host and runs BIRD in the foreground, logging to its log dir', async () => {
      const felixTxt = path.join(dir, 'felix.txt');
      fs.writeFileSync(
        felixTxt,
        '[felix instance-1]\nip=198.18.0.1\nip6=fd00:198:18::1\nhost=instance-1.lab\n\n[felix instance-2]\nip=198.18.0.2\nip6=fd00:198:18::2\nhost=instance-2.lab\n',
      );
      const conf = await runBird({ FELIX_TXT: felixTxt, BIRD_HOSTNAME: 'instance-1.lab', BIRD_AS: '65010', BIRD_PREFIXES: '192.168.0.0/16 fd00:192:168::/64' });
      expect(conf)
        .to.include('router id 198.18.0.1;')
        .and.include('neighbor 198.18.0.2 as 65010;')
        .and.include(`log "${path.join(dir, 'log/bird.log')}" 10000000 "${path.join(dir, 'log/bird.log.old')}" all;`);
      expect(conf).to.include('define ENDPOINT_ROUTES_V6 = [ fd00:192:168::/64{128,128} ];').and.include('neighbor fd00:198:18::2 as 65010;');
    });

    it('takes the host list from CALICO_HOSTS instead; IPv4 hosts get the IPv4 range only', async () => {
      const conf = await runBird({ CALICO_HOSTS: 'instance-1=198.18.0.1 instance-2=198.18.0.2', BIRD_HOSTNAME: 'instance-1' });
      expect(conf).to.include('neighbor 198.18.0.2 as 64511;').and.include('define ENDPOINT_ROUTES_V4 = [ 192.168.0.0/16{32,32} ];').and.not.include('ipv6');
    });

    it('takes name=ip,ip6 in CALICO_HOSTS: an IPv6 session per peer, both default ranges', async () => {
      const conf = await runBird({ CALICO_HOSTS: 'instance-1=198.18.0.1,fd00:198:18::1 instance-2=198.18.0.2,fd00:198:18::2', BIRD_HOSTNAME: 'instance-1' });
      expect(conf).to.include('neighbor 198.18.0.2 as 64511;').and.include('local fd00:198:18::1 as 64511;').and.include('neighbor fd00:198:18::2 as 64511;');
      expect(conf)
        .to.include('define ENDPOINT_ROUTES_V4 = [ 192.168.0.0/16{32,32} ];')
        .and.include('define ENDPOINT_ROUTES_V6 = [ fd00:192:168::/48{128,128} ];');
      expect(conf).to.match(/^protocol bgp peer_instance_2_v6 from mesh6 \{$/m);
    });

    it('refuses a CALICO_HOSTS entry with an empty address, with exit 2', async () => {
      const r = await runBirdToExit({ CALICO_HOSTS: 'instance-1=198.18.0.1,', BIRD_HOSTNAME: 'instance-1' });
      expect(r.exitCode).to.equal(2);
      expect(r.stderr).to.equal("run-bird: CALICO_HOSTS entry 'instance-1=198.18.0.1,' is not name=ip or name=ip,ip6");
      expect(fs.existsSync(path.join(dir, 'etc/bird.conf'))).to.equal(false);
    });

    it('stops with the reason when this host is not in the list', async () => {
      const r = await runBirdToExit({ CALICO_HOSTS: 'instance-1=198.18.0.1', BIRD_HOSTNAME: 'instance-7' });
      expect(r.exitCode).to.equal(1);
      expect(r.stderr).to.match(/calico-bird-config: .*host 'instance-7' is not in the host list \(have instance-1\)/);
      expect(fs.existsSync(path.join(dir, 'etc/bird.conf'))).to.equal(false);
    });
  });
});

describe('zeromq prune (docker/prune-zeromq.mjs, a build step of the Node images)', function () {
  this.timeout(30000);
  const SCRIPT = path.join(ROOT, 'docker/prune-zeromq.mjs');
  const ZEROMQ = path.join(ROOT, 'node_modules/zeromq');
  const LOADER = path.join(ROOT, 'node_modules/cmake-ts/build/loader.js');
  let dir: string;

  /** A copy of the installed zeromq's build/ (the prebuilt addons and their manifest), as npm ci leaves it in the image. */
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'calico-zeromq-'));
    fs.cpSync(path.join(ZEROMQ, 'build'), path.join(dir, 'build'), { recursive: true });
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const files = () => filesIn(path.join(dir, 'build'));
  const prune = (...args: string[]) => execa('node', [SCRIPT, ...args, dir], { reject: false });
  /** zeromq's own loader (cmake-ts) on the pruned folder, in a process of its own: the libzmq version of the addon it loads. */
  const load = () =>
    execa('node', ['-e', `process.stdout.write(require(${JSON.stringify(LOADER)}).loadAddon(${JSON.stringify(path.join(dir, 'build'))}).version)`], {
      reject: false,
    });

  it('starts from addons for macOS and Windows as well as Linux (what the images used to carry)', () => {
    const oses = new Set(files().map((f) => f.split('/')[0]));
    expect([...oses]).to.include.members(['darwin', 'linux', 'win32']);
  });

  it("keeps only this machine's (linux, its CPU, glibc) addons, which zeromq's loader then loads", async () => {
    const before = files();
    const r = await prune();
    expect(r.exitCode, r.stderr).to.equal(0);
    const kept = files();
    expect(kept.length).to.be.greaterThan(1).and.lessThan(before.length);
    for (const f of kept) if (f !== 'manifest.json') expect(f).to.match(new RegExp(`^linux/${process.arch}/node/glibc-\\d+-Release/addon\\.node$`));
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'build/manifest.json'), 'utf8')) as Record<string, string>;
    expect(Object.values(manifest).sort()).to.deep.equal(kept.filter((f) => f !== 'manifest.json').sort());
    const loaded = await load();
    expect(loaded.exitCode, loaded.stderr).to.equal(0);
    expect(loaded.stdout).to.match(/^\d+\.\d+\.\d+$/);
    expect(r.stdout).to.match(/^prune-zeromq: kept .* removed \d+ other files, [\d.]+ MB$/);
  });

  it("leaves what it was asked to keep: another CPU's addons, which this machine's loader then cannot load", async () => {
    const other = process.arch === 'arm64' ? 'x64' : 'arm64';
    expect((await prune('--arch', other)).exitCode).to.equal(0);
    for (const f of files()) if (f !== 'manifest.json') expect(f).to.match(new RegExp(`^linux/${other}/`));
    const loaded = await load();
    expect(loaded.exitCode).to.not.equal(0);
    expect(loaded.stderr).to.include(`No compatible zeromq.js addon found for linux ${process.arch} glibc`);
  });

  it('deletes nothing and exits 1 when no addon fits', async () => {
    const before = files();
    const r = await prune('--arch', 'riscv64');
    expect(r.exitCode).to.equal(1);
    expect(r.stderr).to.match(/^prune-zeromq: .*manifest\.json lists no addon for linux riscv64 glibc; nothing removed$/);
    expect(files()).to.deep.equal(before);
  });
});

/** Every file under `dir`, relative, sorted. */
function filesIn(dir: string, rel = ''): string[] {
  return fs
    .readdirSync(path.join(dir, rel), { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? filesIn(dir, path.posix.join(rel, e.name)) : [path.posix.join(rel, e.name)]))
    .sort();
}

/** The pids of `pid`'s children, from /proc. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

function descendantsOf(pid: number): number[] {
  return childrenOf(pid).flatMap((c) => [c, ...descendantsOf(c)]);
}

const cmdline = (pid: number): string[] => {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
  } catch {
    return [];
  }
};
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('util image: docker stop (issue #18)', function () {
  this.timeout(20000);
  const util = parseStages(fs.readFileSync(DOCKERFILE, 'utf8')).get('util')!;
  const started: ChildProcess[] = [];

  /**
   * The container's processes as Docker starts them: the image's ENTRYPOINT
   * and `command` as PID 1 of a PID namespace of its own, on a terminal for
   * an interactive shell (`docker run -it`; script(1) gives one). Returns
   * PID 1 (to signal, as docker stop does) and its child, and a promise of
   * the whole thing ending.
   */
  async function startContainer(command: string[], terminal: boolean): Promise<{ pid1: number; child: number; ended: Promise<unknown> }> {
    const argv = [...util.entrypoint!, ...command];
    const inNamespace = ['unshare', '--pid', '--fork', '--kill-child', ...argv];
    const child = terminal
      ? spawn('script', ['-qfec', inNamespace.join(' '), '/dev/null'], { stdio: ['pipe', 'ignore', 'ignore'] })
      : spawn(inNamespace[0]!, inNamespace.slice(1), { stdio: ['pipe', 'ignore', 'ignore'] });
    started.push(child);
    const ended = new Promise((r) => child.once('exit', r));
    let pid1 = 0;
    let inner = 0;
    await waitFor(
      'PID 1 and its child to start',
      () => {
        pid1 = descendantsOf(child.pid!).find((p) => cmdline(p).join(' ') === argv.join(' ')) ?? 0;
        inner = pid1 ? (childrenOf(pid1)[0] ?? 0) : 0;
        return inner !== 0 && cmdline(inner)[0] === command[0];
      },
      5000,
      50,
    );
    return { pid1, child: inner, ended };
  }

  afterEach(() => {
    for (const c of started.splice(0)) {
      for (const p of descendantsOf(c.pid!)) if (alive(p)) process.kill(p, 'SIGKILL');
      if (c.exitCode === null) c.kill('SIGKILL');
    }
  });

  // The image's CMD is bash; --norc keeps this machine's rc files (not the image's) out of it.
  const shell = [...util.cmd!, '--norc'];

  it(`ends at once on the image's STOPSIGNAL (${util.stopsignal}), PID 1 passing it to an interactive bash`, async () => {
    expect(util.stopsignal).to.be.a('string');
    const c = await startContainer(shell, true);
    // Sent again every 500 ms while bash lives: a signal that reaches a shell still starting up can be
    // lost (a race of this harness, not of docker stop, which signals a container long running).
    // Within 3 s, as against docker stop's 10 s wait for SIGKILL; SIGTERM never ends it (next test).
    let sent = 0;
    const gone = await waitFor(
      'bash and PID 1 to end',
      () => {
        if (!alive(c.child) && !alive(c.pid1)) return true;
        if (alive(c.pid1)) process.kill(c.pid1, util.stopsignal as NodeJS.Signals);
        sent++;
        return false;
      },
      3000,
      500,
    ).catch(() => false);
    expect(gone, `still running after ${sent} ${util.stopsignal ?? ''}`).to.equal(true);
  });

  it("would not on docker stop's default SIGTERM: an interactive bash ignores it (so the wait for SIGKILL)", async () => {
    const c = await startContainer(shell, true);
    process.kill(c.pid1, 'SIGTERM');
    await new Promise((r) => setTimeout(r, 1500));
    expect(alive(c.pid1) && alive(c.child), 'bash and PID 1 still running').to.equal(true);
  });

  it('ends a non-interactive command on it too (docker run -d calico:util sleep ...)', async () => {
    const c = await startContainer(['sleep', '600'], false);
    process.kill(c.pid1, util.stopsignal as NodeJS.Signals);
    await c.ended;
    expect(alive(c.child)).to.equal(false);
  });
});

describe("compose files and build context under Debian 12's tools (docker-compose 1.29.2, docker-py)", function () {
  this.timeout(60000);
  const compose = (file: string, env: Record<string, string>) =>
    execa('docker-compose', ['-p', 'calico', '-f', file, 'config'], { env: { PATH: process.env.PATH!, ...env }, extendEnv: false, reject: false });

  it('has compose v1 1.29.2 here (scripts/setup installs it)', async () => {
    expect((await execa('docker-compose', ['version', '--short'])).stdout.trim()).to.equal('1.29.2');
  });

  for (const name of ['first-host.yaml', 'other-host.yaml']) {
    it(`${name}: docker-compose 1.29.2 accepts it and resolves it as the static checks read it`, async () => {
      const file = path.join(COMPOSE_DIR, name);
      const r = await compose(file, { PluginAddress: '192.0.2.11' });
      expect(r.exitCode, r.stderr).to.equal(0);
      const resolved = (YAML.parse(r.stdout) as { services: Record<string, Service> }).services;
      const ours = loadCompose(file);
      expect(Object.keys(resolved).sort()).to.deep.equal(Object.keys(ours).sort());
      for (const [svc, s] of Object.entries(ours)) {
        const got = resolved[svc]!;
        const view = (x: Service) => ({
          container_name: x.container_name,
          image: x.image,
          target: x.build?.target,
          network_mode: x.network_mode,
          init: x.init,
          restart: x.restart,
          privileged: x.privileged ?? false,
          cap_add: [...(x.cap_add ?? [])].sort(),
          security_opt: [...(x.security_opt ?? [])].sort(),
          pid: x.pid ?? null,
          command: x.command ?? null,
        });
        expect(view(got), svc).to.deep.equal(view(s));
        expect(got.build?.args, svc).to.deep.equal({ NODE_IMAGE: 'node:20.20.2-bookworm-slim' });
        expect(got.build?.context, svc).to.equal(ROOT);
      }
      const mirror = await compose(file, { PluginAddress: '192.0.2.11', NODE_IMAGE: 'mirror.example/library/node:20.20.2-bookworm-slim' });
      for (const s of Object.values((YAML.parse(mirror.stdout) as { services: Record<string, Service> }).services)) {
        expect(s.build?.args?.NODE_IMAGE).to.equal('mirror.example/library/node:20.20.2-bookworm-slim');
      }
    });

    it(`${name}: refuses to start without PluginAddress, naming it`, async () => {
      const r = await compose(path.join(COMPOSE_DIR, name), {});
      expect(r.exitCode).to.not.equal(0);
      expect(r.stderr).to.include('set PluginAddress to host one');
    });
  }

  it('refuses a top-level name, as the files had it (what the static check guards against)', async () => {
    // Beside a copy of first-host.yaml at the same depth, so its build context (../..) is still the repository.
    const dir = fs.mkdtempSync(path.join(ROOT, 'dist', 'compose-'));
    try {
      const file = path.join(dir, 'first-host.yaml');
      fs.writeFileSync(file, `name: calico\n${fs.readFileSync(path.join(COMPOSE_DIR, 'first-host.yaml'), 'utf8')}`);
      const r = await compose(file, { PluginAddress: '192.0.2.11' });
      expect(r.exitCode).to.not.equal(0);
      expect(r.stderr).to.include("'name' does not match any of the regexes");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('sends as build context exactly the files the Dockerfile copies (docker-py, as compose v1 builds, reads the root .dockerignore)', async () => {
    const program = [
      'import json, os',
      'from docker.utils.build import exclude_paths',
      "patterns = [l.strip() for l in open('.dockerignore') if l.strip() and not l.strip().startswith('#')]",
      // Its answer has the folders too; the files are what matters.
      "print(json.dumps(sorted(p for p in exclude_paths('.', patterns, dockerfile='docker/Dockerfile') if os.path.isfile(p))))",
    ].join('\n');
    const r = await execa('python3', ['-c', program], { cwd: ROOT });
    const copied = [...parseStages(fs.readFileSync(DOCKERFILE, 'utf8')).values()].flatMap((s) =>
      s.copies.filter((c) => c.from === null).flatMap((c) => c.sources.flatMap(filesUnder)),
    );
    expect(JSON.parse(r.stdout)).to.deep.equal([...new Set([...copied, 'docker/Dockerfile', '.dockerignore'])].sort());
  });
});
