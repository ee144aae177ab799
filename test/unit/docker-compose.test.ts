/**
 * The compose files, checked without a Docker engine: valid for compose v1
 * (Debian 12 ships docker-compose 1.29.2) and v2 alike, the seed's host
 * network, container names, log volumes and restart policy, and for each
 * container only the privileges it needs instead of --privileged, with an
 * init as PID 1 (issue #18). test/integration/docker-scripts.test.ts also
 * runs docker-compose 1.29.2's own `config` on them.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from '../support/process.js';
import { COMPOSE_DIR, DOCKERFILE, Service, loadCompose, parseDockerfile, readCompose, runProblems } from '../support/docker-files.js';

/**
 * Top-level keys docker-compose 1.29.2 accepts (its compose_spec.json:
 * anything else, `name` included, is refused), less `version`: 1.27 and
 * later read a file with `services` and no `version` as the Compose
 * Specification, and compose v2 warns that `version` is obsolete.
 */
const TOP_LEVEL_KEYS = ['services', 'networks', 'volumes', 'secrets', 'configs'];
/** The service keys these files may use: each in docker-compose 1.29.2's compose_spec.json and in compose v2's. */
const SERVICE_KEYS = [
  'build',
  'cap_add',
  'command',
  'container_name',
  'environment',
  'extends',
  'image',
  'init',
  'network_mode',
  'pid',
  'restart',
  'security_opt',
  'volumes',
];
const BUILD_KEYS = ['context', 'dockerfile', 'target', 'args'];

interface Expected {
  target: string;
  logs: string;
  /** Exactly these capabilities added, these security options, this pid mode. */
  cap_add?: string[];
  security_opt?: string[];
}

/**
 * What each container needs (issue #18, measured on an engine by
 * scripts/test-docker): BIRD NET_ADMIN (routes); Felix NET_ADMIN, and
 * SYS_ADMIN for its entrypoint to mount /proc/sys/net read-write (Felix then
 * runs without it), and apparmor=unconfined, as Docker's default AppArmor
 * profile denies that mount and writes under /proc/sys/net; the plugin and
 * the ACL manager nothing.
 */
const FELIX_PRIVILEGES = { cap_add: ['NET_ADMIN', 'SYS_ADMIN'], security_opt: ['apparmor=unconfined'] };
/**
 * The security options the engine itself takes (moby's parseSecurityOpt):
 * compose v1 passes security_opt to the engine as written, and the engine
 * refuses the rest. systempaths=unconfined is one of the docker CLI's (and
 * compose v2's), which turn it into masked and read-only path lists: on an
 * engine docker-compose 1.29.2 failed with "invalid --security-opt 2".
 */
const ENGINE_SECURITY_OPTS = /^(apparmor=|seccomp=|label[=:]|no-new-privileges(=(true|false))?$)/;
const BIRD_PRIVILEGES = { cap_add: ['NET_ADMIN'] };
const CALICO_LOGS = '/var/log/calico:/var/log/calico';
const ROLES: [string, Record<string, Expected>][] = [
  [
    'first-host.yaml',
    {
      bird: { target: 'bird', logs: '/var/log/bird:/var/log/bird', ...BIRD_PRIVILEGES },
      'plugin-network': { target: 'plugin', logs: CALICO_LOGS },
      'plugin-ep': { target: 'plugin', logs: CALICO_LOGS },
      felix: { target: 'felix', logs: CALICO_LOGS, ...FELIX_PRIVILEGES },
      aclmgr: { target: 'felix', logs: CALICO_LOGS },
    },
  ],
  [
    'other-host.yaml',
    {
      felix: { target: 'felix', logs: CALICO_LOGS, ...FELIX_PRIVILEGES },
      bird: { target: 'bird', logs: '/var/log/bird:/var/log/bird', ...BIRD_PRIVILEGES },
    },
  ],
];

/** Every path (a.b.c) in a YAML tree whose key is `key`, anchors and merges included. */
function pathsOfKey(node: unknown, key: string, at = ''): string[] {
  if (Array.isArray(node)) return node.flatMap((v, i) => pathsOfKey(v, key, `${at}[${i}]`));
  if (node === null || typeof node !== 'object') return [];
  return Object.entries(node).flatMap(([k, v]) => [...(k === key ? [`${at}${k}`] : []), ...pathsOfKey(v, key, `${at}${k}.`)]);
}

/** Problems that make a compose file invalid for docker-compose 1.29.2 or compose v2, or outside what is checked here. */
function formatProblems(doc: Record<string, unknown>): string[] {
  const problems: string[] = [];
  for (const key of Object.keys(doc)) if (!key.startsWith('x-') && !TOP_LEVEL_KEYS.includes(key)) problems.push(`top-level ${key}`);
  if (!doc.services) problems.push('no services');
  for (const [name, s] of Object.entries((doc.services ?? {}) as Record<string, Record<string, unknown>>)) {
    for (const key of Object.keys(s)) if (!SERVICE_KEYS.includes(key)) problems.push(`${name}.${key}`);
    for (const key of Object.keys(s.build ?? {})) if (!BUILD_KEYS.includes(key)) problems.push(`${name}.build.${key}`);
  }
  return problems;
}

describe('docker/compose', () => {
  const { args, stages } = parseDockerfile(fs.readFileSync(DOCKERFILE, 'utf8'));

  it('the format check catches what docker-compose 1.29.2 refuses, or v2 calls obsolete', () => {
    expect(
      formatProblems({ name: 'calico', version: '3.7', services: { a: { image: 'x', develop: {}, build: { context: '.', additional_contexts: {} } } } }),
    ).to.deep.equal(['top-level name', 'top-level version', 'a.develop', 'a.build.additional_contexts']);
    expect(formatProblems({ 'x-anchor': {}, services: { a: { image: 'x' } } })).to.deep.equal([]);
    expect(formatProblems({ a: { image: 'x' } })).to.deep.equal(['top-level a', 'no services']);
  });

  it('the privileged search sees it in an anchor too', () => {
    expect(pathsOfKey({ 'x-host': { privileged: true }, services: { a: { image: 'x' } } }, 'privileged')).to.deep.equal(['x-host.privileged']);
  });

  for (const [fileName, expected] of ROLES) {
    describe(fileName, () => {
      const file = path.join(COMPOSE_DIR, fileName);
      const services = loadCompose(file);

      it('is valid for compose v1.29 and v2: no top-level name or version, services under services, keys both know', () => {
        expect(formatProblems(readCompose(file))).to.deep.equal([]);
      });

      it('has no privileged anywhere, anchors included', () => {
        expect(pathsOfKey(readCompose(file), 'privileged')).to.deep.equal([]);
        expect(fs.readFileSync(file, 'utf8')).to.not.match(/^\s*privileged\s*:/m);
      });

      it('has only security options the engine takes (compose v1 passes them on as written)', () => {
        for (const [name, s] of Object.entries(services)) for (const opt of s.security_opt ?? []) expect(opt, name).to.match(ENGINE_SECURITY_OPTS);
        expect('systempaths=unconfined', 'the option compose v1 could not start').to.not.match(ENGINE_SECURITY_OPTS);
      });

      it('has the expected services', () => {
        expect(Object.keys(services)).to.have.members(Object.keys(expected));
      });

      for (const [name, want] of Object.entries(expected)) {
        it(`${name}: the seed's name, host network and restart policy, an init, its log volume, the ${want.target} image, and a command it has`, () => {
          const s = services[name]!;
          expect(s.container_name).to.equal(name);
          expect({ network_mode: s.network_mode, restart: s.restart, init: s.init }).to.deep.equal({ network_mode: 'host', restart: 'always', init: true });
          expect(s.volumes).to.include(want.logs);
          expect(s.image).to.equal(`calico:${want.target}`);
          expect(s.build?.target).to.equal(want.target);
          expect(path.resolve(path.dirname(file), s.build!.context)).to.equal(ROOT);
          expect(path.resolve(ROOT, s.build!.dockerfile)).to.equal(DOCKERFILE);
          expect(runProblems(stages, want.target, s.command)).to.deep.equal([]);
        });

        const privileges = (s: Service) => ({ cap_add: s.cap_add ?? [], security_opt: s.security_opt ?? [], pid: s.pid ?? null });
        it(`${name}: only the privileges it needs: ${[...(want.cap_add ?? []), ...(want.security_opt ?? [])].join(', ') || 'none'}`, () => {
          const got = privileges(services[name]!);
          expect({ ...got, cap_add: [...got.cap_add].sort(), security_opt: [...got.security_opt].sort() }).to.deep.equal({
            cap_add: [...(want.cap_add ?? [])].sort(),
            security_opt: [...(want.security_opt ?? [])].sort(),
            pid: null,
          });
        });
      }

      it("builds from the Dockerfile's default base image unless NODE_IMAGE is set", () => {
        for (const [name, s] of Object.entries(services)) {
          expect(s.build?.args, name).to.deep.equal({ NODE_IMAGE: `\${NODE_IMAGE:-${args.NODE_IMAGE}}` });
        }
      });

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
