/**
 * BIRD 2 configuration for one compute host (SPEC §1, §9): BIRD learns the
 * per-endpoint /32 (/128) routes Felix puts in the kernel, sends them over a
 * full iBGP mesh to every other host on the shared L2 fabric, and installs
 * what the other hosts send into the kernel. Each address family has its own
 * session per peer, between the two hosts' fabric addresses in that family,
 * so an IPv6 route's next hop is the owner's IPv6 fabric address (not
 * whichever IPv6 address BIRD would find on the interface of an IPv4
 * session), and an IPv6 fabric that does not work shows as a session that is
 * not Established. Rendering is pure; reading the host list from felix.txt
 * is a separate pure step.
 */
import { parseDataFile, shortHost } from '../plugin/data.js';
import { canonicalCidr, canonicalIp, ipFamily, isIp } from '../common/wire/codec.js';

export interface BirdHost {
  host: string;
  /** The host's fabric address: IPv4, or IPv6 for a host without IPv4. */
  ip: string;
  /** The IPv6 fabric address of a host whose `ip` is IPv4 (felix.txt `ip6=`): its IPv6 sessions use it. */
  ip6?: string | null;
}

export interface BirdConfigInput {
  self: BirdHost;
  /** Every other host of the AS; each gets a direct iBGP session per address family. */
  peers: BirdHost[];
  asNumber?: number;
  /**
   * Container address ranges (IPv4 and/or IPv6); only host routes inside them are carried.
   * Default: {@link DEFAULT_PREFIXES} of each family `self` has an address in.
   */
  prefixes?: string[];
  /** Defaults to self.ip; required when self.ip is IPv6 (a router id is a 32-bit number). */
  routerId?: string;
  /** BIRD's log file; default stderr (the lab and a foreground BIRD collect it). */
  logFile?: string;
}

type Family = 4 | 6;

export const DEFAULT_AS = 64511;
/** The container range of each family unless prefixes are given: the seed's, and the lab's IPv6 one (SPEC §9). */
export const DEFAULT_PREFIXES: Record<Family, string> = { 4: '192.168.0.0/16', 6: 'fd00:192:168::/48' };
const LOG_LIMIT = 10_000_000;

/** Family-specific names BIRD uses. */
const FAMILY = {
  4: { name: 'IPv4', channel: 'ipv4', hostLength: 32 },
  6: { name: 'IPv6', channel: 'ipv6', hostLength: 128 },
} as const;

/** The address `h` has in `family` for its BGP sessions, if any. */
function addressIn(h: BirdHost, family: Family): string | undefined {
  if (ipFamily(h.ip) === family) return h.ip;
  return family === 6 && h.ip6 ? h.ip6 : undefined;
}

/** BIRD symbols for these names: letters, digits and `_` only, unique within the config. */
function symbols(names: string[]): string[] {
  const used = new Set<string>();
  return names.map((n) => {
    const base = n.replace(/[^A-Za-z0-9]/g, '_');
    let name = base;
    for (let i = 2; used.has(name); i++) name = `${base}_${i}`;
    used.add(name);
    return name;
  });
}

function quote(s: string): string {
  return `"${s.replace(/["\\]/g, '\\$&')}"`;
}

/**
 * Checks the mesh-wide options (those a command line gives); returns the AS
 * and, if prefixes were given, the canonical prefixes per family. Throws an
 * Error naming a bad value.
 */
export function meshOptions(opts: Pick<BirdConfigInput, 'asNumber' | 'prefixes' | 'routerId'>): {
  asNumber: number;
  prefixes: Record<Family, string[]> | null;
} {
  const asNumber = opts.asNumber ?? DEFAULT_AS;
  if (!Number.isInteger(asNumber) || asNumber < 1 || asNumber > 4294967295) throw new Error(`bad AS number '${asNumber}'`);
  if (opts.routerId !== undefined && !(isIp(opts.routerId) && ipFamily(opts.routerId) === 4))
    throw new Error(`bad router id '${opts.routerId}' (an IPv4 address)`);
  if (opts.prefixes === undefined) return { asNumber, prefixes: null };
  const byFamily: Record<Family, string[]> = { 4: [], 6: [] };
  for (const raw of opts.prefixes) {
    const cidr = canonicalCidr(raw);
    if (cidr === null || !raw.includes('/')) throw new Error(`bad prefix '${raw}' (expected a CIDR such as 192.168.0.0/16)`);
    const list = byFamily[ipFamily(cidr)];
    if (!list.includes(cidr)) list.push(cidr);
  }
  if (byFamily[4].length + byFamily[6].length === 0) throw new Error('no container prefix given');
  return { asNumber, prefixes: byFamily };
}

/** One address family of the mesh: its container prefixes and the session address of every host. */
interface MeshFamily {
  family: Family;
  prefixes: string[];
  /** Sessions over the hosts' `ip` keep the names they had before IPv6 (`mesh`, `peer_HOST`); those over `ip6` are `mesh6`, `peer_HOST_v6`. */
  overIp6: boolean;
  self: string;
  peers: Array<{ host: string; ip: string }>;
}

/** Validates the whole input: every host needs an address in each family of the prefixes; the router id defaults to an IPv4 host address. */
function checkInput(input: BirdConfigInput): { families: MeshFamily[]; routerId: string; asNumber: number } {
  const options = meshOptions(input);
  for (const h of [input.self, ...input.peers]) {
    if (!isIp(h.ip)) throw new Error(`bad address '${h.ip}' for host '${h.host}'`);
    if (h.ip6 && !(isIp(h.ip6) && ipFamily(h.ip6) === 6 && ipFamily(h.ip) === 4))
      throw new Error(`bad IPv6 address '${h.ip6}' for host '${h.host}' (an IPv6 address beside an IPv4 ip)`);
  }
  const prefixes = options.prefixes ?? { 4: addressIn(input.self, 4) ? [DEFAULT_PREFIXES[4]] : [], 6: addressIn(input.self, 6) ? [DEFAULT_PREFIXES[6]] : [] };
  const families = ([4, 6] as const)
    .filter((family) => prefixes[family].length > 0)
    .map((family): MeshFamily => {
      const address = (h: BirdHost) => {
        const ip = addressIn(h, family);
        if (ip === undefined) {
          const hint = family === 6 ? ' (ip6= in felix.txt)' : '';
          throw new Error(
            `host '${h.host}' has no ${FAMILY[family].name} address${hint} for the ${FAMILY[family].name} container prefixes ${prefixes[family].join(', ')}`,
          );
        }
        return canonicalIp(ip);
      };
      const self = address(input.self);
      const peers = input.peers.map((p) => ({ host: p.host, ip: address(p) })).filter((p) => p.ip !== self);
      return { family, prefixes: prefixes[family], overIp6: ipFamily(input.self.ip) !== family, self, peers };
    });
  const routerId = input.routerId ?? (ipFamily(input.self.ip) === 4 ? input.self.ip : undefined);
  if (routerId === undefined) throw new Error(`missing router id: '${input.self.host}' has an IPv6 address, and a router id is an IPv4 address`);
  return { families, routerId: canonicalIp(routerId), asNumber: options.asNumber };
}

/** Renders bird.conf for `self`. Throws an Error naming the bad value on bad input. */
export function renderBirdConfig(input: BirdConfigInput): string {
  const { families, routerId, asNumber } = checkInput(input);
  const self = { host: input.self.host, ip: canonicalIp(input.self.ip) };
  // Host routes inside the container ranges: what Felix programs, one per endpoint address.
  const hostRoutes = ({ family, prefixes }: MeshFamily) =>
    `[ ${prefixes.map((c) => `${c}{${FAMILY[family].hostLength},${FAMILY[family].hostLength}}`).join(', ')} ]`;

  const out: string[] = [
    `# BIRD 2 configuration for ${self.host} (${self.ip}), generated by calico-bird-config.`,
    `# iBGP full mesh in AS ${asNumber}; container prefixes: ${families.flatMap((f) => f.prefixes).join(', ')}.`,
    '',
    // A log file is kept at most LOG_LIMIT bytes, with one older file beside it: BIRD runs for months.
    `log ${input.logFile ? `${quote(input.logFile)} ${LOG_LIMIT} ${quote(`${input.logFile}.old`)}` : 'stderr'} all;`,
    `router id ${routerId};`,
    '# Graceful restart (run bird -R): a restarted BIRD keeps its kernel routes and its peers keep',
    '# its routes until the sessions are back; a peer that stays down delays that at most this long.',
    'graceful restart wait 10;',
    '',
    ...families.map((f) => `define ENDPOINT_ROUTES_V${f.family} = ${hostRoutes(f)};`),
    '',
    '# Interfaces come and go with containers: notice them within a second.',
    'protocol device {',
    '  scan time 1;',
    '}',
  ];
  for (const { family } of families) {
    out.push(
      '',
      `# Felix's routes to local endpoints (dev tap…, /${FAMILY[family].hostLength}) are learnt from the kernel;`,
      '# routes from the other hosts (BGP) are installed into it.',
      `protocol kernel kernel${family} {`,
      '  learn;',
      '  scan time 1;',
      '  graceful restart;',
      `  ${FAMILY[family].channel} {`,
      `    import where net ~ ENDPOINT_ROUTES_V${family};`,
      '    export where source = RTS_BGP;',
      '  };',
      '}',
    );
  }
  for (const { family, overIp6, self: local } of families) {
    out.push(
      '',
      ...(overIp6
        ? ["# The IPv6 routes have sessions of their own, between the hosts' IPv6 fabric addresses."]
        : [
            '# Every other host is a direct neighbour on the shared L2 fabric; next hop self so',
            '# packets for an endpoint go straight to the host that owns it.',
          ]),
      `template bgp ${overIp6 ? 'mesh6' : 'mesh'} {`,
      `  local ${local} as ${asNumber};`,
      '  direct;',
      '  connect delay time 1;',
      '  connect retry time 5;',
      '  error wait time 1, 30;',
      '  hold time 9;',
      '  graceful restart on;',
      `  ${FAMILY[family].channel} {`,
      `    import where net ~ ENDPOINT_ROUTES_V${family};`,
      `    export where source = RTS_INHERIT && net ~ ENDPOINT_ROUTES_V${family};`,
      '    next hop self;',
      '  };',
      '}',
    );
  }
  const sessions = families.flatMap(({ overIp6, peers }) =>
    peers.map((p) => ({ ...p, template: overIp6 ? 'mesh6' : 'mesh', name: `peer_${p.host}${overIp6 ? '_v6' : ''}` })),
  );
  const names = symbols(sessions.map((s) => s.name));
  sessions.forEach((s, i) => {
    out.push('', `protocol bgp ${names[i]} from ${s.template} {`, `  description ${quote(s.host)};`, `  neighbor ${s.ip} as ${asNumber};`, '}');
  });
  return out.join('\n') + '\n';
}

/** The `[felix HOST]` sections of a felix.txt; anything wrong is a problem worded with file and line. */
export function parseFelixTxt(text: string, file: string): { hosts: BirdHost[]; problems: string[] } {
  const parsed = parseDataFile(text, file);
  const hosts: BirdHost[] = [];
  for (const entry of parsed.entries.values())
    if (entry.kind === 'felix') hosts.push({ host: entry.value.host, ip: entry.value.ip, ...(entry.value.ip6 ? { ip6: entry.value.ip6 } : {}) });
  return { hosts, problems: [...parsed.syntaxErrors, ...parsed.badSections.values()] };
}

/** Splits the host list into this host and its peers; host names are compared up to the first dot. */
export function meshFor(hosts: BirdHost[], selfName: string): { self: BirdHost; peers: BirdHost[] } {
  const name = shortHost(selfName);
  const self = hosts.find((h) => shortHost(h.host) === name);
  if (!self) throw new Error(`host '${name}' is not in the host list (have ${hosts.map((h) => h.host).join(', ') || 'none'})`);
  return { self, peers: hosts.filter((h) => h !== self && shortHost(h.host) !== name) };
}
