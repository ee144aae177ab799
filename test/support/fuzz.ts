/**
 * A seeded generator of bad messages for the fuzz tests: each message is
 * made from a valid template by one mutation that the protocol must refuse
 * (bad JSON, a mandatory field missing or of the wrong type, huge values of
 * the wrong shape, an unknown type, extra or empty frames), so a daemon that
 * is correct neither crashes nor changes state. Deterministic for a seed.
 */

type Json = Record<string, unknown>;

/** mulberry32: a small, fast, seeded generator of numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const KINDS = [
  'bad-json',
  'not-object',
  'wrong-type',
  'missing-field',
  'unknown-type',
  'huge-string',
  'huge-array',
  'extra-frames',
  'empty-frame',
  'oversized',
] as const;
export type Kind = (typeof KINDS)[number];

/**
 * A mandatory field of a template and what makes it invalid: `string` fields
 * refuse any non-string; `checked` strings (ids, MACs, enums) also refuse a
 * huge string; `array` and `object` fields refuse other shapes, and a huge
 * one of `bad` elements.
 */
export interface FieldSpec {
  name: string;
  type: 'string' | 'checked' | 'array' | 'object';
  /** For array/object fields: one invalid element (array) or entry value (object) to repeat. */
  bad?: (i: number) => unknown;
}

export interface Template {
  msg: Json;
  fields: FieldSpec[];
}

export interface Fuzzed {
  kind: Kind;
  frames: Buffer[];
}

/** Makes bad messages for one socket; `topics` set: a publication `[topic, body]`, else a request `[body]`. */
export class Fuzzer {
  readonly counts = Object.fromEntries(KINDS.map((k) => [k, 0])) as Record<Kind, number>;
  private readonly random: () => number;

  constructor(
    readonly seed: number,
    readonly templates: Template[],
    /** The receiver's size limit: huge values stay under it, `oversized` goes just over. */
    readonly limit: number,
    private readonly topics?: string[],
  ) {
    this.random = seededRandom(seed);
  }

  /** `n` messages; exactly one `oversized`, in the middle. */
  *messages(n: number): Generator<Fuzzed> {
    for (let i = 0; i < n; i++) yield this.make(i === Math.floor(n / 2) ? 'oversized' : this.pick(KINDS.filter((k) => k !== 'oversized')));
  }

  summary(): string {
    return KINDS.map((k) => `${k}=${this.counts[k]}`).join(' ');
  }

  private make(kind: Kind): Fuzzed {
    this.counts[kind]++;
    const t = this.pick(this.templates);
    // A message with no mandatory field but its type (GETGROUPS) is mutated in its type.
    const fields: FieldSpec[] = t.fields.length > 0 ? t.fields : [{ name: 'type', type: 'checked' }];
    const field = this.pick(fields);
    const msg = structuredClone(t.msg);
    let body: string | Buffer;
    let extra: Buffer[] = [];
    switch (kind) {
      case 'bad-json': {
        const text = JSON.stringify(msg);
        // A proper prefix of an object's JSON is never valid JSON; nor is an unescaped control character in a string.
        body = this.random() < 0.5 ? text.slice(0, this.int(text.length - 1)) : text.replace('"', `"\u0001`);
        if (this.random() < 0.2) body = Buffer.from(Array.from({ length: this.int(64) + 1 }, () => this.int(256)));
        break;
      }
      case 'not-object':
        body = JSON.stringify(this.pick([42, 'RESYNCSTATE', null, true, [msg], [], -1.5e300]));
        break;
      case 'wrong-type':
        msg[field.name] = this.wrongValue(field);
        body = JSON.stringify(msg);
        break;
      case 'missing-field':
        body = JSON.stringify(Object.fromEntries(Object.entries(msg).filter(([name]) => name !== field.name)));
        break;
      case 'unknown-type':
        msg['type'] = this.pick([`X${this.int(1e9)}`, '', 'endpointcreated', 7, null, ['ENDPOINTCREATED'], { type: 'HEARTBEAT' }]);
        for (let i = this.int(4); i > 0; i--) msg[`extra${i}`] = this.int(1000);
        body = JSON.stringify(msg);
        break;
      case 'huge-string':
      case 'huge-array': {
        const target = this.hugeTarget(fields, kind);
        msg[target.name] = kind === 'huge-string' ? 'x'.repeat(this.hugeBytes()) : this.hugeShape(target);
        body = JSON.stringify(msg);
        break;
      }
      case 'extra-frames':
        body = JSON.stringify(t.msg);
        extra = Array.from({ length: this.int(3) + 1 }, () => Buffer.from(this.pick(['', JSON.stringify(t.msg), 'x'])));
        break;
      case 'empty-frame':
        body = '';
        break;
      case 'oversized':
        msg[field.name] = 'y'.repeat(this.limit + 1 + this.int(1000));
        body = JSON.stringify(msg);
        break;
    }
    const frames = [Buffer.from(body), ...extra];
    if (!this.topics) return { kind, frames };
    // A publication: the right topic, so the handler sees it; an empty frame means a lone topic frame.
    const topic = Buffer.from(this.pick(this.topics));
    return { kind, frames: kind === 'empty-frame' ? [topic] : [topic, ...frames] };
  }

  private wrongValue(field: FieldSpec): unknown {
    const nonString = [0, 1.5, true, false, null, [], [1, 2], {}, { a: 1 }];
    if (field.type === 'array') return this.pick([...nonString.filter((v) => !Array.isArray(v)), 'not a list', '']);
    if (field.type === 'object') return this.pick([0, true, null, [], [{}], 'not an object']);
    return this.pick(nonString);
  }

  /** A field a huge value of this kind is invalid in: huge strings only where a string is checked or not expected. */
  private hugeTarget(fields: FieldSpec[], kind: Kind): FieldSpec {
    const fits = fields.filter((f) => (kind === 'huge-string' ? f.type !== 'string' : true));
    return this.pick(fits.length > 0 ? fits : fields);
  }

  private hugeShape(field: FieldSpec): unknown {
    const bytes = this.hugeBytes();
    // An object of unknown keys may be valid (rules ignore them): only objects with a known bad entry are grown.
    if (field.type === 'object' && field.bad) {
      const out: Json = {};
      for (let i = 0, size = 2; size < bytes; i++) {
        out[`k${i}`] = field.bad(i);
        size += JSON.stringify(out[`k${i}`]).length + `"k${i}":,`.length;
      }
      return out;
    }
    const element = (i: number) => (field.type === 'array' && field.bad ? field.bad(i) : `s${i}`);
    const out: unknown[] = [];
    for (let i = 0, size = 2; size < bytes; i++) {
      const e = element(i);
      out.push(e);
      size += JSON.stringify(e).length + 1;
    }
    return out;
  }

  /** Between a quarter of the limit and just under it (leaving room for the rest of the message). */
  private hugeBytes(): number {
    return Math.floor(this.limit / 4) + this.int(Math.floor((this.limit * 3) / 4) - 2048);
  }

  private int(n: number): number {
    return Math.floor(this.random() * n);
  }

  private pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
}
