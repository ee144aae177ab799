#!/usr/bin/env node
/**
 * `calico-keygen --out-dir DIR --name NAME`: a CurveZMQ key pair for one
 * daemon, NAME.key (secret, mode 0600) and NAME.pub, Z85 text as the
 * `[security]` config keys and the plugin's key flags expect.
 */
import fs from 'node:fs';
import path from 'node:path';
import { curveKeyPair } from 'zeromq';
import { commandLine } from '../common/cli.js';

const NAME = 'calico-keygen';

const argv = commandLine(NAME, '$0 --out-dir DIR --name NAME')
  .options({
    'out-dir': { type: 'string', demandOption: true, describe: 'folder for the key files (created if missing)' },
    name: { type: 'string', demandOption: true, describe: 'writes NAME.key and NAME.pub' },
    force: { type: 'boolean', default: false, describe: 'replace existing key files' },
  })
  .check((a) => {
    if (!/^[A-Za-z0-9_.-]+$/.test(a.name) || a.name.startsWith('.')) throw new Error('--name must be letters, digits, _ . - (not starting with a dot)');
    return true;
  })
  .parseSync();

try {
  const { publicKey, secretKey } = curveKeyPair();
  fs.mkdirSync(argv['out-dir'], { recursive: true });
  const secretFile = path.join(argv['out-dir'], `${argv.name}.key`);
  const publicFile = path.join(argv['out-dir'], `${argv.name}.pub`);
  // 'wx' refuses to replace a key by accident; the secret is never readable by others, not even briefly.
  const flag = argv.force ? 'w' : 'wx';
  if (argv.force) fs.rmSync(secretFile, { force: true });
  fs.writeFileSync(secretFile, `${secretKey}\n`, { mode: 0o600, flag });
  fs.writeFileSync(publicFile, `${publicKey}\n`, { mode: 0o644, flag });
  process.stdout.write(`${secretFile}\n${publicFile}\n`);
} catch (err) {
  const e = err as NodeJS.ErrnoException;
  process.stderr.write(`${NAME}: ${e.code === 'EEXIST' ? `${e.path ?? 'key file'} exists (use --force to replace it)` : e.message}\n`);
  process.exit(1);
}
