/**
 * The kernel's route to one address, as `ip route get` answers (for
 * `/status/route`, read-only): outgoing interface and next hop, and who made
 * the most specific route containing it (`ip route show match`), e.g. `bird`.
 */
import type { CommandRunner } from './commands.js';
import { CommandError } from './commands.js';

export interface RouteLookupResult {
  dev: string | null;
  gateway: string | null;
  protocol: string | null;
  /** Why there is no route (the kernel's words). */
  error: string | null;
}

interface IpRoute {
  dst?: string;
  dev?: string;
  gateway?: string;
  protocol?: string;
  type?: string;
}

const asRoutes = (text: string): IpRoute[] => {
  const v: unknown = JSON.parse(text);
  return Array.isArray(v) ? (v.filter((r) => typeof r === 'object' && r !== null) as IpRoute[]) : [];
};

/** Prefix length of an `ip -j route` dst: `default` 0, a bare address its full length. */
function prefixLength(dst: string | undefined): number {
  if (dst === undefined || dst === 'default') return 0;
  const slash = dst.indexOf('/');
  if (slash >= 0) return Number(dst.slice(slash + 1));
  return dst.includes(':') ? 128 : 32;
}

/** `ip -j route get` and `ip -j route show match` output → the route. Pure. */
export function parseRouteLookup(getJson: string, matchJson: string): RouteLookupResult {
  const got = asRoutes(getJson)[0];
  if (!got) return { dev: null, gateway: null, protocol: null, error: 'no route' };
  const best = asRoutes(matchJson)
    .filter((r) => r.dev === got.dev && r.gateway === got.gateway)
    .sort((a, b) => prefixLength(b.dst) - prefixLength(a.dst))[0];
  return { dev: got.dev ?? null, gateway: got.gateway ?? null, protocol: best?.protocol ?? null, error: null };
}

export class IpRouteLookup {
  constructor(private readonly runner: CommandRunner) {}

  async lookup(dst: string): Promise<RouteLookupResult> {
    const family = dst.includes(':') ? '-6' : '-4';
    let got: string;
    try {
      got = await this.runner.run('ip', ['-j', family, 'route', 'get', dst]);
    } catch (err) {
      const why = err instanceof CommandError ? err.stderr.trim().replace(/^RTNETLINK answers: /, '') : (err as Error).message;
      return { dev: null, gateway: null, protocol: null, error: why || 'no route' };
    }
    const match = await this.runner.run('ip', ['-j', family, 'route', 'show', 'match', dst]).catch(() => '[]');
    return parseRouteLookup(got, match);
  }
}
