/**
 * docker/Dockerfile, checked without a Docker engine (none runs here): it
 * lints clean (dockerfile-utils, the linter of the VS Code Docker extension,
 * on dockerfile-ast's syntax tree), builds with the legacy builder as well as
 * BuildKit (issue #18), takes its base images as build arguments, copies only
 * files that exist and that the build context lets through, and every command
 * an image runs is a package.json bin or a file the image has.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { validate } from 'dockerfile-utils';
import { ROOT } from '../support/process.js';
import {
  BASE_FILES,
  BINS,
  DOCKERFILE,
  aptPackages,
  buildkitOnly,
  chain,
  dockerignoreRules,
  filesUnder,
  ignoredBy,
  notMadeExecutable,
  parseDockerfile,
  parseStages,
  runProblems,
  whatRuns,
} from '../support/docker-files.js';

const TARGETS = ['felix', 'plugin', 'bird', 'util'];

describe('docker/Dockerfile', () => {
  const text = fs.readFileSync(DOCKERFILE, 'utf8');
  const { args, stages } = parseDockerfile(text);

  it('lints clean', () => {
    expect(validate(text).map((d) => `line ${d.range.start.line + 1}: ${typeof d.message === 'string' ? d.message : d.message.value}`)).to.deep.equal([]);
  });

  it('the checks here catch a broken Dockerfile', () => {
    expect(validate('FROM node:20 AS a\nCOPY only-one-argument\nRUNN true\n').map((d) => d.message)).to.have.members([
      'COPY requires at least two arguments',
      'Unknown instruction: RUNN',
    ]);
    expect(() => parseStages('FROM node:20 AS a\nCMD calico-felix\n')).to.throw('CMD must use the exec (JSON) form');
    expect(() => parseStages('FROM ${IMAGE} AS a\n')).to.throw('FROM uses IMAGE');
    const s = parseStages('FROM node:20 AS a\nCMD ["not-a-bin"]\n');
    expect(runProblems(s, 'a')).to.deep.equal(['not-a-bin is not a package.json bin']);
  });

  describe('builds with the legacy builder too (issue #18)', () => {
    it('uses nothing only BuildKit builds: no syntax directive, no flag but COPY --from, no heredoc', () => {
      expect(buildkitOnly(text)).to.deep.equal([]);
      expect(text.split('\n')[0], 'first line').to.not.match(/^#\s*syntax\s*=/i);
    });

    const buildkitFeatures: [string, string, string][] = [
      ['a syntax directive', '# syntax=docker/dockerfile:1\nFROM debian:12 AS a\n', 'line 1: parser directive syntax=docker/dockerfile:1'],
      ['COPY --chmod', 'FROM debian:12 AS a\nCOPY --chmod=0755 x /x\n', 'line 2: COPY --chmod'],
      ['COPY --chown', 'FROM debian:12 AS a\nCOPY --chown=1:1 x /x\n', 'line 2: COPY --chown'],
      ['COPY --link', 'FROM debian:12 AS a\nCOPY --link x /x\n', 'line 2: COPY --link'],
      ['RUN --mount', 'FROM debian:12 AS a\nRUN --mount=type=cache,target=/var/cache/apt apt-get update\n', 'line 2: RUN --mount'],
      ['RUN --network', 'FROM debian:12 AS a\nRUN --network=none true\n', 'line 2: RUN --network'],
      ['a RUN heredoc', 'FROM debian:12 AS a\nRUN <<EOF\ntrue\nEOF\n', 'line 2: RUN with a heredoc'],
      ['a COPY heredoc', 'FROM debian:12 AS a\nCOPY <<EOF /x\nhello\nEOF\n', 'line 2: COPY with a heredoc'],
    ];
    for (const [name, dockerfile, problem] of buildkitFeatures) {
      it(`the check catches ${name}`, () => {
        expect(buildkitOnly(dockerfile)).to.deep.equal([problem]);
      });
    }
    it('the check lets COPY --from and the escape directive through', () => {
      expect(buildkitOnly('# escape=\\\nFROM debian:12 AS a\nFROM debian:12 AS b\nCOPY --from=a /x /x\n')).to.deep.equal([]);
    });

    it('reads the ignore file at the context root (a docker/Dockerfile.dockerignore is read by BuildKit only)', () => {
      expect(fs.existsSync(path.join(ROOT, 'docker/Dockerfile.dockerignore'))).to.equal(false);
      expect(fs.readdirSync(path.join(ROOT, 'docker')).filter((f) => f.endsWith('.dockerignore'))).to.deep.equal([]);
      expect(dockerignoreRules()[0]).to.equal('*');
    });

    it('makes the scripts an image runs executable with a RUN chmod (COPY keeps the checkout mode)', () => {
      for (const t of TARGETS) expect(notMadeExecutable(stages, t), t).to.deep.equal([]);
      const scripts = TARGETS.flatMap((t) => [whatRuns(stages, t).entrypoint?.[0], whatRuns(stages, t).cmd?.[0]]).filter((c) =>
        c?.startsWith('/usr/local/bin/'),
      );
      expect(scripts).to.have.members(['/usr/local/bin/calico-entrypoint', '/usr/local/bin/run-bird']);
    });

    it('the chmod check catches a copied script left as the checkout has it', () => {
      const s = parseStages('FROM debian:12.12-slim AS a\nCOPY x /usr/local/bin/x\nCMD ["/usr/local/bin/x"]\n');
      expect(notMadeExecutable(s, 'a')).to.deep.equal(['/usr/local/bin/x (COPY at line 2) is not made executable by a later RUN chmod']);
      const before = parseStages('FROM debian:12.12-slim AS a\nRUN chmod 0755 /usr/local/bin/x\nCOPY x /usr/local/bin/x\nCMD ["/usr/local/bin/x"]\n');
      expect(notMadeExecutable(before, 'a'), 'a chmod before the COPY').to.have.length(1);
      const other = parseStages('FROM debian:12.12-slim AS a\nCOPY x /usr/local/bin/x\nRUN chmod 0755 /usr/local/bin/xy\nCMD ["/usr/local/bin/x"]\n');
      expect(notMadeExecutable(other, 'a'), 'a chmod of another file').to.have.length(1);
    });
  });

  it('has the four images', () => {
    for (const t of TARGETS) expect(stages.has(t), t).to.equal(true);
  });

  it('takes every external base image from a build argument whose default is the official image, pinned', () => {
    const external = [...stages.values()].filter((s) => !stages.has(s.base));
    expect(external.map((s) => s.name)).to.have.members(['node-base', 'util']);
    for (const s of external) {
      const arg = /^\$\{([A-Z_]+)\}$/.exec(s.baseAsWritten)?.[1];
      expect(arg, `stage ${s.name}: FROM ${s.baseAsWritten} is a build argument`).to.be.a('string');
      // Official: a Docker Hub library image, no registry host or user; pinned: a tag with a version.
      expect(args[arg!], `stage ${s.name}: ${arg}'s default`).to.match(/^[a-z0-9-]+:[^:/]*\d[^:/]*$/);
      expect(BASE_FILES, `stage ${s.name}: base files known`).to.have.property(s.base);
    }
    expect(args).to.deep.equal({ NODE_IMAGE: 'node:20.20.2-bookworm-slim', DEBIAN_IMAGE: 'debian:12.12-slim' });
    const mirrored = parseDockerfile(text, { NODE_IMAGE: 'mirror.example/library/node:20.20.2-bookworm-slim' }).stages;
    expect(mirrored.get('node-base')!.base).to.equal('mirror.example/library/node:20.20.2-bookworm-slim');
    expect(mirrored.get('util')!.base).to.equal('debian:12.12-slim');
  });

  it('copies only files that exist and that the build context lets through', () => {
    const ignored = ignoredBy(dockerignoreRules());
    let checked = 0;
    for (const s of stages.values()) {
      for (const c of s.copies) {
        if (c.from !== null) {
          expect([...stages.keys()], `COPY --from=${c.from} in ${s.name}`).to.include(c.from);
          continue;
        }
        for (const src of c.sources) {
          expect(fs.existsSync(path.join(ROOT, src)), `${src} (stage ${s.name})`).to.equal(true);
          for (const f of filesUnder(src)) {
            expect(ignored(f), `${f} is excluded by the .dockerignore`).to.equal(false);
            checked++;
          }
        }
      }
    }
    expect(checked).to.be.greaterThan(10);
    expect(ignored('node_modules/zeromq/package.json')).to.equal(true);
    expect(ignored('dist/src/felix/main.js')).to.equal(true);
  });

  it('runs, in every image, a package.json bin or a file the image has', () => {
    for (const t of TARGETS) expect(runProblems(stages, t), t).to.deep.equal([]);
  });

  it("has every package.json bin's source, an executable node script", () => {
    for (const [name, file] of Object.entries(BINS)) {
      const source = path.join(ROOT, file.replace(/^dist\//, '').replace(/\.js$/, '.ts'));
      expect(fs.existsSync(source), `${name}: ${source}`).to.equal(true);
      expect(fs.readFileSync(source, 'utf8'), name).to.match(/^#!\/usr\/bin\/env node\n/);
    }
  });

  const tools: [string, string[]][] = [
    // iptables brings ip6tables; procps brings the sysctl network-container runs for an IPv6 address.
    ['felix', ['iptables', 'ipset', 'iproute2', 'procps']],
    ['bird', ['bird2']],
    ['util', ['iputils-ping', 'telnet', 'traceroute', 'curl', 'netcat-openbsd', 'iperf3', 'tini']],
  ];
  for (const [target, packages] of tools) {
    it(`installs ${packages.join(', ')} in the ${target} image`, () => {
      expect(chain(stages, target).flatMap(aptPackages)).to.include.members(packages);
    });
  }

  it('util: tini is PID 1 and runs bash; docker stop sends SIGHUP, which an interactive bash obeys (issue #18)', () => {
    const util = stages.get('util')!;
    expect(util.entrypoint).to.deep.equal(['/usr/bin/tini', '--']);
    expect(util.cmd).to.deep.equal(['/bin/bash']);
    expect(util.stopsignal).to.equal('SIGHUP');
  });

  it('builds the Node images in stages: compile, then dist and production dependencies only', () => {
    const runtime = chain(stages, 'felix').find((s) => s.name === 'node-runtime')!;
    expect(runtime.copies.map((c) => `${c.from ?? ''}:${c.sources.join(',')}`)).to.have.members([
      'production-deps:/opt/calico/node_modules',
      'build:/src/dist/src',
      ':package.json',
    ]);
    expect(
      stages
        .get('production-deps')!
        .runs.map((r) => r.text)
        .join('\n'),
    ).to.include('npm ci --omit=dev');
    for (const t of ['felix', 'plugin', 'bird'])
      expect(
        chain(stages, t).map((s) => s.name),
        t,
      )
        .to.include('node-runtime')
        .and.not.include('build');
  });

  it("prunes zeromq's prebuilt addons to those the image's Node loads, after installing and in the stage the images copy node_modules from", () => {
    const deps = stages.get('production-deps')!;
    const install = deps.runs.find((r) => r.text.includes('npm ci'))!;
    const copy = deps.copies.find((c) => c.from === null && c.sources.includes('docker/prune-zeromq.mjs'));
    expect(copy, 'docker/prune-zeromq.mjs is copied into production-deps').to.not.equal(undefined);
    const prune = deps.runs.find((r) => r.text.includes(`node ${copy!.dest} node_modules/zeromq`));
    expect(prune, 'production-deps runs it on node_modules/zeromq').to.not.equal(undefined);
    expect(prune!.line).to.be.greaterThan(install.line).and.greaterThan(copy!.line);
    // The stage's WORKDIR is /opt/calico, whose node_modules the Node images copy.
    expect(
      chain(stages, 'felix')
        .flatMap((s) => s.copies)
        .map((c) => `${c.from}:${c.sources.join(',')}`),
    ).to.include('production-deps:/opt/calico/node_modules');
  });
});
