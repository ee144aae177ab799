#!/usr/bin/env node
/**
 * `calico-bird-config --felix-txt FILE --host NAME [--as N] [--prefix CIDR …] [--out FILE]`
 * (SPEC §8): writes BIRD 2's configuration for one host of the felix.txt
 * mesh, to stdout or atomically to `--out`.
 */
import os from 'node:os';
import { commandLine } from '../common/cli.js';
import { CannotReadError, readTextFile, writeFileAtomic } from '../common/files.js';
import { DEFAULT_AS, DEFAULT_PREFIXES, meshFor, meshOptions, parseFelixTxt, renderBirdConfig } from './bird-config.js';

const NAME = 'calico-bird-config';

const argv = commandLine(NAME, '$0 --felix-txt FILE [--host NAME] [--as N] [--prefix CIDR ...] [--out FILE]')
  .options({
    'felix-txt': { type: 'string', demandOption: true, describe: 'the host list: [felix HOST] sections with ip= and host=' },
    host: { type: 'string', default: os.hostname(), describe: 'the host to configure (compared up to the first dot)' },
    as: { type: 'number', default: DEFAULT_AS, describe: 'the AS number of the iBGP mesh' },
    prefix: {
      type: 'string',
      array: true,
      describe: `container address range (repeat for more; IPv4 or IPv6) [default: ${DEFAULT_PREFIXES[4]}, and ${DEFAULT_PREFIXES[6]} when the host has an IPv6 address (ip6=)]`,
    },
    'router-id': { type: 'string', describe: 'BGP router id (default: the host address; needed for IPv6-only hosts)' },
    'log-file': { type: 'string', describe: "BIRD's log file (default: stderr)" },
    out: { type: 'string', describe: 'write the config here (atomically) instead of stdout' },
  })
  .check((a) => {
    meshOptions({ asNumber: a.as, prefixes: a.prefix, routerId: a['router-id'] });
    return true;
  })
  .parseSync();

function fail(message: string): never {
  process.stderr.write(`${NAME}: ${message}\n`);
  process.exit(1);
}

function main(): void {
  const file = argv['felix-txt'];
  let text: string;
  try {
    text = readTextFile(file);
  } catch (err) {
    fail(`cannot read ${file}: ${(err as CannotReadError).reason}`);
  }
  const { hosts, problems } = parseFelixTxt(text, file);
  // A generator must not silently drop a peer: any bad section stops it.
  if (problems.length > 0) fail(problems.join('; '));
  let config: string;
  try {
    const { self, peers } = meshFor(hosts, argv.host);
    config = renderBirdConfig({ self, peers, asNumber: argv.as, prefixes: argv.prefix, routerId: argv['router-id'], logFile: argv['log-file'] });
  } catch (err) {
    fail(`${file}: ${(err as Error).message}`);
  }
  if (argv.out === undefined) {
    process.stdout.write(config);
    return;
  }
  try {
    writeFileAtomic(argv.out, config);
  } catch (err) {
    fail(`cannot write ${argv.out}: ${(err as Error).message}`);
  }
}

main();
