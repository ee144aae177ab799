/**
 * Network API (SPEC §4): plugin network (REP 9903, PUB 9904) ↔ ACL manager.
 */
import { Decoded, FieldError, FieldReader, HEARTBEAT, Heartbeat, canonicalIp, isEndpointId, isIp, makeDecoder } from './codec.js';
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

/** A GROUPUPDATE as received: the members left out because their id or an address was invalid, with the reason (SPEC §4 v2: the rest still applies). */
export interface ReceivedGroupUpdate extends GroupUpdate {
  skipped: string[];
}

export type NetworkRequest = GetGroups | Heartbeat;
export type NetworkPublication = ReceivedGroupUpdate | Heartbeat;

export const decodeNetworkRequest: (body: Buffer | string) => Decoded<NetworkRequest> = makeDecoder<NetworkRequest>({
  [GETGROUPS]: (r) => ({ type: GETGROUPS, issued: r.issued() }),
  [HEARTBEAT]: () => ({ type: HEARTBEAT }),
});

/** The valid members; a member with a bad id or address is left out and described in `skipped`. */
function decodeMembers(r: FieldReader, skipped: string[]): Members {
  const members: [string, string[]][] = [];
  const given = Object.entries(r.object('members'));
  for (const [id, addrs] of given) {
    const name = JSON.stringify(id.slice(0, 64));
    if (!isEndpointId(id)) skipped.push(`member ${name}: bad endpoint id`);
    else if (!Array.isArray(addrs)) skipped.push(`member ${name}: addresses must be a list`);
    else if (!addrs.every((a) => typeof a === 'string' && isIp(a))) skipped.push(`member ${name}: bad address`);
    else members.push([id, addrs.map((a) => canonicalIp(a as string))]);
  }
  // No member left would read as a deletion (members {}): such an update is refused whole instead.
  if (given.length > 0 && members.length === 0) throw new FieldError(`every member is invalid (${skipped.slice(0, 3).join('; ')})`);
  return Object.fromEntries(members);
}

/** Decodes what the ACL manager receives on 9904 (topic `groups` or `networkheartbeat`). */
export const decodeNetworkPublication: (body: Buffer | string) => Decoded<NetworkPublication> = makeDecoder<NetworkPublication>({
  [GROUPUPDATE]: (r) => {
    const skipped: string[] = [];
    return {
      type: GROUPUPDATE,
      group: r.string('group'),
      members: decodeMembers(r, skipped),
      rules: decodeRules(r.object('rules'), 'rules'),
      issued: r.issued(),
      skipped,
    };
  },
  [HEARTBEAT]: () => ({ type: HEARTBEAT }),
});
