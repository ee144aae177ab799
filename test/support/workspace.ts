/**
 * Per-test scratch space for integration tests: a fresh temporary folder,
 * and after each test every tracked peer closed, every started command
 * stopped and every test namespace deleted — also when the test failed.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { deleteAllNetns } from './netns.js';
import { stopAll } from './process.js';

export interface Workspace {
  /** This test's folder (valid inside a test and its hooks). */
  readonly dir: string;
  /** Closes `x` after the test. */
  track<T extends { close(): void }>(x: T): T;
}

/** Call inside a `describe`: installs the beforeEach/afterEach hooks. */
export function perTestWorkspace(name: string): Workspace {
  let closers: Array<{ close(): void }> = [];
  const ws = {
    dir: '',
    track<T extends { close(): void }>(x: T): T {
      closers.push(x);
      return x;
    },
  };
  beforeEach(() => {
    ws.dir = fs.mkdtempSync(path.join(os.tmpdir(), `${name}-`));
    closers = [];
  });
  afterEach(async () => {
    for (const c of closers) c.close();
    await stopAll();
    await deleteAllNetns();
    fs.rmSync(ws.dir, { recursive: true, force: true });
  });
  return ws;
}
