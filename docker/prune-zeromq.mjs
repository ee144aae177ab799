#!/usr/bin/env node
/**
 * A build step of the Node images (SPEC §10, issue #18). The zeromq package
 * ships prebuilt addons for Linux, macOS and Windows on several CPUs, in
 * node_modules/zeromq/build, indexed by build/manifest.json; an image needs
 * only those its own Node can load. This keeps the manifest's entries for
 * one OS, CPU and C library (by default this machine's, detected as zeromq's
 * loader, cmake-ts, detects them), rewrites the manifest to list only those,
 * and deletes every other file under build/.
 *   node prune-zeromq.mjs [--os linux] [--arch x64] [--libc glibc] ZEROMQ_DIR
 * When no entry fits it deletes nothing and exits 1: the image would have no
 * addon to load.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

/** The C library as cmake-ts's loader names it (build/loader.js): it picks addons by os, arch and this. */
function libcOf(os) {
  if (os === 'linux') return fs.existsSync('/etc/alpine-release') ? 'musl' : 'glibc';
  return { darwin: 'libc', win32: 'msvc' }[os] ?? 'unknown';
}

function filesUnder(dir, rel = '') {
  return fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).flatMap((e) => {
    const name = path.posix.join(rel, e.name);
    return e.isDirectory() ? filesUnder(dir, name) : [name];
  });
}

/** Removes the empty folders under `dir` (not `dir` itself). */
function removeEmptyFolders(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (!e.isDirectory()) continue;
    const sub = path.join(dir, e.name);
    removeEmptyFolders(sub);
    if (fs.readdirSync(sub).length === 0) fs.rmdirSync(sub);
  }
}

const fail = (message) => {
  process.stderr.write(`prune-zeromq: ${message}\n`);
  process.exit(1);
};

let args;
try {
  args = parseArgs({ options: { os: { type: 'string' }, arch: { type: 'string' }, libc: { type: 'string' } }, allowPositionals: true });
} catch (err) {
  fail(err.message);
}
if (args.positionals.length !== 1) fail('usage: prune-zeromq.mjs [--os OS] [--arch ARCH] [--libc LIBC] ZEROMQ_DIR');
const os = args.values.os ?? process.platform;
const want = { os, arch: args.values.arch ?? process.arch, libc: args.values.libc ?? libcOf(os) };
const buildDir = path.join(args.positionals[0], 'build');
const manifestFile = path.join(buildDir, 'manifest.json');
let manifest;
try {
  manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8'));
} catch (err) {
  fail(`cannot read ${manifestFile}: ${err.message}`);
}

/** The manifest's entries for `want` whose addon is there, with the addon's path relative to build/. */
const kept = Object.entries(manifest)
  .map(([key, file]) => ({ key, config: JSON.parse(key), file: file.replace(/\\/g, '/') }))
  .filter(({ config, file }) => config.os === want.os && config.arch === want.arch && config.libc === want.libc && fs.existsSync(path.join(buildDir, file)));
const label = `${want.os} ${want.arch} ${want.libc}`;
if (kept.length === 0) fail(`${manifestFile} lists no addon for ${label}; nothing removed`);

const keep = new Set(['manifest.json', ...kept.map((k) => k.file)]);
let removed = 0;
let removedBytes = 0;
for (const file of filesUnder(buildDir)) {
  if (keep.has(file)) continue;
  const abs = path.join(buildDir, file);
  removedBytes += fs.statSync(abs).size;
  fs.rmSync(abs);
  removed++;
}
removeEmptyFolders(buildDir);
const tmp = `${manifestFile}.tmp`;
fs.writeFileSync(tmp, `${JSON.stringify(Object.fromEntries(kept.map((k) => [k.key, k.file])))}\n`);
fs.renameSync(tmp, manifestFile);
const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;
process.stdout.write(`prune-zeromq: kept ${kept.map((k) => k.file).join(', ')} (${label}); removed ${removed} other files, ${mb(removedBytes)}\n`);
