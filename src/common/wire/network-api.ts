/**
 * Network API (SPEC §4): plugin network (REP 9903, PUB 9904) ↔ ACL manager.
 */
import { Decoded, FieldError, FieldReader, HEARTBEAT, Heartbeat, ipField, isEndpointId, makeDecoder } from './codec.js';
import { Rules, decodeRules } from './rules.js';

export const GETGROUPS = 'GETGROUPS';
export const GROUPUPDATE = 'GROUPUPDATE';
export const TOPIC_GROUPS = 'groups';
export const TOPIC_NETWORK_HEARTBEAT = 'networkheartbeat';

export interface GetGroups {
  type: typeof GETGROUPS;
  issued: number;
}

/**
 * endpoint id → its addresses, as on the wire. Ids are wire data and may be
 * `constructor` or `__proto__`: build one with `Object.fromEntries` (an
 * assignment `m[id] = …` sets the prototype for `__proto__`), read it with
 * `Object.entries`/`Object.keys` or into a Map, never with `id in m` or `m[id]`.
 */
export type Members = Record<string, string[]>;

export interface GroupUpdate {
  type: typeof GROUPUPDATE;
  group: string;
  members: Members;
  rules: Rules;
  issued: number;
}

export type NetworkRequest = GetGroups | Heartbeat;
export type NetworkPublication = GroupUpdate | Heartbeat;

export const decodeNetworkRequest: (body: Buffer | string) => Decoded<NetworkRequest> = makeDecoder<NetworkRequest>({
  [GETGROUPS]: (r) => ({ type: GETGROUPS, issued: r.issued() }),
  [HEARTBEAT]: () => ({ type: HEARTBEAT }),
});

function decodeMembers(r: FieldReader): Members {
  const obj = r.object('members');
  return Object.fromEntries(
    Object.entries(obj).map(([id, addrs]) => {
      if (!isEndpointId(id)) throw new FieldError(`members has a bad endpoint id ${JSON.stringify(id.slice(0, 64))}`);
      if (!Array.isArray(addrs)) throw new FieldError(`members.${id} must be a list of addresses`);
      return [id, addrs.map((a, i) => ipField(a, `members.${id}[${i}]`))];
    }),
  );
}

/** Decodes what the ACL manager receives on 9904 (topic `groups` or `networkheartbeat`). */
export const decodeNetworkPublication: (body: Buffer | string) => Decoded<NetworkPublication> = makeDecoder<NetworkPublication>({
  [GROUPUPDATE]: (r) => ({
    type: GROUPUPDATE,
    group: r.string('group'),
    members: decodeMembers(r),
    rules: decodeRules(r.object('rules'), 'rules'),
    issued: r.issued(),
  }),
  [HEARTBEAT]: () => ({ type: HEARTBEAT }),
});
