import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CannotReadError, readTextFile, writeFileAtomic } from '../../../src/common/files.js';

describe('files: readTextFile, writeFileAtomic', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'calico-files-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reads a file as UTF-8 text', () => {
    const f = path.join(dir, 'a.txt');
    fs.writeFileSync(f, 'héllo\n');
    expect(readTextFile(f)).to.equal('héllo\n');
  });

  for (const [name, make, reason] of [
    ['a missing file', () => path.join(dir, 'nope.txt'), 'ENOENT'],
    ['a directory', () => dir, 'EISDIR'],
  ] as Array<[string, () => string, string]>)
    it(`fails on ${name} with one line naming the file and the errno code`, () => {
      const f = make();
      expect(() => readTextFile(f))
        .to.throw(CannotReadError, `${f}: cannot read: ${reason}`)
        .with.property('reason', reason);
    });

  it('writes a new file and replaces an old one, leaving no temporary file', () => {
    const f = path.join(dir, 'data.txt');
    writeFileAtomic(f, 'one\n');
    expect(fs.readFileSync(f, 'utf8')).to.equal('one\n');
    const ino = fs.statSync(f).ino;
    writeFileAtomic(f, 'two\n');
    expect(fs.readFileSync(f, 'utf8')).to.equal('two\n');
    // Replaced by rename (a new inode), not rewritten in place: a reader holding the old file sees it whole.
    expect(fs.statSync(f).ino).to.not.equal(ino);
    expect(fs.readdirSync(dir)).to.deep.equal(['data.txt']);
  });

  it('on failure throws, leaves the target as it was and removes its temporary file', () => {
    const target = path.join(dir, 'taken');
    fs.mkdirSync(path.join(target, 'inside'), { recursive: true });
    expect(() => writeFileAtomic(target, 'x')).to.throw(/EISDIR|ENOTEMPTY|EEXIST/);
    expect(fs.readdirSync(dir)).to.deep.equal(['taken']);
    expect(() => writeFileAtomic(path.join(dir, 'missing', 'f.txt'), 'x')).to.throw(/ENOENT/);
  });
});
