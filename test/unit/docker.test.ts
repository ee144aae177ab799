/**
 * The Docker images and compose files, checked without a Docker engine (none
 * runs here): the Dockerfile lints clean (dockerfile-utils, the linter of the
 * VS Code Docker extension, on dockerfile-ast's syntax tree), copies only
 * files that exist and that the build context lets through, and every
 * command an image or a compose service runs is a package.json bin or a file
 * the image has; the compose files carry the seed's run flags and volumes.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { DockerfileParser, Instruction } from 'dockerfile-ast';
import { validate } from 'dockerfile-utils';
import YAML from 'yaml';
import { ROOT } from '../support/process.js';

const DOCKERFILE = path.join(ROOT, 'docker/Dockerfile');
const BINS: Record<string, string> = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).bin;

interface Copy {
  from: string | null;
  sources: string[];
  dest: string;
}

interface Stage {
  name: string;
  /** A stage name or an external image. */
  base: string;
  copies: Copy[];
  runs: string[];
  entrypoint: string[] | null;
  cmd: string[] | null;
}

function execForm(i: Instruction & { getJSONStrings?: () => { getJSONValue(): string }[] }): string[] {
  const json = i.getJSONStrings?.() ?? [];
  if (json.length === 0) throw new Error(`line ${i.getRange().start.line + 1}: ${i.getKeyword()} must use the exec (JSON) form`);
  return json.map((s) => s.getJSONValue());
}

function parseStages(text: string): Map<string, Stage> {
  const stages = new Map<string, Stage>();
  let current: Stage | null = null;
  for (const i of DockerfileParser.parse(text).getInstructions()) {
    const keyword = i.getKeyword();
    const args = i.getArguments().map((a) => a.getValue());
    if (keyword === 'FROM') {
      const [base, as, name] = args;
      expect(as?.toUpperCase(), `FROM ${base} names its stage`).to.equal('AS');
      current = { name: name!, base: base!, copies: [], runs: [], entrypoint: null, cmd: null };
      stages.set(current.name, current);
      continue;
    }
    if (!current) throw new Error(`${keyword} before FROM`);
    if (keyword === 'COPY') {
      const from = (i as unknown as { getFromFlag(): { getValue(): string | null } | null }).getFromFlag()?.getValue() ?? null;
      current.copies.push({ from, sources: args.slice(0, -1), dest: args[args.length - 1]! });
    } else if (keyword === 'RUN') current.runs.push(i.getArgumentsContent() ?? '');
    else if (keyword === 'ENTRYPOINT') current.entrypoint = execForm(i);
    else if (keyword === 'CMD') current.cmd = execForm(i);
  }
  return stages;
}

/** The stage and the stages it is built on, nearest first. */
function chain(stages: Map<string, Stage>, name: string): Stage[] {
  const out: Stage[] = [];
  for (let s = stages.get(name); s; s = stages.get(s.base)) out.push(s);
  return out;
}

/** Docker's .dockerignore: last matching rule wins; a pattern matching a folder covers what is inside. */
function ignoredBy(rules: string[]): (file: string) => boolean {
  const compiled = rules.map((rule) => {
    const include = rule.startsWith('!');
    const body = include ? rule.slice(1) : rule;
    const re = new RegExp(`^${body.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*\*/g, '\0').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]').replace(/\0/g, '.*')}$`);
    return { include, re };
  });
  return (file) => {
    const parts = file.split('/');
    const prefixes = parts.map((_, n) => parts.slice(0, n + 1).join('/'));
    let ignored = false;
    for (const { include, re } of compiled) if (prefixes.some((p) => re.test(p))) ignored = !include;
    return ignored;
  };
}

function filesUnder(rel: string): string[] {
  const abs = path.join(ROOT, rel);
  if (!fs.statSync(abs).isDirectory()) return [rel];
  return fs.readdirSync(abs).flatMap((e) => filesUnder(path.join(rel, e)));
}

/** Where COPY puts a source in the image (absolute destinations only). */
function copiedPaths(c: Copy): string[] {
  if (!c.dest.startsWith('/')) return [];
  return c.sources.map((s) => (c.dest.endsWith('/') || c.sources.length > 1 ? path.posix.join(c.dest, path.posix.basename(s)) : c.dest));
}

/** Files the base images are known to have (Debian: bash is essential). */
const BASE_FILES: Record<string, string[]> = {
  'debian:12.12-slim': ['/bin/bash', '/bin/sh'],
  'node:20.20.2-bookworm-slim': ['/bin/bash', '/bin/sh', '/usr/local/bin/node'],
};

/** Why `command` cannot run in the image built from `target`, or null if it can. */
function commandProblem(stages: Map<string, Stage>, target: string, command: string): string | null {
  const layers = chain(stages, target);
  const copied = layers.flatMap((s) => s.copies.filter((c) => c.from === null).flatMap(copiedPaths));
  const base = layers[layers.length - 1]!.base;
  const linksBins = layers.some((s) => s.runs.some((r) => r.includes('require("./package.json").bin') && r.includes('/usr/local/bin/')));
  if (command.startsWith('/')) return copied.includes(command) || (BASE_FILES[base] ?? []).includes(command) ? null : `${command} is not a file of the ${target} image`;
  if (copied.includes(`/usr/local/bin/${command}`)) return null;
  if (!(command in BINS)) return `${command} is not a package.json bin`;
  if (!linksBins) return `the ${target} image does not put package.json bins on the PATH`;
  return null;
}

/** The script an entrypoint runs, if it is one of ours that ends by running its arguments. */
function passesArguments(stages: Map<string, Stage>, target: string, entrypoint: string): boolean {
  const copy = chain(stages, target)
    .flatMap((s) => s.copies)
    .find((c) => c.from === null && copiedPaths(c).includes(entrypoint));
  return copy !== undefined && /\nexec "\$@"\n?$/.test(fs.readFileSync(path.join(ROOT, copy.sources[0]!), 'utf8'));
}

/** Problems with what an image (or a compose service overriding its command) runs. */
function runProblems(stages: Map<string, Stage>, target: string, command?: string[]): string[] {
  const layers = chain(stages, target);
  const entrypoint = layers.find((s) => s.entrypoint)?.entrypoint ?? null;
  const cmd = command ?? layers.find((s) => s.cmd)?.cmd ?? null;
  const problems: string[] = [];
  if (entrypoint) {
    const p = commandProblem(stages, target, entrypoint[0]!);
    if (p) problems.push(p);
    if (!passesArguments(stages, target, entrypoint[0]!)) return problems;
  }
  if (!cmd || cmd.length === 0) return [...problems, `the ${target} image runs nothing`];
  const p = commandProblem(stages, target, cmd[0]!);
  return p ? [...problems, p] : problems;
}

function aptPackages(stage: Stage): string[] {
  return stage.runs.flatMap((r) => [...r.matchAll(/apt-get install ([^&]*)/g)].flatMap((m) => m[1]!.split(/[\s\\]+/).filter((w) => w !== '' && !w.startsWith('-'))));
}

describe('docker/Dockerfile', () => {
  const text = fs.readFileSync(DOCKERFILE, 'utf8');
  const stages = parseStages(text);

  it('lints clean', () => {
    expect(validate(text).map((d) => `line ${d.range.start.line + 1}: ${d.message}`)).to.deep.equal([]);
  });

  it('the checks here catch a broken Dockerfile', () => {
    expect(validate('FROM node:20 AS a\nCOPY only-one-argument\nRUNN true\n').map((d) => d.message)).to.have.members(['COPY requires at least two arguments', 'Unknown instruction: RUNN']);
    expect(() => parseStages('FROM node:20 AS a\nCMD calico-felix\n')).to.throw('CMD must use the exec (JSON) form');
    const s = parseStages('FROM node:20 AS a\nCMD ["not-a-bin"]\n');
    expect(runProblems(s, 'a')).to.deep.equal(['not-a-bin is not a package.json bin']);
  });

  it('has the four images, and external bases are pinned', () => {
    for (const t of ['felix', 'plugin', 'bird', 'util']) expect(stages.has(t), t).to.equal(true);
    for (const s of stages.values()) {
      if (stages.has(s.base)) continue;
      expect(s.base, `stage ${s.name}`).to.match(/^[a-z0-9./-]+:[^:]*\d[^:]*$/);
      expect(BASE_FILES, `stage ${s.name}: base files known`).to.have.property(s.base);
    }
  });

  it('copies only files that exist and that the build context lets through', () => {
    const ignored = ignoredBy(
      fs
        .readFileSync(path.join(ROOT, 'docker/Dockerfile.dockerignore'), 'utf8')
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l !== '' && !l.startsWith('#')),
    );
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
    for (const t of ['felix', 'plugin', 'bird', 'util']) expect(runProblems(stages, t), t).to.deep.equal([]);
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
    ['util', ['iputils-ping', 'telnet', 'traceroute', 'curl', 'netcat-openbsd', 'iperf3']],
  ];
  for (const [target, packages] of tools) {
    it(`installs ${packages.join(', ')} in the ${target} image`, () => {
      expect(chain(stages, target).flatMap(aptPackages)).to.include.members(packages);
    });
  }

  it('builds the Node images in stages: compile, then dist and production dependencies only', () => {
    const runtime = chain(stages, 'felix').find((s) => s.name === 'node-runtime')!;
    expect(runtime.copies.map((c) => `${c.from ?? ''}:${c.sources.join(',')}`)).to.have.members(['production-deps:/opt/calico/node_modules', 'build:/src/dist/src', ':package.json']);
    expect(stages.get('production-deps')!.runs.join('\n')).to.include('npm ci --omit=dev');
    for (const t of ['felix', 'plugin', 'bird']) expect(chain(stages, t).map((s) => s.name), t).to.include('node-runtime').and.not.include('build');
  });
});

interface Service {
  image?: string;
  container_name?: string;
  build?: { context: string; dockerfile: string; target: string };
  command?: string[];
  network_mode?: string;
  privileged?: boolean;
  restart?: string;
  volumes?: string[];
  environment?: Record<string, string>;
  extends?: { file: string; service: string };
}

function loadCompose(file: string): Record<string, Service> {
  const doc = YAML.parse(fs.readFileSync(file, 'utf8'), { merge: true, uniqueKeys: true }) as { services: Record<string, Service> };
  const services: Record<string, Service> = {};
  for (const [name, s] of Object.entries(doc.services)) {
    if (!s.extends) {
      services[name] = s;
      continue;
    }
    const { extends: ext, ...rest } = s;
    const base = loadCompose(path.join(path.dirname(file), ext.file))[ext.service];
    expect(base, `${file}: ${name} extends ${ext.file}:${ext.service}`).to.not.equal(undefined);
    services[name] = { ...base, ...rest };
  }
  return services;
}

describe('docker/compose', () => {
  const stages = parseStages(fs.readFileSync(DOCKERFILE, 'utf8'));
  const roles: [string, Record<string, { target: string; logs: string }>][] = [
    [
      'first-host.yaml',
      {
        bird: { target: 'bird', logs: '/var/log/bird:/var/log/bird' },
        'plugin-network': { target: 'plugin', logs: '/var/log/calico:/var/log/calico' },
        'plugin-ep': { target: 'plugin', logs: '/var/log/calico:/var/log/calico' },
        felix: { target: 'felix', logs: '/var/log/calico:/var/log/calico' },
        aclmgr: { target: 'felix', logs: '/var/log/calico:/var/log/calico' },
      },
    ],
    [
      'other-host.yaml',
      {
        felix: { target: 'felix', logs: '/var/log/calico:/var/log/calico' },
        bird: { target: 'bird', logs: '/var/log/bird:/var/log/bird' },
      },
    ],
  ];

  for (const [fileName, expected] of roles) {
    describe(fileName, () => {
      const file = path.join(ROOT, 'docker/compose', fileName);
      const services = loadCompose(file);

      it('has the expected services', () => {
        expect(Object.keys(services)).to.have.members(Object.keys(expected));
      });

      for (const [name, want] of Object.entries(expected)) {
        it(`${name}: the seed's name and flags, its log volume, the ${want.target} image, and a command it has`, () => {
          const s = services[name]!;
          expect(s.container_name).to.equal(name);
          expect({ network_mode: s.network_mode, privileged: s.privileged, restart: s.restart }).to.deep.equal({ network_mode: 'host', privileged: true, restart: 'always' });
          expect(s.volumes).to.include(want.logs);
          expect(s.image).to.equal(`calico:${want.target}`);
          expect(s.build?.target).to.equal(want.target);
          expect(path.resolve(path.dirname(file), s.build!.context)).to.equal(ROOT);
          expect(path.resolve(ROOT, s.build!.dockerfile)).to.equal(DOCKERFILE);
          expect(runProblems(stages, want.target, s.command)).to.deep.equal([]);
        });
      }

      it('takes the addresses from the environment, required where the spec requires them', () => {
        for (const [name, s] of Object.entries(services)) {
          if (s.build?.target !== 'felix') continue;
          expect(s.environment?.PluginAddress, name).to.match(/^\$\{PluginAddress:\?.+\}$/);
          expect(s.environment?.FelixHostname, name).to.equal('${FelixHostname:-}');
        }
      });
    });
  }

  it('the resolver sees a missing base of extends', () => {
    const dir = fs.mkdtempSync(path.join(ROOT, 'dist', 'compose-'));
    try {
      fs.writeFileSync(path.join(dir, 'a.yaml'), 'services:\n  x:\n    extends: { file: b.yaml, service: nope }\n');
      fs.writeFileSync(path.join(dir, 'b.yaml'), 'services:\n  y:\n    image: calico:felix\n');
      expect(() => loadCompose(path.join(dir, 'a.yaml'))).to.throw('extends b.yaml:nope');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
