/**
 * The images' start scripts, run as the images run them but without Docker:
 * the felix entrypoint turns environment variables into config files that
 * Felix's own loader accepts, and run-bird generates BIRD's config and runs
 * BIRD in the foreground (inside a namespace of this test, never the root one).
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { loadFelixConfig } from '../../src/felix/config.js';
import { loadConfig } from '../../src/common/config.js';
import { ROOT, waitFor } from '../support/process.js';

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
      execa('sh', [ENTRYPOINT, ...command], { env: { PATH: process.env.PATH!, CALICO_CONFIG_DIR: path.join(dir, 'etc'), CALICO_LOG_DIR: path.join(dir, 'log'), ...env }, extendEnv: false, reject: false });

    it('writes felix.cfg and acl_manager.cfg from the environment, which the config loaders accept, then runs the command', async () => {
      const r = await entrypoint({ PluginAddress: '10.240.0.2', FelixHostname: 'instance-2', ResyncIntervalSecs: '60', LogSeverityScreen: 'INFO', ConnectionTimeoutMillis: '10000' });
      expect(r.exitCode, r.stderr).to.equal(0);
      expect(r.stdout.split('\n')).to.deep.equal(['acl_manager.cfg', 'felix.cfg']);
      const { config, warnings } = loadFelixConfig(path.join(dir, 'etc/felix.cfg'));
      expect(warnings).to.deep.equal([]);
      expect(config.global).to.deep.include({ PluginAddress: '10.240.0.2', ACLAddress: '10.240.0.2', FelixHostname: 'instance-2', ResyncIntervalSecs: 60 });
      expect(config.log).to.deep.include({ LogFilePath: path.join(dir, 'log/felix.log'), LogSeverityScreen: 'INFO' });
      expect(config.connection).to.deep.include({ ConnectionTimeoutMillis: 10000 });
      const acl = fs.readFileSync(path.join(dir, 'etc/acl_manager.cfg'), 'utf8');
      expect(acl).to.equal(`[global]\nPluginAddress = 10.240.0.2\n\n[log]\nLogFilePath = ${path.join(dir, 'log/acl_manager.log')}\nLogSeverityScreen = INFO\n`);
      const parsed = loadConfig(path.join(dir, 'etc/acl_manager.cfg'), { global: { PluginAddress: { parse: String, required: true } }, log: { LogFilePath: { parse: String }, LogSeverityScreen: { parse: String } } });
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
    const birdEnv = (env: Record<string, string>) => ({ PATH: `${bin}:${process.env.PATH}`, BIRD_LOG_DIR: path.join(dir, 'log'), BIRD_CONF: path.join(dir, 'etc/bird.conf'), BIRD_SOCKET: path.join(dir, 'run/bird.ctl'), ...env });
    /** `sh run-bird` inside the namespace (never the root one: BIRD may start) with `vars` as its whole environment. */
    const runBirdArgs = (vars: Record<string, string>) => ['netns', 'exec', ns, 'env', ...Object.entries(vars).map(([k, v]) => `${k}=${v}`), 'sh', RUN_BIRD];
    /** Runs run-bird where it is expected to stop before BIRD starts. */
    const runBirdToExit = (env: Record<string, string>) => execa('ip', runBirdArgs(birdEnv(env)), { reject: false, timeout: 10000 });

    /** Runs run-bird in the namespace until BIRD answers on its socket; returns the config it ran with. */
    async function runBird(env: Record<string, string>): Promise<string> {
      const vars = birdEnv(env);
      const child = spawn('ip', runBirdArgs(vars), { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise((r) => child.once('exit', r));
      try {
        await waitFor('BIRD to answer on its socket', async () => {
          if (child.exitCode !== null) throw new Error(`run-bird exited ${child.exitCode}: ${stderr}`);
          return /Daemon is up and running/.test((await execa('birdc', ['-s', vars.BIRD_SOCKET, 'show', 'status'])).stdout);
        }, 10000, 100);
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
      fs.writeFileSync(felixTxt, '[felix instance-1]\nip=198.18.0.1\nip6=fd00:198:18::1\nhost=instance-1.lab\n\n[felix instance-2]\nip=198.18.0.2\nip6=fd00:198:18::2\nhost=instance-2.lab\n');
      const conf = await runBird({ FELIX_TXT: felixTxt, BIRD_HOSTNAME: 'instance-1.lab', BIRD_AS: '65010', BIRD_PREFIXES: '192.168.0.0/16 fd00:192:168::/64' });
      expect(conf).to.include('router id 198.18.0.1;').and.include('neighbor 198.18.0.2 as 65010;').and.include(`log "${path.join(dir, 'log/bird.log')}" 10000000 "${path.join(dir, 'log/bird.log.old')}" all;`);
      expect(conf).to.include('define ENDPOINT_ROUTES_V6 = [ fd00:192:168::/64{128,128} ];').and.include('neighbor fd00:198:18::2 as 65010;');
    });

    it('takes the host list from CALICO_HOSTS instead; IPv4 hosts get the IPv4 range only', async () => {
      const conf = await runBird({ CALICO_HOSTS: 'instance-1=198.18.0.1 instance-2=198.18.0.2', BIRD_HOSTNAME: 'instance-1' });
      expect(conf).to.include('neighbor 198.18.0.2 as 64511;').and.include('define ENDPOINT_ROUTES_V4 = [ 192.168.0.0/16{32,32} ];').and.not.include('ipv6');
    });

    it('takes name=ip,ip6 in CALICO_HOSTS: an IPv6 session per peer, both default ranges', async () => {
      const conf = await runBird({ CALICO_HOSTS: 'instance-1=198.18.0.1,fd00:198:18::1 instance-2=198.18.0.2,fd00:198:18::2', BIRD_HOSTNAME: 'instance-1' });
      expect(conf).to.include('neighbor 198.18.0.2 as 64511;').and.include('local fd00:198:18::1 as 64511;').and.include('neighbor fd00:198:18::2 as 64511;');
      expect(conf).to.include('define ENDPOINT_ROUTES_V4 = [ 192.168.0.0/16{32,32} ];').and.include('define ENDPOINT_ROUTES_V6 = [ fd00:192:168::/48{128,128} ];');
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
