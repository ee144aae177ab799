/**
 * The Docker files as the tests read them (SPEC §10; no Docker engine runs
 * here): docker/Dockerfile as stages (dockerfile-ast's syntax tree, the base
 * images resolved from the ARGs before the first FROM), what in it only
 * BuildKit builds, what each image runs and whether it can, the root
 * .dockerignore as a matcher, and the compose files with `extends` resolved.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DockerfileParser, Flag, Instruction } from 'dockerfile-ast';
import YAML from 'yaml';
import { ROOT } from './process.js';

export const DOCKERFILE = path.join(ROOT, 'docker/Dockerfile');
/** The build context's ignore file: at the context root, where both builders read it. */
export const DOCKERIGNORE = path.join(ROOT, '.dockerignore');
export const COMPOSE_DIR = path.join(ROOT, 'docker/compose');
export const BINS = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> }).bin;

export interface Copy {
  from: string | null;
  sources: string[];
  dest: string;
  /** 1-based line of the COPY. */
  line: number;
}

export interface Run {
  text: string;
  line: number;
}

export interface Stage {
  name: string;
  /** A stage name or an external image (ARGs resolved). */
  base: string;
  /** The FROM's image as written, before ARGs are resolved. */
  baseAsWritten: string;
  copies: Copy[];
  runs: Run[];
  entrypoint: string[] | null;
  cmd: string[] | null;
  stopsignal: string | null;
}

export interface ParsedDockerfile {
  /** The ARGs before the first FROM, with their defaults (null: none). */
  args: Record<string, string | null>;
  stages: Map<string, Stage>;
}

const lineOf = (i: Instruction): number => i.getRange().start.line + 1;

function execForm(i: Instruction & { getJSONStrings?: () => { getJSONValue(): string }[] }): string[] {
  const json = i.getJSONStrings?.() ?? [];
  if (json.length === 0) throw new Error(`line ${lineOf(i)}: ${i.getKeyword()} must use the exec (JSON) form`);
  return json.map((s) => s.getJSONValue());
}

/** `${NAME}` and `$NAME` replaced from `values`; an unknown or valueless name is an error. */
function resolveArgs(word: string, values: Record<string, string | null>, line: number): string {
  return word.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_, braced: string | undefined, bare: string | undefined) => {
    const name = (braced ?? bare)!;
    const value = values[name];
    if (value === undefined || value === null) throw new Error(`line ${line}: FROM uses ${name}, which no ARG before the first FROM gives a value`);
    return value;
  });
}

/** The Dockerfile's stages, bases resolved with `buildArgs` over the ARG defaults (as `--build-arg` does). */
export function parseDockerfile(text: string, buildArgs: Record<string, string> = {}): ParsedDockerfile {
  const dockerfile = DockerfileParser.parse(text);
  const args: Record<string, string | null> = {};
  for (const a of dockerfile.getInitialARGs()) {
    const p = a.getProperty();
    if (p) args[p.getName()] = p.getValue();
  }
  const values = { ...args, ...buildArgs };
  const stages = new Map<string, Stage>();
  let current: Stage | null = null;
  for (const i of dockerfile.getInstructions()) {
    const keyword = i.getKeyword();
    const words = i.getArguments().map((a) => a.getValue());
    if (keyword === 'FROM') {
      const [image, as, name] = words;
      if (as?.toUpperCase() !== 'AS' || !name) throw new Error(`line ${lineOf(i)}: FROM ${image} does not name its stage`);
      current = {
        name,
        base: resolveArgs(image!, values, lineOf(i)),
        baseAsWritten: image!,
        copies: [],
        runs: [],
        entrypoint: null,
        cmd: null,
        stopsignal: null,
      };
      stages.set(name, current);
      continue;
    }
    if (!current) {
      if (keyword === 'ARG') continue;
      throw new Error(`line ${lineOf(i)}: ${keyword} before FROM`);
    }
    if (keyword === 'COPY') {
      const from = (i as unknown as { getFromFlag(): { getValue(): string | null } | null }).getFromFlag()?.getValue() ?? null;
      current.copies.push({ from, sources: words.slice(0, -1), dest: words[words.length - 1]!, line: lineOf(i) });
    } else if (keyword === 'RUN') current.runs.push({ text: i.getArgumentsContent() ?? '', line: lineOf(i) });
    else if (keyword === 'ENTRYPOINT') current.entrypoint = execForm(i);
    else if (keyword === 'CMD') current.cmd = execForm(i);
    else if (keyword === 'STOPSIGNAL') current.stopsignal = words[0] ?? null;
  }
  return { args, stages };
}

export const parseStages = (text: string): Map<string, Stage> => parseDockerfile(text).stages;

/**
 * The only flags allowed: COPY --from, which both builders take. (The legacy
 * builder also takes COPY --chown, but nothing here needs it; COPY --chmod,
 * --link, --parents, --exclude, RUN --mount, --network, --security are
 * BuildKit's.)
 */
const ALLOWED_FLAGS: Record<string, string[]> = { COPY: ['from'] };

/**
 * What in a Dockerfile only BuildKit builds (issue #18: Debian 12's docker
 * CLI builds with the legacy builder and has no buildx), one line each:
 * parser directives other than escape (`# syntax=` makes BuildKit fetch a
 * frontend image), instruction flags other than COPY --from (COPY --chmod,
 * RUN --mount, ...), and heredocs. [] for a Dockerfile both build.
 */
export function buildkitOnly(text: string): string[] {
  const dockerfile = DockerfileParser.parse(text);
  const problems: string[] = [];
  for (const d of dockerfile.getDirectives()) {
    if (d.getName().toLowerCase() !== 'escape') problems.push(`line ${d.getRange().start.line + 1}: parser directive ${d.getName()}=${d.getValue()}`);
  }
  for (const i of dockerfile.getInstructions()) {
    const keyword = i.getKeyword();
    const flags: Flag[] = (i as unknown as { getFlags?: () => Flag[] }).getFlags?.() ?? [];
    const allowed = ALLOWED_FLAGS[keyword] ?? [];
    for (const f of flags) if (!allowed.includes(f.getName())) problems.push(`line ${lineOf(i)}: ${keyword} --${f.getName()}`);
    const heredocs = (i as unknown as { getHeredocs?: () => unknown[] }).getHeredocs?.() ?? [];
    if (heredocs.length > 0 || /^\s*<<-?\s*["']?[A-Za-z_]/m.test(i.getArgumentsContent() ?? '')) problems.push(`line ${lineOf(i)}: ${keyword} with a heredoc`);
  }
  return problems;
}

/** The stage and the stages it is built on, nearest first. */
export function chain(stages: Map<string, Stage>, name: string): Stage[] {
  const out: Stage[] = [];
  for (let s = stages.get(name); s; s = stages.get(s.base)) out.push(s);
  return out;
}

/** Docker's .dockerignore: last matching rule wins; a pattern matching a folder covers what is inside. */
export function ignoredBy(rules: string[]): (file: string) => boolean {
  const compiled = rules.map((rule) => {
    const include = rule.startsWith('!');
    const body = include ? rule.slice(1) : rule;
    const re = new RegExp(
      `^${body
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*\*/g, '\0')
        .replace(/\*/g, '[^/]*')
        .replace(/\?/g, '[^/]')
        .replace(/\0/g, '.*')}$`,
    );
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

export function dockerignoreRules(file = DOCKERIGNORE): string[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

export function filesUnder(rel: string): string[] {
  const abs = path.join(ROOT, rel);
  if (!fs.statSync(abs).isDirectory()) return [rel];
  return fs.readdirSync(abs).flatMap((e) => filesUnder(path.join(rel, e)));
}

/** Where COPY puts a source in the image (absolute destinations only). */
export function copiedPaths(c: Copy): string[] {
  if (!c.dest.startsWith('/')) return [];
  return c.sources.map((s) => (c.dest.endsWith('/') || c.sources.length > 1 ? path.posix.join(c.dest, path.posix.basename(s)) : c.dest));
}

/** Files the base images are known to have (Debian: bash is essential). */
export const BASE_FILES: Record<string, string[]> = {
  'debian:12.12-slim': ['/bin/bash', '/bin/sh'],
  'node:20.20.2-bookworm-slim': ['/bin/bash', '/bin/sh', '/usr/local/bin/node'],
};

/** Files that Debian packages the images install are known to bring (dpkg -L). */
export const PACKAGE_FILES: Record<string, string[]> = { tini: ['/usr/bin/tini'] };

/** Inits that run their arguments after `--` (so the image's CMD is what they start). */
export const INITS = ['/usr/bin/tini'];

export function aptPackages(stage: Stage): string[] {
  return stage.runs.flatMap((r) =>
    [...r.text.matchAll(/apt-get install ([^&]*)/g)].flatMap((m) => m[1]!.split(/[\s\\]+/).filter((w) => w !== '' && !w.startsWith('-'))),
  );
}

/** Why `command` cannot run in the image built from `target`, or null if it can. */
export function commandProblem(stages: Map<string, Stage>, target: string, command: string): string | null {
  const layers = chain(stages, target);
  const copied = layers.flatMap((s) => s.copies.filter((c) => c.from === null).flatMap(copiedPaths));
  const base = layers[layers.length - 1]!.base;
  const installed = layers.flatMap(aptPackages).flatMap((p) => PACKAGE_FILES[p] ?? []);
  const linksBins = layers.some((s) => s.runs.some((r) => r.text.includes('require("./package.json").bin') && r.text.includes('/usr/local/bin/')));
  if (command.startsWith('/'))
    return copied.includes(command) || installed.includes(command) || (BASE_FILES[base] ?? []).includes(command)
      ? null
      : `${command} is not a file of the ${target} image`;
  if (copied.includes(`/usr/local/bin/${command}`)) return null;
  if (!(command in BINS)) return `${command} is not a package.json bin`;
  if (!linksBins) return `the ${target} image does not put package.json bins on the PATH`;
  return null;
}

/** Whether the entrypoint ends by running its arguments: one of our scripts ending in `exec "$@"`, or an init given `--`. */
export function passesArguments(stages: Map<string, Stage>, target: string, entrypoint: string[]): boolean {
  if (INITS.includes(entrypoint[0]!)) return entrypoint[entrypoint.length - 1] === '--';
  const copy = chain(stages, target)
    .flatMap((s) => s.copies)
    .find((c) => c.from === null && copiedPaths(c).includes(entrypoint[0]!));
  return copy !== undefined && /\nexec "\$@"\n?$/.test(fs.readFileSync(path.join(ROOT, copy.sources[0]!), 'utf8'));
}

/** What the image runs: its entrypoint (or null) and command, the command overridden as a compose service does. */
export function whatRuns(stages: Map<string, Stage>, target: string, command?: string[]): { entrypoint: string[] | null; cmd: string[] | null } {
  const layers = chain(stages, target);
  return { entrypoint: layers.find((s) => s.entrypoint)?.entrypoint ?? null, cmd: command ?? layers.find((s) => s.cmd)?.cmd ?? null };
}

/** Problems with what an image (or a compose service overriding its command) runs. */
export function runProblems(stages: Map<string, Stage>, target: string, command?: string[]): string[] {
  const { entrypoint, cmd } = whatRuns(stages, target, command);
  const problems: string[] = [];
  if (entrypoint) {
    const p = commandProblem(stages, target, entrypoint[0]!);
    if (p) problems.push(p);
    if (!passesArguments(stages, target, entrypoint)) return problems;
  }
  if (!cmd || cmd.length === 0) return [...problems, `the ${target} image runs nothing`];
  const p = commandProblem(stages, target, cmd[0]!);
  return p ? [...problems, p] : problems;
}

/**
 * Files the image runs by path (entrypoint, command) that a COPY from the
 * build context brings in without a later RUN chmod making them executable:
 * the legacy builder's COPY keeps the mode the file has in the checkout, and
 * COPY --chmod is BuildKit's.
 */
export function notMadeExecutable(stages: Map<string, Stage>, target: string): string[] {
  const layers = chain(stages, target);
  const { entrypoint, cmd } = whatRuns(stages, target);
  const runs = layers.flatMap((s) => s.runs);
  const out: string[] = [];
  for (const file of [entrypoint?.[0], cmd?.[0]]) {
    if (!file?.startsWith('/')) continue;
    const copy = layers.flatMap((s) => s.copies).find((c) => c.from === null && copiedPaths(c).includes(file));
    if (!copy) continue;
    const escaped = file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const chmod = new RegExp(`\\bchmod\\s+(?:0?755|[ugoa]*\\+x)\\s+(?:\\S+\\s+)*${escaped}(?:\\s|$|;|&)`);
    if (!runs.some((r) => r.line > copy.line && chmod.test(r.text)))
      out.push(`${file} (COPY at line ${copy.line}) is not made executable by a later RUN chmod`);
  }
  return out;
}

export interface Service {
  image?: string;
  container_name?: string;
  build?: { context: string; dockerfile: string; target: string; args?: Record<string, string> };
  command?: string[];
  network_mode?: string;
  privileged?: boolean;
  init?: boolean;
  restart?: string;
  cap_add?: string[];
  security_opt?: string[];
  pid?: string;
  volumes?: string[];
  environment?: Record<string, string>;
  extends?: { file: string; service: string };
}

/** A compose file as YAML gives it, merge keys (`<<`) applied. */
export function readCompose(file: string): Record<string, unknown> & { services: Record<string, Service> } {
  return YAML.parse(fs.readFileSync(file, 'utf8'), { merge: true, uniqueKeys: true }) as Record<string, unknown> & { services: Record<string, Service> };
}

/** The services of a compose file, each `extends` resolved (the base's keys, then the service's own). */
export function loadCompose(file: string): Record<string, Service> {
  const doc = readCompose(file);
  const services: Record<string, Service> = {};
  for (const [name, s] of Object.entries(doc.services)) {
    if (!s.extends) {
      services[name] = s;
      continue;
    }
    const { extends: ext, ...rest } = s;
    const base = loadCompose(path.join(path.dirname(file), ext.file))[ext.service];
    if (base === undefined) throw new Error(`${file}: ${name} extends ${ext.file}:${ext.service}, which is not there`);
    services[name] = { ...base, ...rest };
  }
  return services;
}
