/**
 * Endpoint API (SPEC §3): plugin ep (REP 9901) ↔ Felix (REP 9902).
 */
import { FieldError, FieldReader, HEARTBEAT, Heartbeat, Rc, Response, Decoded, decodeResponse, ipField, isPlainObject, makeDecoder } from './codec.js';
import { isInterfaceName, isInterfacePrefix } from '../endpoint-names.js';

export const ENDPOINTCREATED = 'ENDPOINTCREATED';
export const ENDPOINTUPDATED = 'ENDPOINTUPDATED';
export const ENDPOINTDESTROYED = 'ENDPOINTDESTROYED';
export const RESYNCSTATE = 'RESYNCSTATE';

export type EndpointState = 'enabled' | 'disabled';
export const ENDPOINT_STATES = ['enabled', 'disabled'] as const;

export interface EndpointAddr {
  addr: string;
  gateway?: string;
  properties?: { gr?: boolean };
}

export interface EndpointCreated {
  type: typeof ENDPOINTCREATED;
  endpoint_id: string;
  mac: string;
  addrs: EndpointAddr[];
  state: EndpointState;
  resync_id: string | null;
  issued: number;
  interface_name?: string;
}

export interface EndpointUpdated {
  type: typeof ENDPOINTUPDATED;
  endpoint_id: string;
  mac: string;
  addrs: EndpointAddr[];
  state: EndpointState;
  issued: number;
}

export interface EndpointDestroyed {
  type: typeof ENDPOINTDESTROYED;
  endpoint_id: string;
  issued: number;
}

export interface ResyncState {
  type: typeof RESYNCSTATE;
  resync_id: string;
  hostname: string;
  issued: number;
}

export interface ResyncResponse extends Response {
  type: typeof RESYNCSTATE;
  endpoint_count: number;
  interface_prefix?: string;
}

/** What Felix's 9902 REP socket accepts. */
export type FelixRequest = EndpointCreated | EndpointUpdated | EndpointDestroyed | Heartbeat;
/** What plugin ep's 9901 REP socket accepts. */
export type PluginRequest = ResyncState | Heartbeat;

function decodeAddrs(r: FieldReader): EndpointAddr[] {
  return r.array('addrs').map((a, i) => {
    const where = `addrs[${i}]`;
    if (!isPlainObject(a)) throw new FieldError(`${where} must be an object`);
    const out: EndpointAddr = { addr: ipField(a['addr'], `${where}.addr`) };
    if (a['gateway'] !== undefined && a['gateway'] !== null) out.gateway = ipField(a['gateway'], `${where}.gateway`);
    const props = a['properties'];
    if (isPlainObject(props) && typeof props['gr'] === 'boolean') out.properties = { gr: props['gr'] };
    return out;
  });
}

function interfaceName(r: FieldReader): string | undefined {
  const v = r.optString('interface_name');
  if (v !== undefined && !isInterfaceName(v)) throw new FieldError(`field 'interface_name' is not a valid interface name`);
  return v;
}

export const decodeFelixRequest: (body: Buffer | string) => Decoded<FelixRequest> = makeDecoder<FelixRequest>({
  [ENDPOINTCREATED]: (r) => {
    const msg: EndpointCreated = {
      type: ENDPOINTCREATED,
      endpoint_id: r.endpointId(),
      mac: r.mac(),
      addrs: decodeAddrs(r),
      state: r.oneOf('state', ENDPOINT_STATES),
      resync_id: r.nullableString('resync_id'),
      issued: r.issued(),
    };
    const ifname = interfaceName(r);
    if (ifname !== undefined) msg.interface_name = ifname;
    return msg;
  },
  [ENDPOINTUPDATED]: (r) => ({
    type: ENDPOINTUPDATED,
    endpoint_id: r.endpointId(),
    mac: r.mac(),
    addrs: decodeAddrs(r),
    state: r.oneOf('state', ENDPOINT_STATES),
    issued: r.issued(),
  }),
  [ENDPOINTDESTROYED]: (r) => ({ type: ENDPOINTDESTROYED, endpoint_id: r.endpointId(), issued: r.issued() }),
  [HEARTBEAT]: () => ({ type: HEARTBEAT }),
});

export const decodePluginRequest: (body: Buffer | string) => Decoded<PluginRequest> = makeDecoder<PluginRequest>({
  [RESYNCSTATE]: (r) => ({ type: RESYNCSTATE, resync_id: r.string('resync_id'), hostname: r.string('hostname'), issued: r.issued() }),
  [HEARTBEAT]: () => ({ type: HEARTBEAT }),
});

/** Decodes the plugin's answer to RESYNCSTATE (`endpoint_count` may be a numeric string). */
export function decodeResyncResponse(body: Buffer | string): Decoded<ResyncResponse> {
  const base = decodeResponse(body);
  if (!base.ok) return base;
  if (base.msg.type !== RESYNCSTATE) return { ok: false, error: { type: base.msg.type, rc: Rc.INVALID, reason: `expected a ${RESYNCSTATE} reply` } };
  const r = new FieldReader(JSON.parse(body.toString()) as Record<string, unknown>);
  try {
    const msg: ResyncResponse = { ...base.msg, type: RESYNCSTATE, endpoint_count: base.msg.rc === Rc.SUCCESS ? r.count('endpoint_count') : 0 };
    const prefix = r.optString('interface_prefix');
    if (prefix !== undefined) {
      if (!isInterfacePrefix(prefix)) throw new FieldError(`field 'interface_prefix' must be 1-4 letters`);
      msg.interface_prefix = prefix;
    }
    return { ok: true, msg };
  } catch (err) {
    if (err instanceof FieldError) return { ok: false, error: { type: RESYNCSTATE, rc: Rc.INVALID, reason: err.message } };
    throw err;
  }
}
