/**
 * The *rules* object shared by the Network API (GROUPUPDATE) and the ACL API
 * (ACLUPDATE), SPEC §4. Decoding here is structural only (types of fields);
 * whether a rule makes sense (one of group/cidr, ports only with port
 * protocols) is judged where it is used, so one bad rule never sinks the rest.
 */
import { FieldError, isPlainObject } from './codec.js';

export type PortSpec = number | string | [number, number];

export interface Rule {
  group: string | null;
  cidr: string | null;
  protocol: string | null;
  port: PortSpec | null;
  icmp_type?: number | string;
  icmp_code?: number;
}

export interface Rules {
  inbound: Rule[];
  outbound: Rule[];
  inbound_default: 'deny';
  outbound_default: 'deny';
}

/** A stable text key of a concrete rule (group resolved to a cidr): equal rules have equal keys, whatever order the fields came in. */
export function ruleKey(r: Rule): string {
  return JSON.stringify([r.cidr, r.protocol, r.port, r.icmp_type ?? null, r.icmp_code ?? null]);
}

export const emptyRules = (): Rules => ({ inbound: [], outbound: [], inbound_default: 'deny', outbound_default: 'deny' });

function nullableString(o: Record<string, unknown>, key: string, where: string): string | null {
  const v = o[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw new FieldError(`${where}.${key} must be a string or null`);
  return v;
}

function decodeRule(v: unknown, where: string): Rule {
  if (!isPlainObject(v)) throw new FieldError(`${where} must be an object`);
  const protocolRaw = v['protocol'];
  let protocol: string | null;
  if (protocolRaw === undefined || protocolRaw === null) protocol = null;
  else if (typeof protocolRaw === 'string') protocol = protocolRaw.toLowerCase();
  else if (typeof protocolRaw === 'number' && Number.isInteger(protocolRaw)) protocol = String(protocolRaw);
  else throw new FieldError(`${where}.protocol must be a string, number or null`);

  const portRaw = v['port'];
  let port: PortSpec | null;
  if (portRaw === undefined || portRaw === null) port = null;
  else if (typeof portRaw === 'number' || typeof portRaw === 'string') port = portRaw;
  else if (Array.isArray(portRaw) && portRaw.length === 2 && portRaw.every((p) => typeof p === 'number' || (typeof p === 'string' && /^\d+$/.test(p))))
    port = [Number(portRaw[0]), Number(portRaw[1])];
  else throw new FieldError(`${where}.port must be a number, a string, a [low, high] pair or null`);

  const rule: Rule = {
    group: nullableString(v, 'group', where),
    cidr: nullableString(v, 'cidr', where),
    protocol,
    port,
  };
  const icmpType = v['icmp_type'];
  if (icmpType !== undefined && icmpType !== null) {
    if (typeof icmpType !== 'number' && typeof icmpType !== 'string') throw new FieldError(`${where}.icmp_type must be a number or a name`);
    rule.icmp_type = typeof icmpType === 'string' && /^\d+$/.test(icmpType) ? Number(icmpType) : icmpType;
  }
  const icmpCode = v['icmp_code'];
  if (icmpCode !== undefined && icmpCode !== null) {
    const n = typeof icmpCode === 'string' && /^\d+$/.test(icmpCode) ? Number(icmpCode) : icmpCode;
    if (typeof n !== 'number' || !Number.isInteger(n)) throw new FieldError(`${where}.icmp_code must be an integer`);
    rule.icmp_code = n;
  }
  return rule;
}

function decodeRuleList(o: Record<string, unknown>, key: string, where: string): Rule[] {
  const v = o[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new FieldError(`${where}.${key} must be a list`);
  return v.map((r, i) => decodeRule(r, `${where}.${key}[${i}]`));
}

export function decodeRules(v: unknown, where: string): Rules {
  if (!isPlainObject(v)) throw new FieldError(`${where} must be an object`);
  for (const k of ['inbound_default', 'outbound_default']) {
    const d = v[k];
    if (d !== undefined && d !== null && d !== 'deny') throw new FieldError(`${where}.${k} must be "deny"`);
  }
  return {
    inbound: decodeRuleList(v, 'inbound', where),
    outbound: decodeRuleList(v, 'outbound', where),
    inbound_default: 'deny',
    outbound_default: 'deny',
  };
}
