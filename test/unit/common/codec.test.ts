import { expect } from 'chai';
import {
  Rc,
  canonicalCidr,
  canonicalIp,
  decodeResponse,
  encode,
  errorResponse,
  heartbeat,
  ipFamily,
  isEndpointId,
  isIp,
  isMac,
  parseIssued,
  rememberingDecoder,
  success,
} from '../../../src/common/wire/codec.js';
import { decodeAclPublication, decodeAclRequest } from '../../../src/common/wire/acl-api.js';
import { decodeFelixRequest, decodePluginRequest, decodeResyncResponse } from '../../../src/common/wire/endpoint-api.js';
import { decodeNetworkPublication, decodeNetworkRequest } from '../../../src/common/wire/network-api.js';
import { Row, decodeTable, raw } from './decode-table.js';

describe('codec: isIp', () => {
  const rows: [string, boolean][] = [
    ['10.0.0.1', true],
    ['0.0.0.0', true],
    ['255.255.255.255', true],
    ['::1', true],
    ['::', true],
    ['fd00:198:18::1', true],
    ['FD00::A', true],
    ['::ffff:10.0.0.1', true],
    ['1.2.3', false], // the short forms inet_aton takes are not addresses here
    ['1.2.3.4.5', false],
    ['01.2.3.4', false], // leading zero: octal to some parsers, decimal to others
    ['10.0.0.010', false],
    ['0x0a.0.0.1', false],
    ['167772161', false],
    ['1.2.3.256', false],
    ['-1.2.3.4', false],
    [' 10.0.0.1', false],
    ['10.0.0.1 ', false],
    ['10.0.0.1/32', false],
    ['fd00::g', false],
    ['fd00:::1', false],
    ['1:2:3:4:5:6:7:8:9', false],
    ['fe80::1%eth0', false], // a zone index means nothing in a route, neighbour or ipset
    ['', false],
    ['localhost', false],
  ];
  for (const [input, want] of rows) it(`${JSON.stringify(input)} → ${want}`, () => expect(isIp(input)).to.equal(want));
});

describe('codec: ipFamily and canonicalIp', () => {
  const rows: [string, 4 | 6, string][] = [
    ['10.0.0.1', 4, '10.0.0.1'],
    ['FD00:0:0:0::1', 6, 'fd00::1'],
    ['2001:DB8:0:0:1:0:0:1', 6, '2001:db8::1:0:0:1'],
    ['::', 6, '::'],
  ];
  for (const [input, family, canonical] of rows)
    it(`${input} → IPv${family} ${canonical}`, () => {
      expect(ipFamily(input)).to.equal(family);
      expect(canonicalIp(input)).to.equal(canonical);
    });
});

describe('codec: canonicalCidr', () => {
  const rows: [string, string | null][] = [
    ['10.1.2.3/24', '10.1.2.0/24'], // host bits cleared
    ['10.1.2.3/32', '10.1.2.3/32'],
    ['10.255.255.255/8', '10.0.0.0/8'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['192.168.7.9/0', '0.0.0.0/0'],
    ['10.1.2.3', '10.1.2.3/32'], // bare address
    ['fd00::1/64', 'fd00::/64'],
    ['FD00:0:0:0:1:2:3:4/96', 'fd00::1:2:0:0/96'],
    ['fd00::1', 'fd00::1/128'],
    ['::/0', '::/0'],
    ['10.0.0.0/33', null],
    ['fd00::/129', null],
    ['10.0.0.0/-1', null],
    ['10.0.0.0/', null],
    ['/24', null],
    ['10.0.0.0/24/1', null],
    ['10.0.0.0/ 24', null],
    ['10.0.0/24', null],
    ['010.0.0.0/8', null],
    ['1.2.3', null],
    ['fe80::1%eth0', null],
    ['fe80::1%eth0/64', null],
    ['garbage', null],
    ['', null],
  ];
  for (const [input, want] of rows) it(`${JSON.stringify(input)} → ${want}`, () => expect(canonicalCidr(input)).to.equal(want));
});

describe('codec: isMac and isEndpointId', () => {
  const macs: [string, boolean][] = [
    ['ee:ee:ee:ee:ee:01', true],
    ['EE:EE:EE:EE:EE:0A', true],
    ['ee:ee:ee:ee:ee', false],
    ['ee:ee:ee:ee:ee:ee:ee', false],
    ['eeeeeeeeeeee', false],
    ['ee-ee-ee-ee-ee-ee', false],
    ['e:ee:ee:ee:ee:ee', false],
    ['ee:ee:ee:ee:ee:eg', false],
    ['', false],
  ];
  for (const [input, want] of macs) it(`mac ${JSON.stringify(input)} → ${want}`, () => expect(isMac(input)).to.equal(want));
  const ids: [string, boolean][] = [
    ['3f1c2a9b8d7e6f50a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718', true],
    ['ep1', true],
    ['a.b-c_d', true],
    ['A', true],
    // SPEC §3 v2: any 1–255 characters without whitespace or control characters (the originals accepted host1:ctr/web).
    ['', false],
    ['.hidden', true],
    ['web:1', true],
    ['host1:ctr/web', true],
    ['é', true],
    ['a b', false],
    ['a\tb', false],
    ['a\nb', false],
    ['a\u0000b', false],
    ['a\u007fb', false],
    ['a\u00a0b', false],
    ['a'.repeat(255), true],
    ['é'.repeat(255), true],
    ['a'.repeat(256), false],
  ];
  for (const [input, want] of ids)
    it(`endpoint id ${JSON.stringify(input.slice(0, 20))} (${input.length}) → ${want}`, () => expect(isEndpointId(input)).to.equal(want));
});

describe('codec: parseIssued', () => {
  const rows: [string, unknown, number | null][] = [
    ['ms number', 1_700_000_000_123, 1_700_000_000_123],
    ['seconds with fraction', 1_700_000_000.123, 1_700_000_000_123],
    ['whole seconds', 1_700_000_000, 1_700_000_000_000],
    ['numeric string of ms', '1700000000123', 1_700_000_000_123],
    ['numeric string of seconds', '1700000000.5', 1_700_000_000_500],
    ['padded numeric string', ' 1700000000 ', 1_700_000_000_000],
    ['garbage string', 'yesterday', null],
    ['empty string', '', null],
    ['blank string', '  ', null],
    ['zero', 0, null],
    ['negative', -1, null],
    ['null', null, null],
    ['undefined', undefined, null],
    ['boolean', true, null],
    ['object', {}, null],
    ['list', [1_700_000_000], null],
    ['infinity', Infinity, null],
    ['NaN', NaN, null],
  ];
  for (const [name, input, want] of rows)
    it(`${name} → ${want ?? 'now'}`, () => {
      const before = Date.now();
      const got = parseIssued(input);
      if (want === null) expect(got).to.be.within(before, Date.now());
      else expect(got).to.equal(want);
    });
});

describe('codec: decodeResponse', () => {
  const rows: Row[] = [
    ...Object.values(Rc).map((rc) => ({
      name: `rc ${rc}`,
      input: { type: 'GETGROUPS', rc, message: 'm' },
      expected: { msg: { type: 'GETGROUPS', rc, message: 'm' } },
    })),
    { name: 'message missing', input: { type: 'HEARTBEAT', rc: 'SUCCESS' }, expected: { msg: { type: 'HEARTBEAT', rc: 'SUCCESS', message: '' } } },
    {
      name: 'message not a string',
      input: { type: 'HEARTBEAT', rc: 'SUCCESS', message: 5 },
      expected: { msg: { type: 'HEARTBEAT', rc: 'SUCCESS', message: '' } },
    },
    {
      name: 'extra fields dropped',
      input: { type: 'GETACLSTATE', rc: 'SUCCESS', message: '', endpoint_id: 'e' },
      expected: { msg: { type: 'GETACLSTATE', rc: 'SUCCESS', message: '' } },
    },
    { name: 'rc missing', input: { type: 'GETGROUPS' }, expected: { type: 'GETGROUPS', rc: Rc.INVALID, reason: /bad rc ''/ } },
    { name: 'rc in lower case', input: { type: 'GETGROUPS', rc: 'success' }, expected: { type: 'GETGROUPS', rc: Rc.INVALID, reason: /bad rc 'success'/ } },
    { name: 'rc a number', input: { type: 'GETGROUPS', rc: 0 }, expected: { type: 'GETGROUPS', rc: Rc.INVALID } },
    { name: 'not JSON', input: raw('SUCCESS'), expected: { type: 'ERROR', rc: Rc.INVALID, reason: /not JSON/ } },
    { name: 'JSON number', input: raw('1'), expected: { type: 'ERROR', rc: Rc.INVALID, reason: /not a typed JSON object/ } },
    { name: 'JSON array', input: raw('[{"type":"X","rc":"SUCCESS"}]'), expected: { type: 'ERROR', rc: Rc.INVALID } },
    { name: 'type missing', input: { rc: 'SUCCESS' }, expected: { type: 'ERROR', rc: Rc.INVALID, reason: /not a typed JSON object/ } },
  ];
  decodeTable(decodeResponse, rows);
});

describe('codec: replies we send', () => {
  it('success is {type, SUCCESS, empty message}', () => {
    expect(success('GETGROUPS')).to.deep.equal({ type: 'GETGROUPS', rc: 'SUCCESS', message: '' });
  });
  it('errorResponse carries type, rc and the reason as message', () => {
    expect(errorResponse({ type: 'X', rc: Rc.FAILURE, reason: 'why' })).to.deep.equal({ type: 'X', rc: 'FAILURE', message: 'why' });
  });
  it('heartbeat encodes to exactly {"type":"HEARTBEAT"}', () => {
    expect(encode(heartbeat())).to.equal('{"type":"HEARTBEAT"}');
  });
  it('an encoded reply decodes back to itself', () => {
    const reply = { type: 'ENDPOINTCREATED', rc: Rc.NOTEXIST, message: 'no such endpoint' };
    expect(decodeResponse(encode(reply))).to.deep.equal({ ok: true, msg: reply });
  });
});

describe('codec: no decoder throws, whatever the body', () => {
  const decoders = {
    decodeFelixRequest,
    decodePluginRequest,
    decodeResyncResponse,
    decodeNetworkRequest,
    decodeNetworkPublication,
    decodeAclRequest,
    decodeAclPublication,
    decodeResponse,
  };
  const types = ['ENDPOINTCREATED', 'ENDPOINTUPDATED', 'ENDPOINTDESTROYED', 'RESYNCSTATE', 'GETGROUPS', 'GROUPUPDATE', 'GETACLSTATE', 'ACLUPDATE', 'HEARTBEAT'];
  const shapes: object[] = [
    {},
    { endpoint_id: {}, mac: [], addrs: [null, 1, [], {}], state: {}, resync_id: [], interface_name: 5, issued: [] },
    { addrs: [{ addr: '1.2.3.4', gateway: {}, properties: null }] },
    { resync_id: 'r', hostname: 'h', rc: 'SUCCESS', endpoint_count: {}, interface_prefix: [] },
    { group: 'g', members: { constructor: ['1.2.3.4'], toString: [], ['__proto__']: ['1.2.3.4'] }, rules: { inbound: [null, [], 'x'] } },
    { group: 'g', members: { e: [null, {}, 1e999] }, rules: { inbound: [{ port: [null, null], icmp_type: {}, icmp_code: [] }] } },
    { acls: { v4: { inbound: [{ protocol: {} }] }, v6: [] } },
    { acls: { v4: 'x', v6: null } },
    { acls: null },
  ];
  const bodies = [
    ...types.flatMap((type) => shapes.map((s) => JSON.stringify({ type, ...s }))),
    '['.repeat(100_000),
    '{"type":"HEARTBEAT","issued":1e999}',
    `{"type":"${'\\u0000'.repeat(10)}"}`,
  ];
  for (const [name, decode] of Object.entries(decoders))
    it(`${name} answers ${bodies.length} odd bodies without throwing`, () => {
      for (const body of bodies) expect(() => decode(body), body.slice(0, 120)).not.to.throw();
    });
});

describe('codec: rememberingDecoder', () => {
  const update = (cidr: string) => Buffer.from(JSON.stringify({ type: 'ACLUPDATE', issued: 1, acls: { v4: { inbound: [{ cidr }] } } }));

  it('answers a byte-equal body with the same result, and decodes a different one', () => {
    let calls = 0;
    const decode = rememberingDecoder((b: Buffer) => (calls++, decodeAclPublication(b)), 2);
    const first = decode(update('10.0.0.1/32'));
    expect(first.ok).to.equal(true);
    expect(decode(update('10.0.0.1/32'))).to.equal(first);
    expect(calls).to.equal(1);
    const other = decode(update('10.0.0.2/32'));
    expect(other).to.not.equal(first);
    expect(other.ok && other.msg.type === 'ACLUPDATE' && other.msg.acls.v4.inbound[0]!.cidr).to.equal('10.0.0.2/32');
    expect(calls).to.equal(2);
  });

  it('remembers only the last `size` bodies, and remembers failures too', () => {
    let calls = 0;
    const decode = rememberingDecoder((b: Buffer) => (calls++, decodeAclPublication(b)), 2);
    decode(update('10.0.0.1/32'));
    decode(update('10.0.0.2/32'));
    decode(update('10.0.0.3/32'));
    decode(update('10.0.0.1/32'));
    expect(calls, 'the first was forgotten').to.equal(4);
    const bad = decode(Buffer.from('{"type":"ACLUPDATE"}'));
    expect(bad.ok).to.equal(false);
    expect(decode(Buffer.from('{"type":"ACLUPDATE"}'))).to.equal(bad);
    expect(calls).to.equal(5);
  });
});
