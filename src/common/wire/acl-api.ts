/**
 * ACL API (SPEC §5): ACL manager (ROUTER 9905, PUB 9906) ↔ Felix.
 */
import { Decoded, FieldReader, HEARTBEAT, Heartbeat, Response, makeDecoder } from './codec.js';
import { Rules, decodeRules } from './rules.js';

export const GETACLSTATE = 'GETACLSTATE';
export const ACLUPDATE = 'ACLUPDATE';
export const TOPIC_ACL_HEARTBEAT = 'aclheartbeat';

export interface GetAclState {
  type: typeof GETACLSTATE;
  endpoint_id: string;
  issued: number;
}

export interface GetAclStateResponse extends Response {
  type: typeof GETACLSTATE;
  endpoint_id: string;
}

export interface Acls {
  v4: Rules;
  v6: Rules;
}

export interface AclUpdate {
  type: typeof ACLUPDATE;
  acls: Acls;
  issued: number;
}

export type AclRequest = GetAclState | Heartbeat;
export type AclPublication = AclUpdate | Heartbeat;

export const decodeAclRequest: (body: Buffer | string) => Decoded<AclRequest> = makeDecoder<AclRequest>({
  [GETACLSTATE]: (r) => ({ type: GETACLSTATE, endpoint_id: r.endpointId(), issued: r.issued() }),
  [HEARTBEAT]: () => ({ type: HEARTBEAT }),
});

function decodeAcls(r: FieldReader): Acls {
  const acls = r.object('acls');
  return { v4: decodeRules(acls['v4'] ?? {}, 'acls.v4'), v6: decodeRules(acls['v6'] ?? {}, 'acls.v6') };
}

/** Decodes what Felix receives on 9906 (an endpoint's topic or `aclheartbeat`). */
export const decodeAclPublication: (body: Buffer | string) => Decoded<AclPublication> = makeDecoder<AclPublication>({
  [ACLUPDATE]: (r) => ({ type: ACLUPDATE, acls: decodeAcls(r), issued: r.issued() }),
  [HEARTBEAT]: () => ({ type: HEARTBEAT }),
});
