/**
 * Runs table rows of (name, input, expected) through a wire decoder. Each row
 * is decoded from a string and from a Buffer (sockets hand over Buffers), and
 * both must give the same expected result.
 */
import { expect } from 'chai';
import type { Decoded, Rc } from '../../../src/common/wire/codec.js';

/** A body given verbatim (not JSON-encoded by the table). */
export interface Raw {
  raw: string;
}

/** Stands for "the time of decoding" in an expected `issued` (a missing or garbage `issued`). */
export const NOW = Symbol('now');

export type Expected = { msg: object } | { type: string; rc: Rc; reason?: RegExp };

export interface Row {
  name: string;
  input: object | Raw;
  expected: Expected;
}

export const raw = (text: string): Raw => ({ raw: text });

function bodyOf(input: object | Raw): string {
  return 'raw' in input && typeof input.raw === 'string' ? input.raw : JSON.stringify(input);
}

/** Checks `got.issued` lies in [before, after] where `want.issued` is {@link NOW}; returns both without it. */
function withoutNow(got: Record<string, unknown>, want: Record<string, unknown>, before: number, after: number) {
  if (want['issued'] !== NOW) return [got, want];
  expect(got['issued'], 'issued defaults to the time of decoding').to.be.a('number').within(before, after);
  const withoutIssued = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([k]) => k !== 'issued'));
  return [withoutIssued(got), withoutIssued(want)];
}

export function decodeTable<T>(decode: (body: Buffer | string) => Decoded<T>, rows: Row[]): void {
  for (const row of rows) {
    it(row.name, () => {
      const body = bodyOf(row.input);
      for (const input of [body, Buffer.from(body, 'utf8')]) {
        const before = Date.now();
        const got = decode(input);
        const after = Date.now();
        const e = row.expected;
        if ('msg' in e) {
          if (!got.ok) expect.fail(`expected ok, got ${JSON.stringify(got.error)}`);
          const [g, w] = withoutNow(got.msg as Record<string, unknown>, e.msg as Record<string, unknown>, before, after);
          expect(g).to.deep.equal(w);
        } else {
          if (got.ok) expect.fail(`expected ${e.type}/${e.rc}, got ok ${JSON.stringify(got.msg)}`);
          expect(got.error.type, 'type').to.equal(e.type);
          expect(got.error.rc, 'rc').to.equal(e.rc);
          if (e.reason) expect(got.error.reason, 'reason').to.match(e.reason);
        }
      }
    });
  }
}

/** Rows every decoder answers the same way: not JSON, not an object, no type. */
export function malformedRows(): Row[] {
  const INVALID = 'INVALID' as Rc;
  return [
    { name: 'not JSON', input: raw('{"type": "HEARTBEAT"'), expected: { type: 'ERROR', rc: INVALID, reason: /not JSON/ } },
    { name: 'empty body', input: raw(''), expected: { type: 'ERROR', rc: INVALID, reason: /not JSON/ } },
    { name: 'binary garbage', input: raw('\u00ff\u00fe'), expected: { type: 'ERROR', rc: INVALID, reason: /not JSON/ } },
    { name: 'JSON array', input: raw('[{"type": "HEARTBEAT"}]'), expected: { type: 'ERROR', rc: INVALID, reason: /not a JSON object/ } },
    { name: 'JSON number', input: raw('42'), expected: { type: 'ERROR', rc: INVALID, reason: /not a JSON object/ } },
    { name: 'JSON string', input: raw('"HEARTBEAT"'), expected: { type: 'ERROR', rc: INVALID, reason: /not a JSON object/ } },
    { name: 'JSON null', input: raw('null'), expected: { type: 'ERROR', rc: INVALID, reason: /not a JSON object/ } },
    { name: 'missing type', input: { issued: 1 }, expected: { type: 'ERROR', rc: INVALID, reason: /no 'type'/ } },
    { name: 'type is a number', input: { type: 7 }, expected: { type: 'ERROR', rc: INVALID, reason: /no 'type'/ } },
    { name: 'type is empty', input: { type: '' }, expected: { type: 'ERROR', rc: INVALID, reason: /no 'type'/ } },
    { name: 'type is null', input: { type: null }, expected: { type: 'ERROR', rc: INVALID, reason: /no 'type'/ } },
    { name: 'unknown type', input: { type: 'FROBNICATE' }, expected: { type: 'FROBNICATE', rc: 'FAILURE' as Rc, reason: /unknown message type 'FROBNICATE'/ } },
    { name: 'type naming an Object.prototype member', input: { type: 'constructor' }, expected: { type: 'constructor', rc: 'FAILURE' as Rc } },
    { name: 'type __proto__', input: raw('{"type": "__proto__"}'), expected: { type: '__proto__', rc: 'FAILURE' as Rc } },
    {
      name: 'very long unknown type is cut to 64 characters in the answer',
      input: { type: 'X'.repeat(500) },
      expected: { type: 'X'.repeat(64), rc: 'FAILURE' as Rc },
    },
  ];
}
