#!/usr/bin/env node
/**
 * Part of scripts/test-docker: what docs/docker.md says, so that the test
 * runs the page's own commands and fails where the page and the test part.
 *   doc.mjs block MARKER     the fenced code block whose first line starts with MARKER
 *   doc.mjs function NAME    a shell function defined in a block, `NAME() {` to its `}` line
 *   doc.mjs heredoc FILE     what the block's `cat > FILE <<'EOF'` writes
 *   doc.mjs has TEXT...      exit 0 if each TEXT is a command of the page (in code,
 *                            continuation lines joined, spaces collapsed), else 1 naming it
 * A block or function printed for running has no heredoc: a cut one would run
 * the page's prose as commands. Exit 1 with a one-line reason when the page
 * has no such thing.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const DOC = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../docs/docker.md');

const fail = (message) => {
  process.stderr.write(`doc.mjs: ${message}\n`);
  process.exit(1);
};

/** The page's fenced code blocks (indented ones too, indentation removed), and its inline code spans. */
export function codeOf(markdown) {
  const blocks = [];
  const rest = markdown.replace(/^([ \t]*)```[a-z]*\n([\s\S]*?)^[ \t]*```[ \t]*$/gm, (_, indent, body) => {
    blocks.push(body.replace(new RegExp(`^${indent}`, 'gm'), ''));
    return '';
  });
  const spans = [...rest.matchAll(/`([^`]+)`/g)].map((m) => m[1]);
  return { blocks, spans };
}

/** A command as compared: continuation lines joined, comments dropped, spaces collapsed. */
export const normalise = (text) =>
  text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.replace(/(^|\s)#\s.*$/, ''))
    .join('\n')
    .replace(/[ \t]+/g, ' ')
    .trim();

const noHeredoc = (what, text) => {
  if (/<<-?\s*['"]?[A-Za-z_]/.test(text)) fail(`${what} has a heredoc; not printed for running`);
  return text;
};

export function block(blocks, marker) {
  const found = blocks.filter((b) => b.startsWith(marker));
  if (found.length !== 1) fail(`${found.length} blocks start with '${marker}', not 1`);
  return noHeredoc(`the block starting with '${marker}'`, found[0]);
}

export function shellFunction(blocks, name) {
  for (const b of blocks) {
    const lines = b.split('\n');
    const start = lines.findIndex((l) => l.startsWith(`${name}() {`));
    if (start < 0) continue;
    const end = lines.findIndex((l, i) => i > start && l === '}');
    if (end < 0) fail(`function ${name} has no closing '}' line`);
    return noHeredoc(`function ${name}`, lines.slice(start, end + 1).join('\n') + '\n');
  }
  fail(`no function ${name}`);
}

export function heredoc(blocks, file) {
  for (const b of blocks) {
    const lines = b.split('\n');
    const start = lines.findIndex((l) => new RegExp(`^cat > ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} <<'EOF'$`).test(l));
    if (start < 0) continue;
    const end = lines.indexOf('EOF', start + 1);
    if (end < 0) fail(`the heredoc writing ${file} has no EOF line`);
    return lines.slice(start + 1, end).join('\n') + '\n';
  }
  fail(`nothing writes ${file}`);
}

/** Whether the command line `line` runs `want` whole: not a prefix of a longer command (`up -d` is not `up -d --build`). */
export function shows(line, want) {
  const at = (i) => line.indexOf(want, i);
  for (let i = at(0); i >= 0; i = at(i + 1)) {
    const before = line.slice(0, i);
    const after = line.slice(i + want.length);
    if ((before === '' || /[\s;&|(]$/.test(before)) && (after === '' || /^\s*([;&|)]|$)/.test(after))) return true;
  }
  return false;
}

/** Every command of the page as compared: each block's lines (continuations joined) and each span. */
export function commands(blocks, spans) {
  return [...blocks.flatMap((b) => normalise(b).split('\n')), ...spans.map(normalise)];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [verb, ...args] = process.argv.slice(2);
  const { blocks, spans } = codeOf(fs.readFileSync(DOC, 'utf8'));
  if (verb === 'block' && args.length === 1) process.stdout.write(block(blocks, args[0]));
  else if (verb === 'function' && args.length === 1) process.stdout.write(shellFunction(blocks, args[0]));
  else if (verb === 'heredoc' && args.length === 1) process.stdout.write(heredoc(blocks, args[0]));
  else if (verb === 'has' && args.length > 0) {
    const all = commands(blocks, spans);
    for (const text of args) {
      const want = normalise(text);
      if (!all.some((c) => shows(c, want))) fail(`docs/docker.md does not show: ${want}`);
    }
  } else fail('usage: doc.mjs block MARKER | function NAME | heredoc FILE | has TEXT...');
}
