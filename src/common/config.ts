/**
 * Typed loading of the daemons' INI config files (SPEC §7): defaults,
 * case-insensitive keys, a warning per unknown key, and a one-line
 * {@link ConfigError} naming file, section and key for anything wrong.
 */
import { readTextFile } from './files.js';
import { parseIni } from './ini.js';
import { Severity, parseSeverity } from './logging.js';

export class ConfigError extends Error {
  readonly code = 'ECONFIG';
}

export interface KeySpec<T> {
  parse: (raw: string) => T;
  default?: T;
  required?: boolean;
}

export type Schema = Record<string, Record<string, KeySpec<unknown>>>;
export type ConfigOf<S extends Schema> = {
  [Sec in keyof S]: { [K in keyof S[Sec]]: S[Sec][K] extends KeySpec<infer T> ? T : never };
};

export interface Loaded<S extends Schema> {
  config: ConfigOf<S>;
  /** Unknown sections and keys, one line each, to log once logging is set up. */
  warnings: string[];
}

export function loadConfig<S extends Schema>(file: string, schema: S): Loaded<S> {
  let text: string;
  try {
    text = readTextFile(file);
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  const doc = parseIni(text);
  const first = doc.errors[0];
  if (first) throw new ConfigError(`${file}:${first.line}: ${first.message}`);

  const warnings: string[] = [];
  const config: Record<string, Record<string, unknown>> = {};
  const sectionNames = Object.keys(schema);
  for (const section of doc.sections) {
    const known = sectionNames.find((s) => s.toLowerCase() === section.name.toLowerCase());
    if (!known) {
      warnings.push(`${file}:${section.line}: unknown section [${section.name}] ignored`);
      continue;
    }
    const keys = Object.keys(schema[known]!);
    for (const entry of section.entries.values()) {
      if (!keys.some((k) => k.toLowerCase() === entry.key.toLowerCase())) warnings.push(`${file}:${entry.line}: unknown key [${known}] ${entry.key} ignored`);
    }
  }
  for (const [sectionName, keys] of Object.entries(schema)) {
    const out: Record<string, unknown> = (config[sectionName] = {});
    // A section may be written more than once; later values win.
    const sections = doc.sections.filter((s) => s.name.toLowerCase() === sectionName.toLowerCase());
    for (const [key, spec] of Object.entries(keys)) {
      const entry = sections
        .map((s) => s.entries.get(key.toLowerCase()))
        .filter((e) => e !== undefined)
        .pop();
      if (!entry || entry.value === '') {
        if (spec.required) throw new ConfigError(`${file}: [${sectionName}] ${key}: missing (required)`);
        out[key] = spec.default;
        continue;
      }
      try {
        out[key] = spec.parse(entry.value);
      } catch (err) {
        throw new ConfigError(`${file}:${entry.line}: [${sectionName}] ${key}: bad value ${JSON.stringify(entry.value)}: ${(err as Error).message}`);
      }
    }
  }
  return { config: config as ConfigOf<S>, warnings };
}

// Value parsers: each throws an Error whose message says what was expected.

export const str = (dflt?: string, required = false): KeySpec<string> => ({ parse: (raw) => raw, default: dflt, required });

export const int = (dflt: number, min = 0, max = Number.MAX_SAFE_INTEGER): KeySpec<number> => ({
  default: dflt,
  parse: (raw) => {
    if (!/^-?\d+$/.test(raw)) throw new Error('expected a whole number');
    const n = Number(raw);
    if (n < min || n > max) throw new Error(`expected a number from ${min}${max === Number.MAX_SAFE_INTEGER ? ' up' : ` to ${max}`}`);
    return n;
  },
});

/** A yes/no switch: `true`/`false`, also `yes`/`no`, `on`/`off`, `1`/`0` (as Python's ConfigParser reads them), any case. */
export const bool = (dflt: boolean): KeySpec<boolean> => ({
  default: dflt,
  parse: (raw) => {
    const v = raw.trim().toLowerCase();
    if (['true', 'yes', 'on', '1'].includes(v)) return true;
    if (['false', 'no', 'off', '0'].includes(v)) return false;
    throw new Error('expected true or false');
  },
});

/**
 * A host name or address to bind or connect to, or a whole ZeroMQ endpoint
 * (`ipc:///path`, `tcp://host:port`), which then overrides the port.
 */
export const host = (dflt?: string, required = false): KeySpec<string> => ({
  default: dflt,
  required,
  parse: (raw) => {
    if (!/^(\*|[A-Za-z0-9_.:-]+|\[[0-9A-Fa-f:.]+\]|(tcp|ipc):\/\/\S+)$/.test(raw)) throw new Error('expected a host name, an IP address or a ZeroMQ endpoint');
    return raw;
  },
});

/** `None` (any case) means null, as in the 2014 files. */
export function orNone<T>(spec: KeySpec<T>): KeySpec<T | null> {
  return { default: spec.default, required: spec.required, parse: (raw) => (raw.toLowerCase() === 'none' ? null : spec.parse(raw)) };
}

export const severity = (dflt: Severity): KeySpec<Severity> => ({ default: dflt, parse: parseSeverity });

export const port = (dflt: number): KeySpec<number> => int(dflt, 1, 65535);

/** The `[log]` section shared by felix.cfg and acl_manager.cfg. */
export const logSection = (defaultFile: string) => ({
  LogFilePath: orNone(str(defaultFile)),
  LogSeverityFile: severity('INFO'),
  LogSeveritySys: severity('ERROR'),
  LogSeverityScreen: severity('ERROR'),
});

/** "tcp://host:port", with IPv6 literals bracketed; a whole ZeroMQ endpoint is kept as it is. */
export function zmqAddress(hostOrAddr: string, p: number): string {
  if (hostOrAddr.includes('://')) return hostOrAddr;
  const h = hostOrAddr.includes(':') && !hostOrAddr.startsWith('[') ? `[${hostOrAddr}]` : hostOrAddr;
  return `tcp://${h}:${p}`;
}
