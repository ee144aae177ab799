/**
 * What `explain` asks the daemons, and how it finds the two ends: every
 * daemon's /status first (which Felix has which endpoint; which daemon is
 * the ACL manager), then the endpoint and route documents of the Felixes
 * and the ACL manager concerned. A session remembers what it was told, so
 * many explanations (the lab's test of the whole matrix) ask each thing once.
 */
import type { DaemonStatus, EndpointStatus } from '../common/metrics.js';
import type { AclEndpointView, FelixEndpointView, RouteView } from '../common/status-api.js';
import { canonicalIp, ipFamily, isIp } from '../common/wire/codec.js';
import { DaemonRef, queryStatus, queryView } from './daemons.js';
import type { ExplainEnd, ExplainInputs, PacketSpec } from './explain.js';

export interface ExplainRequest {
  /** Container addresses or endpoint ids. */
  src: string;
  dst: string;
  packet: PacketSpec;
  /** When both are given as ids and share both families: which one (default IPv4). */
  family?: 4 | 6;
}

/** A question explain cannot answer (no such endpoint, a daemon unreachable): one line for the operator. */
export class ExplainError extends Error {}

interface Found {
  ref: DaemonRef;
  status: DaemonStatus;
}

interface Located {
  felix: Found;
  row: EndpointStatus;
}

export class ExplainSession {
  private daemons: Promise<Found[]> | undefined;
  private readonly views = new Map<string, Promise<unknown>>();

  constructor(
    private readonly refs: DaemonRef[],
    private readonly timeoutMs = 3000,
  ) {}

  async inputs(req: ExplainRequest): Promise<ExplainInputs> {
    const daemons = await this.statuses();
    const felixes = daemons.filter((d) => d.status.component === 'calico-felix');
    if (felixes.length === 0) throw new ExplainError("no Felix answered: give every host's Felix metrics address (--url) or --lab-dir");
    const aclmgr = daemons.find((d) => d.status.component === 'calico-acl-manager');
    const src = this.locate(felixes, req.src, 'SRC');
    const dst = this.locate(felixes, req.dst, 'DST');
    if (src.row.id === dst.row.id) throw new ExplainError(`SRC and DST are the same endpoint ${src.row.id}`);
    const family = chooseFamily(req, src.row, dst.row);
    const addrOf = (arg: string, row: EndpointStatus) => (isIp(arg) ? canonicalIp(arg) : row.addrs.map(canonicalIp).find((a) => ipFamily(a) === family)!);
    const [srcEnd, dstEnd, route] = await Promise.all([
      this.end(src, addrOf(req.src, src.row), aclmgr),
      this.end(dst, addrOf(req.dst, dst.row), aclmgr),
      this.view<RouteView>(src.felix.ref, 'route', { dst: addrOf(req.dst, dst.row) }),
    ]);
    if (!route) throw new ExplainError(`Felix on ${hostOf(src.felix)} does not answer /status/route (an older Felix?)`);
    return { family, src: srcEnd, dst: dstEnd, route, packet: req.packet };
  }

  /** Every daemon's /status, asked once; an unreachable one is an error (its endpoints would be missing). */
  private statuses(): Promise<Found[]> {
    this.daemons ??= Promise.all(
      this.refs.map(async (ref) => {
        const r = await queryStatus(ref, this.timeoutMs);
        if (!r.status) throw new ExplainError(`${ref.url}: ${r.error ?? 'no answer'}`);
        return { ref, status: r.status };
      }),
    );
    return this.daemons;
  }

  private locate(felixes: Found[], arg: string, which: string): Located {
    const addr = isIp(arg) ? canonicalIp(arg) : null;
    const hits = felixes.flatMap((felix) =>
      (felix.status.endpoints ?? [])
        .filter((row) => row.id === arg || (addr !== null && row.addrs.some((a) => canonicalIp(a) === addr)))
        .map((row) => ({ felix, row })),
    );
    if (hits.length === 0)
      throw new ExplainError(`${which} ${arg}: no endpoint with that ${addr ? 'address' : 'id'} on the Felixes asked (${felixes.map(hostOf).join(', ')})`);
    if (hits.length > 1)
      throw new ExplainError(`${which} ${arg}: claimed by several endpoints (${hits.map((h) => `${h.row.id} on ${hostOf(h.felix)}`).join(', ')})`);
    return hits[0]!;
  }

  private async end(at: Located, addr: string, aclmgr: Found | undefined): Promise<ExplainEnd> {
    const id = at.row.id;
    const [felix, acl] = await Promise.all([
      this.view<FelixEndpointView>(at.felix.ref, 'endpoint', { id }),
      aclmgr ? this.view<AclEndpointView>(aclmgr.ref, 'endpoint', { id }) : Promise.resolve(null),
    ]);
    if (!felix) throw new ExplainError(`Felix on ${hostOf(at.felix)} no longer has endpoint ${id}`);
    return { addr, felix, acl };
  }

  private view<T>(ref: DaemonRef, name: string, query: Record<string, string>): Promise<T | null> {
    // By the daemon's place in the list, not its URL: a lab's Felixes all listen on 127.0.0.1:9091, each in its own namespace.
    const key = JSON.stringify([this.refs.indexOf(ref), name, query]);
    let v = this.views.get(key);
    if (!v) this.views.set(key, (v = queryView<T>(ref, name, query, this.timeoutMs)));
    return v as Promise<T | null>;
  }
}

const hostOf = (f: Found): string => f.status.host ?? f.ref.url;

function chooseFamily(req: ExplainRequest, src: EndpointStatus, dst: EndpointStatus): 4 | 6 {
  const given = [req.src, req.dst].filter(isIp).map((a) => ipFamily(a));
  if (given.length === 2 && given[0] !== given[1]) throw new ExplainError(`SRC ${req.src} and DST ${req.dst} are of different address families`);
  const families = (row: EndpointStatus) => new Set(row.addrs.map((a) => ipFamily(a)));
  const [a, b] = [families(src), families(dst)];
  const shared = ([4, 6] as const).filter((f) => a.has(f) && b.has(f));
  const wanted = given[0] ?? req.family ?? shared[0];
  if (wanted === undefined || !shared.includes(wanted))
    throw new ExplainError(
      `${src.id} (${src.addrs.join(' ')}) and ${dst.id} (${dst.addrs.join(' ')}) share no address${wanted ? ` in IPv${wanted}` : ' family'}: no packet can pass between them`,
    );
  return wanted;
}
