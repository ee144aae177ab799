/**
 * What every command shares: a one-line reason and a non-zero exit on bad
 * arguments or config, and a clean shutdown on SIGINT/SIGTERM.
 */
import yargs, { Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import type { KeySpec } from './config.js';
import { errorMessage } from './errors.js';

/** A yargs parser that fails with one line (`cmd: reason`) and exit code 2. */
export function commandLine(name: string, usage: string): Argv {
  const parser = yargs(hideBin(process.argv));
  return (
    parser
      .scriptName(name)
      // On a terminal, wrap at its width; into a pipe or file, not at all (a fixed 80 columns broke words mid-word).
      .wrap(process.stdout.isTTY ? parser.terminalWidth() : null)
      .usage(usage)
      .strict()
      .help()
      .version(false)
      .fail((msg: string | null | undefined, err: Error | undefined) => {
        process.stderr.write(`${name}: ${msg ?? err?.message ?? 'bad arguments'} (see --help)\n`);
        process.exit(2);
      })
  );
}

/**
 * A yargs `coerce` that checks a flag's value with a config key's parser, so
 * a flag and the config key it stands beside accept the same values: a bad
 * one fails with one line naming the flag, `--FLAG: bad value "V": why`.
 */
export function flagParser<T>(flag: string, parse: (raw: string) => T): (raw: unknown) => T {
  return (raw) => {
    const text = String(raw);
    try {
      return parse(text);
    } catch (err) {
      throw new Error(`--${flag}: bad value ${JSON.stringify(text)}: ${(err as Error).message}`);
    }
  };
}

/** A yargs option checked by a config key ({@link flagParser}), defaulting to the key's default (which it must have). */
export function keyOption<T>(
  flag: string,
  spec: KeySpec<T>,
  describe?: string,
): { type: 'string'; default: T; describe: string | undefined; coerce: (raw: unknown) => T } {
  if (spec.default === undefined) throw new Error(`--${flag}: its config key has no default`);
  return { type: 'string', default: spec.default, describe, coerce: flagParser(flag, spec.parse) };
}

/**
 * Runs a daemon's main: an error during start-up prints `name: message` and
 * exits 1; the returned stop function runs on SIGINT/SIGTERM.
 */
export function runDaemon(name: string, start: () => Promise<() => Promise<void>>): void {
  start().then(
    (stop) => {
      let stopping = false;
      const onSignal = (signal: string) => {
        if (stopping) return;
        stopping = true;
        stop().then(
          () => process.exit(0),
          (err: unknown) => {
            process.stderr.write(`${name}: error while stopping on ${signal}: ${errorMessage(err)}\n`);
            process.exit(1);
          },
        );
      };
      process.on('SIGINT', () => onSignal('SIGINT'));
      process.on('SIGTERM', () => onSignal('SIGTERM'));
    },
    (err: unknown) => {
      process.stderr.write(`${name}: ${errorMessage(err)}\n`);
      process.exit(1);
    },
  );
}
