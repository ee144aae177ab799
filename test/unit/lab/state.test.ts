import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LabState, addressIn, labStateFile, labStatusUrls, readLabState } from '../../../src/lab/state.js';

const STATE: LabState = {
  prefix: 'calabx',
  dir: '/tmp/lab',
  hosts: [
    { name: 'instance-1', ns: 'calabx-h1', ip: '198.18.0.1', ip6: 'fd00:198:18::1' },
    { name: 'instance-2', ns: 'calabx-h2', ip: '198.18.0.2', ip6: 'fd00:198:18::2' },
  ],
  containers: [{ id: 'abc', ip: '192.168.1.5,fd00:192:168::1:5', group: 'g1', host: 'instance-2', ns: 'calabx-cabc' }],
  pids: {},
};

/** The relative imports of a built module and of everything it imports, as paths under dist/. */
function moduleGraph(entry: string): string[] {
  const seen = new Set<string>();
  const walk = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const m of fs.readFileSync(file, 'utf8').matchAll(/(?:from|import)\s*\(?\s*'(\.[^']+)'/g)) walk(path.resolve(path.dirname(file), m[1]!));
  };
  walk(entry);
  return [...seen];
}

describe('lab state (lab.json, read without the lab machinery)', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'calico-lab-state-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reads the record a lab wrote', () => {
    fs.writeFileSync(labStateFile(dir), JSON.stringify(STATE));
    expect(readLabState(dir)).to.deep.equal(STATE);
  });

  it('says in one line that no lab is up in a folder, or that its record is not one', () => {
    expect(() => readLabState(dir)).to.throw(`${path.join(dir, 'lab.json')}: cannot read: ENOENT`);
    fs.writeFileSync(labStateFile(dir), '{');
    expect(() => readLabState(dir)).to.throw(new RegExp(`^${path.join(dir, 'lab.json')}: not a lab record \\(`));
  });

  it("lists every daemon's /status on the first host, Felix's on the others", () => {
    expect(labStatusUrls(STATE, STATE.hosts[0]!)).to.deep.equal([
      'http://127.0.0.1:9093/status',
      'http://127.0.0.1:9094/status',
      'http://127.0.0.1:9092/status',
      'http://127.0.0.1:9091/status',
    ]);
    expect(labStatusUrls(STATE, STATE.hosts[1]!)).to.deep.equal(['http://127.0.0.1:9091/status']);
  });

  it("finds a dual-stack container's address per family", () => {
    expect([addressIn(STATE.containers[0]!, 4), addressIn(STATE.containers[0]!, 6), addressIn({ ip: '10.0.0.1' }, 6)]).to.deep.equal([
      '192.168.1.5',
      'fd00:192:168::1:5',
      undefined,
    ]);
  });

  it('calico-status reads a lab through this module only: it never loads lab.ts (which runs commands and starts daemons)', () => {
    const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
    const graph = moduleGraph(path.join(dist, 'src/status/main.js')).map((f) => path.relative(dist, f));
    expect(graph).to.include('src/lab/state.js');
    expect(graph).not.to.include('src/lab/lab.js');
  });
});
