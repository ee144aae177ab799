/**
 * Felix's record of its endpoints and the resync protocol (SPEC §3). Handlers
 * answer at once and only record desired state; the dataplane programs it
 * later, asynchronously. Side effects go through two narrow sinks so that
 * the whole protocol is unit-testable without sockets or a kernel.
 */
import { AclInterner } from './acl-interner.js';
import type { Logger } from '../common/logging.js';
import { Rc, Response, canonicalIp, success } from '../common/wire/codec.js';
import type { Acls } from '../common/wire/acl-api.js';
import {
  ENDPOINTCREATED,
  ENDPOINTDESTROYED,
  ENDPOINTUPDATED,
  EndpointCreated,
  EndpointDestroyed,
  EndpointUpdated,
  ResyncResponse,
} from '../common/wire/endpoint-api.js';
import type { EndpointSpec } from './dataplane/index.js';
import { defaultInterfaceName, endpointSuffix, isInterfaceName } from '../common/endpoint-names.js';

export type { EndpointSpec };

export interface DataplaneSink {
  /** Why the host forbids an endpoint this address (its own, or on a non-endpoint link), or null. */
  addressProblem(addr: string): Promise<string | null>;
  upsertEndpoint(ep: EndpointSpec): void;
  setAcls(id: string, acls: Acls): void;
  removeEndpoint(id: string): void;
  /** After a completed resync: remove what belongs to no known endpoint. */
  cleanupStale(): void;
  /** Told when an apply starts (true) and ends (false). */
  onApplying?: (applying: boolean) => void;
}

export interface AclSink {
  /** Subscribe to the endpoint's ACL topic, then ask for its ACL state. */
  watch(id: string): void;
  unwatch(id: string): void;
}

export interface FelixEndpoint extends EndpointSpec {
  acls: Acls | null;
  /** When the last ACLUPDATE arrived (ms), for status and re-requests. */
  aclsAt: number | null;
}

interface Resync {
  id: string;
  expected: number | null;
  /** Every endpoint this resync named, accepted or refused: counts toward endpoint_count. */
  counted: Set<string>;
  /** Endpoints announced (and accepted) by this resync. */
  seen: Set<string>;
  /** Endpoints created or updated by pushes while it ran: current, whatever the resync says. */
  touched: Set<string>;
}

export class EndpointManager {
  private readonly eps = new Map<string, FelixEndpoint>();
  /** Equal ACLs held (and rendered) once. */
  readonly acls = new AclInterner();
  /** What each endpoint holds (SPEC §3 "What Felix trusts"): one owner per chain suffix, interface and address. */
  private readonly bySuffix = new Map<string, string>();
  private readonly byIfname = new Map<string, string>();
  private readonly byAddr = new Map<string, string>();
  private resync: Resync | null = null;
  /** Resyncs completed so far. */
  resyncsCompleted = 0;

  constructor(private readonly opts: { log: Logger; dataplane: DataplaneSink; acls: AclSink; interfacePrefix: string }) {}

  get endpoints(): ReadonlyMap<string, FelixEndpoint> {
    return this.eps;
  }

  get resyncInProgress(): string | null {
    return this.resync?.id ?? null;
  }

  /**
   * Answers an endpoint request. `hostRefusal`: why the host itself forbids
   * an address the request brings (one of its own, or on a link that is not
   * an endpoint's), found by the caller before (see newAddresses).
   */
  handle(msg: EndpointCreated | EndpointUpdated | EndpointDestroyed, hostRefusal: string | null = null): Response {
    switch (msg.type) {
      case ENDPOINTCREATED:
        return this.created(msg, hostRefusal);
      case ENDPOINTUPDATED:
        return this.updated(msg, hostRefusal);
      case ENDPOINTDESTROYED:
        return this.destroyed(msg);
    }
  }

  /** The addresses a create or update would give its endpoint that it does not hold yet (the ones to check against the host). */
  newAddresses(msg: EndpointCreated | EndpointUpdated): string[] {
    return [...new Set(msg.addrs.map((a) => canonicalIp(a.addr)))].filter((a) => this.byAddr.get(a) !== msg.endpoint_id);
  }

  /** A RESYNCSTATE with this id has been sent. */
  beginResync(id: string): void {
    this.resync = { id, expected: null, counted: new Set(), seen: new Set(), touched: new Set() };
    this.opts.log.info({ resyncId: id, known: this.eps.size }, 'resync started');
  }

  /** The plugin answered the RESYNCSTATE; false if the resync failed and must be retried. */
  resyncReplied(id: string, reply: ResyncResponse): boolean {
    if (this.resync?.id !== id) return true;
    if (reply.rc !== Rc.SUCCESS) {
      this.opts.log.warn({ resyncId: id, rc: reply.rc, message: reply.message }, 'plugin refused resync');
      this.resync = null;
      return false;
    }
    if (reply.interface_prefix && reply.interface_prefix !== this.opts.interfacePrefix)
      this.opts.log.error(
        { announced: reply.interface_prefix, configured: this.opts.interfacePrefix },
        'plugin announces another interface prefix; set InterfacePrefix in felix.cfg to match',
      );
    this.resync.expected = reply.endpoint_count;
    this.completeIfDone();
    return true;
  }

  /** Drops an unfinished resync (a timeout); returns its id if there was one. */
  abandonResync(): string | null {
    const id = this.resync?.id ?? null;
    this.resync = null;
    return id;
  }

  aclUpdate(id: string, acls: Acls): void {
    const ep = this.eps.get(id);
    if (!ep) return;
    const shared = this.acls.intern(acls);
    if (ep.acls) this.acls.release(ep.acls);
    ep.acls = shared;
    ep.aclsAt = Date.now();
    this.opts.dataplane.setAcls(id, shared);
  }

  private created(msg: EndpointCreated, hostRefusal: string | null): Response {
    const r = this.resync;
    const inResync = r !== null && msg.resync_id === r.id;
    // Accepted or refused, it counts: a refusal must never stall the resync.
    if (inResync) r.counted.add(msg.endpoint_id);
    const existing = this.eps.get(msg.endpoint_id);
    const ifname = msg.interface_name ?? existing?.ifname ?? defaultInterfaceName(this.opts.interfacePrefix, msg.endpoint_id);
    const addrs = msg.addrs.map((a) => a.addr);
    const refusal = this.claim(msg.endpoint_id, ifname, addrs, inResync, hostRefusal);
    if (refusal !== null) {
      this.completeIfDone();
      return { type: msg.type, rc: Rc.INVALID, message: refusal };
    }
    if (inResync) r.seen.add(msg.endpoint_id);
    else r?.touched.add(msg.endpoint_id);
    const ep: FelixEndpoint = {
      id: msg.endpoint_id,
      ifname,
      mac: msg.mac,
      addrs,
      enabled: msg.state === 'enabled',
      acls: existing?.acls ?? null,
      aclsAt: existing?.aclsAt ?? null,
    };
    this.store(ep, existing ? 'endpoint updated (by create)' : 'endpoint created');
    if (!existing) this.opts.acls.watch(ep.id);
    this.completeIfDone();
    return success(msg.type);
  }

  private updated(msg: EndpointUpdated, hostRefusal: string | null): Response {
    const existing = this.eps.get(msg.endpoint_id);
    if (!existing) return { type: msg.type, rc: Rc.NOTEXIST, message: `unknown endpoint ${msg.endpoint_id}` };
    const addrs = msg.addrs.map((a) => a.addr);
    const refusal = this.claim(msg.endpoint_id, existing.ifname, addrs, false, hostRefusal);
    if (refusal !== null) return { type: msg.type, rc: Rc.INVALID, message: refusal };
    this.resync?.touched.add(msg.endpoint_id);
    this.store({ ...existing, mac: msg.mac, addrs, enabled: msg.state === 'enabled' }, 'endpoint updated');
    return success(msg.type);
  }

  /**
   * Why `id` may not hold this interface, chain suffix and these addresses,
   * or null (SPEC §3 "What Felix trusts (v2)"): the interface name, then what
   * the host forbids, then ownership. Another endpoint holding one
   * of them refuses the request, unless the request belongs to the current
   * resync (`authoritative`) and that endpoint is one the resync has not
   * confirmed: it is stale, and goes now, exactly as the resync's end would
   * remove it.
   */
  private claim(id: string, ifname: string, addrs: string[], authoritative: boolean, hostRefusal: string | null): string | null {
    const prefix = this.opts.interfacePrefix;
    if (!ifname.startsWith(prefix) || !isInterfaceName(ifname))
      return `interface name ${JSON.stringify(ifname)} must start with ${prefix} and have at most 15 of [A-Za-z0-9_.-]`;
    if (hostRefusal !== null) return hostRefusal;
    const held = new Map<string, string>();
    const check = (owner: string | undefined, what: string): void => {
      if (owner !== undefined && owner !== id && !held.has(owner)) held.set(owner, what);
    };
    check(this.bySuffix.get(endpointSuffix(id)), 'its chain names');
    check(this.byIfname.get(ifname), `interface ${ifname}`);
    for (const a of addrs) check(this.byAddr.get(canonicalIp(a)), `address ${a}`);
    if (held.size === 0) return null;
    const r = this.resync;
    const stale = (owner: string): boolean => authoritative && r !== null && !r.seen.has(owner) && !r.touched.has(owner);
    const [owner, what] = [...held].find(([o]) => !stale(o)) ?? [];
    if (owner !== undefined) return `${what} belongs to endpoint ${owner}`;
    for (const [other, thing] of held) this.remove(other, `endpoint removed: the resync gave ${thing} to ${id}`);
    return null;
  }
  private destroyed(msg: EndpointDestroyed): Response {
    if (!this.eps.has(msg.endpoint_id)) return { type: msg.type, rc: Rc.NOTEXIST, message: `unknown endpoint ${msg.endpoint_id}` };
    this.remove(msg.endpoint_id, 'endpoint destroyed');
    return success(msg.type);
  }

  private store(ep: FelixEndpoint, event: string): void {
    const before = this.eps.get(ep.id);
    if (before) this.release(before);
    this.eps.set(ep.id, ep);
    this.bySuffix.set(endpointSuffix(ep.id), ep.id);
    this.byIfname.set(ep.ifname, ep.id);
    for (const a of ep.addrs) this.byAddr.set(canonicalIp(a), ep.id);
    this.opts.log.info({ endpoint: ep.id, ifname: ep.ifname, addrs: ep.addrs, mac: ep.mac, enabled: ep.enabled }, event);
    this.opts.dataplane.upsertEndpoint({ id: ep.id, ifname: ep.ifname, mac: ep.mac, addrs: ep.addrs, enabled: ep.enabled });
  }

  private remove(id: string, event: string): void {
    const ep = this.eps.get(id);
    if (ep) this.release(ep);
    if (ep?.acls) this.acls.release(ep.acls);
    this.eps.delete(id);
    this.opts.acls.unwatch(id);
    this.opts.dataplane.removeEndpoint(id);
    this.opts.log.info({ endpoint: id }, event);
  }

  /** Frees what an endpoint held. */
  private release(ep: FelixEndpoint): void {
    const drop = (map: Map<string, string>, key: string): void => {
      if (map.get(key) === ep.id) map.delete(key);
    };
    drop(this.bySuffix, endpointSuffix(ep.id));
    drop(this.byIfname, ep.ifname);
    for (const a of ep.addrs) drop(this.byAddr, canonicalIp(a));
  }

  private completeIfDone(): void {
    const r = this.resync;
    if (!r || r.expected === null || r.counted.size < r.expected) return;
    this.resync = null;
    const stale = [...this.eps.keys()].filter((id) => !r.seen.has(id) && !r.touched.has(id));
    for (const id of stale) this.remove(id, 'endpoint removed: not in resync');
    this.resyncsCompleted++;
    this.opts.log.info({ resyncId: r.id, endpoints: this.eps.size, removed: stale.length }, 'resync complete');
    this.opts.dataplane.cleanupStale();
  }
}
