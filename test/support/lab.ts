/**
 * A lab for an e2e file (mocha): `useLab()` inside a `describe` brings up a
 * lab in `before`, with a namespace prefix unique to the file and the
 * process and a fresh temporary folder, and in `after` removes it again
 * (also when a test or the setup failed), deletes the folder and checks that
 * no namespace with the prefix is left.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { Lab, LabOptions } from '../../src/lab/lab.js';

export interface LabFixture {
  /** The lab `before` brought up (this process's view; `Lab.load(dir)` reads what other processes added). */
  readonly lab: Lab;
  readonly dir: string;
  /** Every namespace of the lab starts with `${prefix}-`. */
  readonly prefix: string;
}

/** The namespaces whose names start with `${prefix}-`. */
export async function namespacesWith(prefix: string): Promise<string[]> {
  return (await execa('ip', ['netns', 'list'])).stdout
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((ns) => ns.startsWith(`${prefix}-`));
}

/**
 * Registers the lab's `before` and `after` hooks in the calling `describe`.
 * `tag`: a few letters naming the file, so that files run in one mocha
 * process never share a prefix. The file's own `before` hooks, registered
 * after this call, run once the lab is up.
 */
export function useLab(tag: string, options: Omit<LabOptions, 'dir' | 'prefix'> = {}, upTimeoutMs = 90000): LabFixture {
  const prefix = `${tag}${process.pid.toString(36)}`;
  let dir = '';
  let lab: Lab | undefined;

  before(async function () {
    this.timeout(upTimeoutMs);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), `calico-${tag}-`));
    lab = await Lab.up({ hosts: 2, ...options, dir, prefix });
  });

  after(async function () {
    this.timeout(60000);
    try {
      // Read back from lab.json: containers and processes other commands added are in it, not in `lab`.
      if (dir !== '' && fs.existsSync(Lab.stateFile(dir))) await Lab.load(dir).down();
    } finally {
      const left = await namespacesWith(prefix);
      if (dir !== '') fs.rmSync(dir, { recursive: true, force: true });
      expect(left, 'namespaces left behind').to.deep.equal([]);
    }
  });

  return {
    get lab(): Lab {
      if (!lab) throw new Error('the lab is not up (its before hook failed or has not run)');
      return lab;
    },
    get dir() {
      return dir;
    },
    prefix,
  };
}
