/**
 * Felix's record of its endpoints and the resync protocol (SPEC §3). Handlers
 * answer at once and only record desired state; the dataplane programs it
 * later, asynchronously. Side effects go through two narrow sinks so that
 * the whole protocol is unit-testable without sockets or a kernel.
 */
import type { Logger } from '../common/logging.js';
import { Rc, Response, success } from '../common/wire/codec.js';
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
import { defaultInterfaceName, endpointSuffix } from '../common/endpoint-names.js';

export type { EndpointSpec };

export interface DataplaneSink {
  upsertEndpoint(ep: EndpointSpec): void;
  setAcls(id: string, acls: Acls): void;
  removeEndpoint(id: string): void;
  /** After a completed resync: remove what belongs to no known endpoint. */
  cleanupStale(): void;
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
  /** Endpoints announced by this resync. */
  seen: Set<string>;
  /** Endpoints created or updated by pushes while it ran: current, whatever the resync says. */
  touched: Set<string>;
}

export class EndpointManager {
  private readonly eps = new Map<string, FelixEndpoint>();
  /** Chain suffix → the endpoint named by it: two endpoints must never share chains, sets or an interface. */
  private readonly bySuffix = new Map<string, string>();
  private resync: Resync | null = null;
  /** Resyncs completed so far. */
  resyncsCompleted = 0;

  constructor(
    private readonly opts: { log: Logger; dataplane: DataplaneSink; acls: AclSink; interfacePrefix: string },
  ) {}

  get endpoints(): ReadonlyMap<string, FelixEndpoint> {
    return this.eps;
  }

  get resyncInProgress(): string | null {
    return this.resync?.id ?? null;
  }

  handle(msg: EndpointCreated | EndpointUpdated | EndpointDestroyed): Response {
    switch (msg.type) {
      case ENDPOINTCREATED:
        return this.created(msg);
      case ENDPOINTUPDATED:
        return this.updated(msg);
      case ENDPOINTDESTROYED:
        return this.destroyed(msg);
    }
  }

  /** A RESYNCSTATE with this id has been sent. */
  beginResync(id: string): void {
    this.resync = { id, expected: null, seen: new Set(), touched: new Set() };
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
      this.opts.log.error({ announced: reply.interface_prefix, configured: this.opts.interfacePrefix }, 'plugin announces another interface prefix; set InterfacePrefix in felix.cfg to match');
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
    ep.acls = acls;
    ep.aclsAt = Date.now();
    this.opts.dataplane.setAcls(id, acls);
  }

  private created(msg: EndpointCreated): Response {
    if (this.resync && msg.resync_id === this.resync.id) this.resync.seen.add(msg.endpoint_id);
    else this.resync?.touched.add(msg.endpoint_id);
    const clash = this.clash(msg.endpoint_id);
    if (clash) return { type: msg.type, rc: Rc.INVALID, message: `endpoint id would share its chain names with ${clash}` };
    const existing = this.eps.get(msg.endpoint_id);
    const ifname = msg.interface_name ?? existing?.ifname ?? defaultInterfaceName(this.opts.interfacePrefix, msg.endpoint_id);
    const ep: FelixEndpoint = {
      id: msg.endpoint_id,
      ifname,
      mac: msg.mac,
      addrs: msg.addrs.map((a) => a.addr),
      enabled: msg.state === 'enabled',
      acls: existing?.acls ?? null,
      aclsAt: existing?.aclsAt ?? null,
    };
    this.store(ep, existing ? 'endpoint updated (by create)' : 'endpoint created');
    if (!existing) this.opts.acls.watch(ep.id);
    this.completeIfDone();
    return success(msg.type);
  }

  private updated(msg: EndpointUpdated): Response {
    const existing = this.eps.get(msg.endpoint_id);
    if (!existing) return { type: msg.type, rc: Rc.NOTEXIST, message: `unknown endpoint ${msg.endpoint_id}` };
    this.resync?.touched.add(msg.endpoint_id);
    this.store({ ...existing, mac: msg.mac, addrs: msg.addrs.map((a) => a.addr), enabled: msg.state === 'enabled' }, 'endpoint updated');
    return success(msg.type);
  }

  private destroyed(msg: EndpointDestroyed): Response {
    if (!this.eps.has(msg.endpoint_id)) return { type: msg.type, rc: Rc.NOTEXIST, message: `unknown endpoint ${msg.endpoint_id}` };
    this.remove(msg.endpoint_id, 'endpoint destroyed');
    return success(msg.type);
  }

  private store(ep: FelixEndpoint, event: string): void {
    this.eps.set(ep.id, ep);
    this.bySuffix.set(endpointSuffix(ep.id), ep.id);
    this.opts.log.info({ endpoint: ep.id, ifname: ep.ifname, addrs: ep.addrs, mac: ep.mac, enabled: ep.enabled }, event);
    this.opts.dataplane.upsertEndpoint({ id: ep.id, ifname: ep.ifname, mac: ep.mac, addrs: ep.addrs, enabled: ep.enabled });
  }

  private remove(id: string, event: string): void {
    this.eps.delete(id);
    this.bySuffix.delete(endpointSuffix(id));
    this.opts.acls.unwatch(id);
    this.opts.dataplane.removeEndpoint(id);
    this.opts.log.info({ endpoint: id }, event);
  }

  private clash(id: string): string | undefined {
    const other = this.bySuffix.get(endpointSuffix(id));
    return other !== id ? other : undefined;
  }

  private completeIfDone(): void {
    const r = this.resync;
    if (!r || r.expected === null || r.seen.size < r.expected) return;
    this.resync = null;
    const stale = [...this.eps.keys()].filter((id) => !r.seen.has(id) && !r.touched.has(id));
    for (const id of stale) this.remove(id, 'endpoint removed: not in resync');
    this.resyncsCompleted++;
    this.opts.log.info({ resyncId: r.id, endpoints: this.eps.size, removed: stale.length }, 'resync complete');
    this.opts.dataplane.cleanupStale();
  }
}
