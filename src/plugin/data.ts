/**
 * The plugin's data files (SPEC §7): `[felix HOST]` and `[endpoint NAME]`
 * INI sections, parsed into a model. Parsing is pure; {@link DataMerger}
 * keeps, per file and per section, the last version that was good, so a typo
 * never destroys endpoints.
 *
 * Problems are worded with file, line, section type and key only, never a
 * value or a line's text: a data file may be something else (a secret that a
 * link pointed at, a token pasted by mistake), and the log is read by others.
 */
import { formatIni, parseIni, IniSection } from '../common/ini.js';
import { canonicalIp, ipFamily, isEndpointId, isIp, isMac } from '../common/wire/codec.js';

export interface FelixHost {
  /** Short host name (up to the first dot, lower case). */
  host: string;
  ip: string;
  /**
   * `ip6=`: the IPv6 fabric address of a host whose `ip` is IPv4, for BIRD's
   * IPv6 sessions (the plugin reaches Felix on `ip` only).
   */
  ip6: string | null;
  /** Felix's endpoint API port; the data may override the default per host. */
  port: number | null;
  source: string;
}

export interface PluginEndpoint {
  id: string;
  addrs: string[];
  mac: string;
  host: string;
  groups: string[];
  source: string;
}

export interface PluginData {
  felixes: Map<string, FelixHost>;
  endpoints: Map<string, PluginEndpoint>;
}

export type DataEntry = { kind: 'felix'; value: FelixHost } | { kind: 'endpoint'; value: PluginEndpoint };

export interface ParsedFile {
  /** Good entries by section name. */
  entries: Map<string, DataEntry>;
  /** Sections that were bad, by name; each has an error message. */
  badSections: Map<string, string>;
  /** Lines that are not INI at all: the whole file is then unusable. */
  syntaxErrors: string[];
}

/** Host names are compared up to the first dot, case-insensitively. */
export function shortHost(name: string): string {
  return name.split('.')[0]!.toLowerCase();
}

/** A bad section, at the line of the key at fault (or of the section). The message names no value. */
class SectionError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(message);
  }
}

function value(section: IniSection, key: string): string | undefined {
  const v = section.entries.get(key)?.value;
  return v === undefined || v === '' ? undefined : v;
}

function need(section: IniSection, key: string): string {
  const v = value(section, key);
  if (v === undefined) throw new SectionError(section.line, `missing '${key}'`);
  return v;
}

function bad(section: IniSection, key: string, expected: string): SectionError {
  return new SectionError(section.entries.get(key)!.line, `${key}: ${expected}`);
}

/** Files written for the originals may give an address as `A/32` (`A/128`): the same address (SPEC §11). */
function hostAddress(s: string): string {
  const m = /^(.+)\/(32|128)$/.exec(s);
  return m && isIp(m[1]!) && (m[2] === '32') === !m[1]!.includes(':') ? m[1]! : s;
}

function parseFelix(section: IniSection, host: string, where: string): FelixHost {
  const ip = hostAddress(need(section, 'ip'));
  if (!isIp(ip)) throw bad(section, 'ip', 'not an IP address');
  const ip6 = value(section, 'ip6');
  if (ip6 !== undefined && !(isIp(ip6) && ipFamily(ip6) === 6)) throw bad(section, 'ip6', 'not an IPv6 address');
  if (ip6 !== undefined && ipFamily(ip) === 6) throw bad(section, 'ip6', "only for a host whose 'ip' is IPv4");
  const portRaw = value(section, 'port');
  let port: number | null = null;
  if (portRaw !== undefined) {
    port = Number(portRaw);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw bad(section, 'port', 'not a port number (1-65535)');
  }
  return { host: shortHost(value(section, 'host') ?? host), ip: canonicalIp(ip), ip6: ip6 === undefined ? null : canonicalIp(ip6), port, source: where };
}

function parseEndpoint(section: IniSection, where: string): PluginEndpoint {
  const id = need(section, 'id');
  if (!isEndpointId(id)) throw bad(section, 'id', 'not an endpoint id (1-255 characters, no white space or control characters)');
  const addrs = need(section, 'ip')
    .split(',')
    .map((s) => hostAddress(s.trim()))
    .filter((s) => s !== '');
  if (!addrs.every(isIp)) throw bad(section, 'ip', 'not an IP address (or a comma-separated list of them)');
  // The originals also wrote MACs with '-' between the octets.
  const mac = need(section, 'mac').replace(/-/g, ':');
  if (!isMac(mac)) throw bad(section, 'mac', 'not a MAC address');
  const groups = (value(section, 'group') ?? 'default')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  return { id, addrs: addrs.map(canonicalIp), mac: mac.toLowerCase(), host: shortHost(need(section, 'host')), groups, source: where };
}

/** Parses one data file's text; `file` only names it in messages. */
export function parseDataFile(text: string, file: string): ParsedFile {
  const doc = parseIni(text);
  const out: ParsedFile = { entries: new Map(), badSections: new Map(), syntaxErrors: doc.errors.map((e) => `${file}:${e.line}: ${e.message}`) };
  for (const section of doc.sections) {
    const where = `${file}:${section.line}`;
    const [word = '', ...rest] = section.name.split(/\s+/);
    // The original plugin matched section names without regard to case (SPEC §11).
    const kind = word.toLowerCase();
    const name = rest.join(' ');
    if (kind === 'felix' || kind === 'endpoint') {
      try {
        out.entries.set(
          `${kind} ${name}`,
          kind === 'felix' ? { kind, value: parseFelix(section, name, where) } : { kind, value: parseEndpoint(section, where) },
        );
      } catch (err) {
        if (!(err instanceof SectionError)) throw err;
        out.badSections.set(`${kind} ${name}`, `${file}:${err.line}: [${kind}] ${err.message}`);
      }
    } else out.badSections.set(section.name, `${where}: unknown section type (expected 'felix' or 'endpoint')`);
  }
  return out;
}

/** What network-container writes for one endpoint (SPEC §8). */
export interface EndpointSectionValues {
  id: string;
  ip: string;
  mac: string;
  host: string;
  group: string;
}

/** Host names: dot-separated labels of letters, digits, `-` and `_`, up to 253 characters. */
const HOST_RE = /^(?=.{1,253}$)[A-Za-z0-9_][A-Za-z0-9_-]*(\.[A-Za-z0-9_][A-Za-z0-9_-]*)*$/;
/** Group names: a letter or digit, then letters, digits, `_`, `.`, `-` (a `,` would name two groups). */
const GROUP_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;

/**
 * Why `value` cannot be written as `key` of an `[endpoint]` section so that it
 * reads back exactly as given, or null if it can. White space or a control
 * character would end the value or the line and let the rest add keys or
 * sections, so no value may hold one.
 */
export function unwritable(key: keyof EndpointSectionValues, value: string): string | null {
  switch (key) {
    case 'id':
      if (!isEndpointId(value)) return 'not an endpoint id (1-255 characters, no white space or control characters)';
      // After `id=`, '=', ':', '[' and ']' are plain characters, and ';' or '#' start a comment only
      // after white space (which ids never hold) or as the value's first character.
      return /^[;#]/.test(value) ? "starts with ';' or '#', which the data file would read as a comment" : null;
    case 'host':
      return HOST_RE.test(value) ? null : 'not a host name (dot-separated letters, digits, - and _)';
    case 'group':
      return GROUP_RE.test(value) ? null : 'not a group name (a letter or digit, then letters, digits, _ . or -)';
    case 'ip':
      return addressesProblem(value);
    case 'mac':
      return isMac(value) ? null : 'not a MAC address';
  }
}

/**
 * Why `value` is not what network-container gives one endpoint (SPEC §8): an
 * address, or an IPv4,IPv6 pair for a dual-stack container; null if it is.
 */
function addressesProblem(value: string): string | null {
  const addrs = value.split(',');
  if (!addrs.every(isIp)) return 'not an IP address (or an IPv4,IPv6 pair)';
  if (addrs.length > 2 || new Set(addrs.map(ipFamily)).size < addrs.length)
    return 'more than one address of a family (a dual-stack endpoint has one IPv4 and one IPv6 address)';
  return null;
}

/**
 * The `ip=` value network-container writes for `value` (an address or an
 * IPv4,IPv6 pair, in either order): canonical addresses, IPv4 first. Throws
 * naming the problem when `value` is {@link unwritable} as `ip`.
 */
export function canonicalEndpointIp(value: string): string {
  const why = addressesProblem(value);
  if (why) throw new Error(`bad IP address ${JSON.stringify(value)}: ${why}`);
  return value
    .split(',')
    .map(canonicalIp)
    .sort((a, b) => ipFamily(a) - ipFamily(b))
    .join(',');
}

/**
 * The name of an endpoint's section and data file: its `ip=` value with `.`
 * and `:` turned into `_`, and the `,` of a dual-stack pair into `-`.
 */
export const endpointKey = (ip: string): string => ip.replace(/[.:]/g, '_').replace(/,/g, '-');

/** One endpoint's `[endpoint]` section, as network-container writes it; throws naming the key if a value is {@link unwritable}. */
export function formatEndpointSection(e: EndpointSectionValues): string {
  for (const key of ['id', 'ip', 'mac', 'host', 'group'] as const) {
    const why = unwritable(key, e[key]);
    if (why) throw new Error(`cannot write ${key} ${JSON.stringify(e[key])}: ${why}`);
  }
  return formatIni({ [`endpoint ${endpointKey(e.ip)}`]: { id: e.id, ip: e.ip, mac: e.mac, host: e.host, group: e.group } }, { separator: '=' });
}

/**
 * The endpoint of a file that holds one `[endpoint]` section (what
 * {@link formatEndpointSection} wrote), as the values to write it again:
 * as the plugin reads them (host up to its first dot, MAC in lower case).
 * Throws naming the file when it holds anything else or is not good data.
 */
export function readEndpointSection(text: string, file: string): EndpointSectionValues {
  const parsed = parseDataFile(text, file);
  const problem = [...parsed.syntaxErrors, ...parsed.badSections.values()][0];
  if (problem) throw new Error(problem);
  const entries = [...parsed.entries.values()];
  const ep = entries[0];
  if (entries.length !== 1 || ep?.kind !== 'endpoint') throw new Error(`${file}: expected one [endpoint] section, found ${entries.length} sections`);
  return { id: ep.value.id, ip: ep.value.addrs.join(','), mac: ep.value.mac, host: ep.value.host, group: ep.value.groups.join(',') };
}

/** What the `[felix HOST]` section of a host says (SPEC §7): its address, its IPv6 fabric address for BIRD, its endpoint port. */
export interface FelixSectionValues {
  host: string;
  ip: string;
  ip6?: string | undefined;
  port?: number | undefined;
}

/** One host's `[felix HOST]` section, as the lab writes felix.txt; throws naming the key if a value would not read back. */
export function formatFelixSection(f: FelixSectionValues): string {
  const problems: Array<[string, unknown, string | null]> = [
    ['host', f.host, unwritable('host', f.host)],
    ['ip', f.ip, isIp(f.ip) ? null : 'not an IP address'],
    ['ip6', f.ip6, f.ip6 === undefined || (isIp(f.ip6) && ipFamily(f.ip6) === 6) ? null : 'not an IPv6 address'],
    ['port', f.port, f.port === undefined || (Number.isInteger(f.port) && f.port >= 1 && f.port <= 65535) ? null : 'not a port number (1-65535)'],
  ];
  const bad = problems.find(([, , why]) => why !== null);
  if (bad) throw new Error(`cannot write ${bad[0]} ${JSON.stringify(String(bad[1]))}: ${bad[2]}`);
  return formatIni({ [`felix ${f.host}`]: { ip: f.ip, ip6: f.ip6, port: f.port, host: f.host } }, { separator: '=' });
}

/**
 * Merges the files of a data source into one {@link PluginData}, keeping the
 * last good version of anything that went bad. Feed it every file's current
 * text (or null once a file is gone) and read the merged model.
 */
export class DataMerger {
  private readonly files = new Map<string, Map<string, DataEntry>>();

  /** Updates one file; returns the problems found (already worded for a log line). */
  update(file: string, text: string | null): string[] {
    if (text === null) {
      this.files.delete(file);
      return [];
    }
    const parsed = parseDataFile(text, file);
    if (parsed.syntaxErrors.length > 0) {
      const kept = this.files.has(file) ? 'keeping its last good content' : 'skipping it';
      return parsed.syntaxErrors.map((e) => `${e} (file not used, ${kept})`);
    }
    const previous = this.files.get(file);
    const problems: string[] = [];
    for (const [name, message] of parsed.badSections) {
      const old = previous?.get(name);
      if (old) parsed.entries.set(name, old);
      problems.push(`${message} (${old ? 'keeping its last good version' : 'skipped'})`);
    }
    this.files.set(file, parsed.entries);
    return problems;
  }

  knownFiles(): string[] {
    return [...this.files.keys()];
  }

  /** The merged model; the first file (in name order) wins when two define the same thing. */
  merged(): { data: PluginData; conflicts: string[] } {
    const data: PluginData = { felixes: new Map(), endpoints: new Map() };
    const conflicts: string[] = [];
    for (const file of [...this.files.keys()].sort()) {
      for (const entry of this.files.get(file)!.values()) {
        const map: Map<string, FelixHost | PluginEndpoint> = entry.kind === 'felix' ? data.felixes : data.endpoints;
        const key = entry.kind === 'felix' ? entry.value.host : entry.value.id;
        const existing = map.get(key);
        if (existing) {
          if (JSON.stringify({ ...existing, source: '' }) !== JSON.stringify({ ...entry.value, source: '' }))
            conflicts.push(`${entry.value.source}: ${entry.kind} '${key}' is also defined at ${existing.source}; using that one`);
          continue;
        }
        map.set(key, entry.value);
      }
    }
    return { data, conflicts };
  }
}
