/**
 * `npm run test:docker` (scripts/test-docker, issue #18) without an engine:
 * what it takes from docs/docker.md is still on the page (so a change of the
 * page fails here, in npm test, rather than in the engine run), and what it
 * runs keeps the machine alone: every dockerd with no network settings and
 * everything under its own folder, every namespace of its own before a mount.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { ROOT } from '../support/process.js';

const SCRIPT = path.join(ROOT, 'scripts/test-docker');
const IN_NAMESPACE = path.join(ROOT, 'scripts/docker-test/dockerd-in-namespace');
const DOC = path.join(ROOT, 'scripts/docker-test/doc.mjs');

const doc = (...args: string[]) => execa('node', [DOC, ...args], { reject: false });

/** The single-quoted arguments of every `documented` call in the script (continuation lines joined). */
function documentedLiterals(script: string): string[] {
  const joined = script.replace(/\\\n\s*/g, ' ');
  return [...joined.matchAll(/^\s*documented ((?:'[^']*'\s*)+)$/gm)].flatMap((m) => [...m[1]!.matchAll(/'([^']*)'/g)].map((q) => q[1]!));
}

describe('npm run test:docker (scripts/test-docker)', () => {
  const script = fs.readFileSync(SCRIPT, 'utf8');
  const inNamespace = fs.readFileSync(IN_NAMESPACE, 'utf8');

  it('is what npm run test:docker runs, and its scripts parse', async () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts['test:docker']).to.equal('scripts/test-docker');
    for (const file of [SCRIPT, IN_NAMESPACE]) {
      expect((fs.statSync(file).mode & 0o111) !== 0, file).to.equal(true);
      const r = await execa('bash', ['-n', file], { reject: false });
      expect(r.exitCode, r.stderr).to.equal(0);
    }
  });

  it('runs in CI after the main tests, and the README and docs/docker.md say how to run it', () => {
    const ci = fs.readFileSync(path.join(ROOT, '.ci/run'), 'utf8').split('\n');
    expect(ci.indexOf('npm run test:docker')).to.be.greaterThan(ci.indexOf('npm test'));
    expect(ci.indexOf('npm test')).to.be.greaterThan(0);
    expect(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8')).to.include('`npm run test:docker`');
    expect(fs.readFileSync(path.join(ROOT, 'docs/docker.md'), 'utf8')).to.include('### On a Docker engine: `npm run test:docker`');
  });

  describe('docs/docker.md still has what the engine test runs', () => {
    it("step 1's block, step 2's felix.txt and step 6's network_container function, none with a heredoc to run", async () => {
      const block = await doc('block', 'for module in');
      expect(block.exitCode, block.stderr).to.equal(0);
      expect(block.stdout).to.match(/^for module in .*\n[\s\S]*\nmkdir -p .*\/opt\/plugin\/data$/);
      const fn = await doc('function', 'network_container');
      expect(fn.exitCode, fn.stderr).to.equal(0);
      expect(fn.stdout).to.match(/^network_container\(\) \{[\s\S]*network-container --netns[\s\S]*\n\}$/);
      const felixTxt = await doc('heredoc', '/opt/plugin/felix.txt');
      expect(felixTxt.exitCode, felixTxt.stderr).to.equal(0);
      expect(felixTxt.stdout).to.match(/^\[felix host-1\]\nip=192\.0\.2\.11\n/);
      // The page's addresses the script maps onto its fabric.
      for (const addr of ['192.0.2.11', '192.0.2.12', '2001:db8::11', '2001:db8::12'])
        expect(felixTxt.stdout)
          .to.include(addr)
          .and.to.satisfy(() => script.includes(addr));
    });

    it('prints no block that holds a heredoc (a cut one would run prose as commands)', async () => {
      const r = await doc('block', "cat > /opt/plugin/felix.txt <<'EOF'");
      expect(r.exitCode).to.equal(1);
      expect(r.stderr).to.include('has a heredoc');
    });

    it('the commands the script checks with `documented`, and the compose lines it builds', async () => {
      const literals = documentedLiterals(script);
      expect(literals).to.include.members(['docker restart felix', 'docker exec bird birdc show protocols', 'cp /opt/plugin/felix.txt /opt/plugin/data/']);
      const compose: string[] = [];
      for (const c of ['docker compose', 'docker-compose']) {
        for (const f of ['first-host', 'other-host']) for (const verb of ['up -d', 'down']) compose.push(`${c} -p calico -f docker/compose/${f}.yaml ${verb}`);
      }
      expect(script).to.include('line="${COMPOSE_ON[n - 1]} -p calico -f ${FILES[n - 1]} $*"');
      const r = await doc('has', ...literals, ...compose, 'export PluginAddress=192.0.2.11');
      expect(r.exitCode, r.stderr).to.equal(0);
    });

    it('counts a command shown only as part of a longer one as not shown', async () => {
      const r = await doc('has', 'docker-compose -p calico -f docker/compose/first-host.yaml up');
      expect(r.exitCode).to.equal(1);
      expect(r.stderr).to.include('does not show: docker-compose -p calico -f docker/compose/first-host.yaml up');
    });
  });

  describe('leaves the machine alone', () => {
    it('starts dockerd only in dockerd-in-namespace, with no network settings and everything under its folder', () => {
      expect(script).to.not.match(/^\s*(exec\s+)?dockerd\b/m);
      const exec = inNamespace
        .slice(inNamespace.indexOf('exec dockerd'))
        .replace(/\\\n\s*/g, ' ')
        .split('\n')[0]!;
      for (const flag of ['--iptables=false', '--ip6tables=false', '--ip-forward=false', '--ip-masq=false', '--bridge=none']) expect(exec).to.include(flag);
      for (const flag of [
        '--data-root "$dir/data"',
        '--exec-root "$dir/exec"',
        '--pidfile "$dir/dockerd.pid"',
        '-H "unix://$dir/docker.sock"',
        '--config-file "$dir/daemon.json"',
        '--cgroup-parent "/$cgroup_parent"',
      ]) {
        expect(exec).to.include(flag);
      }
      expect(inNamespace).to.match(/case \$dir in \/tmp\/\*\) ;; \*\) fail/);
    });

    it('mounts nothing before checking it has a mount namespace (and a host its network and UTS ones) of its own', () => {
      const lines = inNamespace.split('\n');
      const check = lines.findIndex((l) => l.includes('/proc/self/ns/mnt') && l.includes('/proc/1/ns/mnt') && l.includes('|| fail'));
      const firstMount = lines.findIndex((l) => /^\s*mount\b/.test(l));
      expect(check).to.be.at.least(0);
      expect(firstMount).to.be.greaterThan(check);
      const host = lines.findIndex((l) => l.trim() === 'host)');
      const hostMount = lines.findIndex((l, i) => i > host && /^\s*mount\b/.test(l));
      for (const ns of ['net', 'uts']) {
        const i = lines.findIndex((l) => l.includes(`/proc/self/ns/${ns}`) && l.includes('|| fail'));
        expect(i, ns).to.be.greaterThan(host).and.lessThan(hostMount);
      }
    });

    it('runs every engine in namespaces with private mount propagation, and host commands inside a host', () => {
      const unshares = [...script.matchAll(/^\s*unshare .*$/gm)].map((m) => m[0]);
      expect(unshares).to.have.length(1);
      expect(unshares[0]).to.include('--propagation private');
      expect(script).to.include('start_engine build "--mount" build');
      expect(script).to.include('start_engine "h$n" "--net --mount --uts" host');
      // The fabric is made inside host-1's network namespace, never the machine's.
      const linkAdds = script.split('\n').filter((l) => /\bip link add\b/.test(l));
      expect(linkAdds).to.have.length(1);
      expect(linkAdds[0]).to.match(/^nsenter -t "\$p1" -n -- ip link add eth0 type veth peer name eth0 netns "\$p2"$/);
      const ipChanges = script.split('\n').filter((x) => /\bip (-6 )?(addr|route|link|neigh) (add|set|del|replace)\b/.test(x));
      expect(ipChanges).to.have.length(4);
      for (const l of ipChanges) expect(l, l).to.match(/^\s*nsenter -t ("\$\(engine_pid "h\$n"\)"|"\$p1") -n -- ip /);
    });

    it("touches neither the machine's Docker nor its network settings", () => {
      const code = script
        .split('\n')
        .filter((l) => !/^\s*#/.test(l))
        .join('\n');
      expect(code).to.not.match(/\/var\/lib\/docker|\/run\/docker\.sock|systemctl (start|enable|restart)|service docker start/);
      expect(code).to.not.match(/^\s*(iptables|ip6tables|ipset|sysctl)\b/m);
      expect(code).to.include('systemctl disable --now docker docker.socket containerd');
      expect(code).to.match(/^trap cleanup EXIT$/m);
    });
  });
});
