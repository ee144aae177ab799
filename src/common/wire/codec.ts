/**
 * Shared pieces of the wire codecs (SPEC §2): return codes, the decode
 * result type, and a field reader that is liberal in what it accepts.
 */
import ipaddr from 'ipaddr.js';

export const Rc = {
  SUCCESS: 'SUCCESS',
  INVALID: 'INVALID',
  NOTEXIST: 'NOTEXIST',
  FAILURE: 'FAILURE',
  ENOINTERFACE: 'ENOINTERFACE',
} as const;
export type Rc = (typeof Rc)[keyof typeof Rc];

/** The answer to every request: same `type`, a return code, free text. */
export interface Response {
  type: string;
  rc: Rc;
  message: string;
}

/** Why a message was refused, and how to answer it. */
export interface WireError {
  type: string;
  rc: Rc;
  reason: string;
}

export type Decoded<T> = { ok: true; msg: T } | { ok: false; error: WireError };

/** Thrown by {@link FieldReader} methods; turned into an INVALID answer by the decoder. */
export class FieldError extends Error {}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
/** Endpoint ids become interface, chain and set names: keep them to safe characters. */
/** SPEC §3 v2: 1–255 characters, no whitespace or control characters (the originals accepted `host1:ctr/web`). */
const ID_RE = /^[^\s\p{Cc}]{1,255}$/u;

/**
 * A plain IPv4 dotted quad or IPv6 address: no short or octal IPv4 forms, no
 * IPv6 zone index (meaningless in a route, neighbour entry or ipset).
 */
export function isIp(s: string): boolean {
  return ipaddr.isValid(s) && (ipaddr.IPv4.isValidFourPartDecimal(s) || (s.includes(':') && !s.includes('%')));
}

export function ipFamily(s: string): 4 | 6 {
  return s.includes(':') ? 6 : 4;
}

/** Canonical text of an address (drops leading zeros, compresses IPv6). */
export function canonicalIp(s: string): string {
  return ipaddr.parse(s).toString();
}

export function isMac(s: string): boolean {
  return MAC_RE.test(s);
}

export function isEndpointId(s: string): boolean {
  return ID_RE.test(s);
}

/**
 * Parses a CIDR or a bare address ("10.0.0.1" = "/32"), returning its
 * canonical text, or null if it is not one.
 */
export function canonicalCidr(s: string): string | null {
  try {
    if (!s.includes('/')) return isIp(s) ? `${canonicalIp(s)}/${ipFamily(s) === 4 ? 32 : 128}` : null;
    const [addr, len] = ipaddr.parseCIDR(s);
    if (!isIp(s.split('/')[0]!)) return null;
    // Host bits are cleared so that equal networks compare equal.
    const net = addr.kind() === 'ipv4' ? ipaddr.IPv4.networkAddressFromCIDR(s) : ipaddr.IPv6.networkAddressFromCIDR(s);
    return `${net.toString()}/${len}`;
  } catch {
    return null;
  }
}

/** `issued` as Unix milliseconds: accepts ms, seconds with fraction, numeric strings; never fails. */
export function parseIssued(v: unknown): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  if (!Number.isFinite(n) || n <= 0) return Date.now();
  // Anything below 1e11 cannot be milliseconds since 1973: it is seconds.
  return n < 1e11 ? Math.round(n * 1000) : Math.round(n);
}

/** Reads typed fields out of a decoded JSON object, throwing {@link FieldError} on bad ones. */
export class FieldReader {
  constructor(readonly obj: Record<string, unknown>) {}

  has(key: string): boolean {
    return this.obj[key] !== undefined && this.obj[key] !== null;
  }

  string(key: string): string {
    const v = this.obj[key];
    if (v === undefined || v === null) throw new FieldError(`missing field '${key}'`);
    if (typeof v !== 'string') throw new FieldError(`field '${key}' must be a string`);
    return v;
  }

  optString(key: string): string | undefined {
    return this.has(key) ? this.string(key) : undefined;
  }

  nullableString(key: string): string | null {
    return this.has(key) ? this.string(key) : null;
  }

  /** A non-negative integer, given as a number or a numeric string. */
  count(key: string): number {
    const v = this.obj[key];
    if (v === undefined || v === null) throw new FieldError(`missing field '${key}'`);
    const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
    if (!Number.isInteger(n) || n < 0) throw new FieldError(`field '${key}' must be a non-negative integer`);
    return n;
  }

  endpointId(key = 'endpoint_id'): string {
    const v = this.string(key);
    if (!isEndpointId(v)) throw new FieldError(`field '${key}' is not a valid endpoint id: ${JSON.stringify(v.slice(0, 64))}`);
    return v;
  }

  mac(key = 'mac'): string {
    const v = this.string(key);
    if (!isMac(v)) throw new FieldError(`field '${key}' is not a MAC address: ${JSON.stringify(v.slice(0, 64))}`);
    return v.toLowerCase();
  }

  oneOf<T extends string>(key: string, values: readonly T[]): T {
    const v = this.string(key);
    if (!(values as readonly string[]).includes(v)) throw new FieldError(`field '${key}' must be one of ${values.join(', ')}`);
    return v as T;
  }

  array(key: string): unknown[] {
    const v = this.obj[key];
    if (v === undefined || v === null) throw new FieldError(`missing field '${key}'`);
    if (!Array.isArray(v)) throw new FieldError(`field '${key}' must be a list`);
    return v;
  }

  object(key: string): Record<string, unknown> {
    const v = this.obj[key];
    if (v === undefined || v === null) throw new FieldError(`missing field '${key}'`);
    if (!isPlainObject(v)) throw new FieldError(`field '${key}' must be an object`);
    return v;
  }

  issued(): number {
    return parseIssued(this.obj['issued']);
  }
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function ipField(v: unknown, what: string): string {
  if (typeof v !== 'string' || !isIp(v)) throw new FieldError(`${what} is not an IP address: ${(JSON.stringify(v) as string | undefined)?.slice(0, 64)}`);
  return canonicalIp(v);
}

type FieldDecoders<T> = { [K in string]: (r: FieldReader) => T };

/**
 * Builds the decoder of one API: parses the body, checks it is an object
 * with a known `type`, then runs that type's field decoder. Every failure
 * becomes a {@link WireError} naming the `rc` to answer with.
 */
export function makeDecoder<T>(decoders: FieldDecoders<T>): (body: Buffer | string) => Decoded<T> {
  return (body) => {
    let obj: unknown;
    try {
      obj = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
    } catch {
      return fail('ERROR', Rc.INVALID, 'message is not JSON');
    }
    if (!isPlainObject(obj)) return fail('ERROR', Rc.INVALID, 'message is not a JSON object');
    const type = obj['type'];
    if (typeof type !== 'string' || type === '') return fail('ERROR', Rc.INVALID, "message has no 'type'");
    const decoder = Object.hasOwn(decoders, type) ? decoders[type] : undefined;
    if (!decoder) return fail(type.slice(0, 64), Rc.FAILURE, `unknown message type '${type.slice(0, 64)}'`);
    try {
      return { ok: true, msg: decoder(new FieldReader(obj)) };
    } catch (err) {
      if (err instanceof FieldError) return fail(type, Rc.INVALID, err.message);
      throw err;
    }
  };
}

/**
 * A decoder that answers a body byte-equal to one of the last `size` it
 * decoded from memory, with the same (shared, never to be mutated) result.
 * The ACL manager sends every member of a group the same bytes, so under
 * churn Felix parses each group's ACLs once instead of once per member.
 */
export function rememberingDecoder<T>(decode: (body: Buffer) => Decoded<T>, size: number): (body: Buffer) => Decoded<T> {
  const recent: Array<{ body: Buffer; decoded: Decoded<T> }> = [];
  return (body) => {
    const hit = recent.find((r) => r.body.equals(body));
    if (hit) return hit.decoded;
    const decoded = decode(body);
    recent.unshift({ body, decoded });
    if (recent.length > size) recent.pop();
    return decoded;
  };
}

function fail(type: string, rc: Rc, reason: string): { ok: false; error: WireError } {
  return { ok: false, error: { type, rc, reason } };
}

export function errorResponse(e: WireError): Response {
  return { type: e.type, rc: e.rc, message: e.reason };
}

export function success(type: string): Response {
  return { type, rc: Rc.SUCCESS, message: '' };
}

/** Decodes the generic `{type, rc, message}` reply. */
export const decodeResponse = (body: Buffer | string): Decoded<Response> => {
  let obj: unknown;
  try {
    obj = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
  } catch {
    return fail('ERROR', Rc.INVALID, 'reply is not JSON');
  }
  if (!isPlainObject(obj) || typeof obj['type'] !== 'string') return fail('ERROR', Rc.INVALID, 'reply is not a typed JSON object');
  const rc = typeof obj['rc'] === 'string' ? obj['rc'] : '';
  if (!(Object.values(Rc) as string[]).includes(rc)) return fail(obj['type'], Rc.INVALID, `reply has bad rc '${rc}'`);
  return { ok: true, msg: { type: obj['type'], rc: rc as Rc, message: typeof obj['message'] === 'string' ? obj['message'] : '' } };
};

export const HEARTBEAT = 'HEARTBEAT';
export interface Heartbeat {
  type: typeof HEARTBEAT;
}
export const heartbeat = (): Heartbeat => ({ type: HEARTBEAT });

export function encode(msg: object): string {
  return JSON.stringify(msg);
}
