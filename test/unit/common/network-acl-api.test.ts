import { Rc } from '../../../src/common/wire/codec.js';
import { decodeAclPublication, decodeAclRequest } from '../../../src/common/wire/acl-api.js';
import { decodeNetworkPublication, decodeNetworkRequest } from '../../../src/common/wire/network-api.js';
import { emptyRules } from '../../../src/common/wire/rules.js';
import { NOW, Row, decodeTable, malformedRows, raw } from './decode-table.js';

const MS = 1_700_000_000_000;
const invalid = (type: string, reason: RegExp) => ({ type, rc: Rc.INVALID, reason });
const escape = (s: string) => s.replace(/[.[\]]/g, '\\$&');

/** The prototype's group shape (SPEC §4). */
const prototypeRules = {
  inbound: [{ group: 'g1', cidr: null, protocol: null, port: null }],
  outbound: [
    { group: 'g1', cidr: null, protocol: null, port: null },
    { group: null, cidr: '0.0.0.0/0', protocol: null, port: null },
  ],
  inbound_default: 'deny',
  outbound_default: 'deny',
};

const any = { group: null, cidr: null, protocol: null, port: null };

/**
 * One rule in, one decoded rule (or the tail of the error reason, after the
 * rules' own path) out. Decoding is structural: sense is judged by the user.
 */
const ruleRows: [string, object | string, object | { error: string; says: string }][] = [
  ['a group rule', { group: 'g1', cidr: null, protocol: null, port: null }, { ...any, group: 'g1' }],
  ['a cidr rule', { group: null, cidr: '10.0.0.0/8', protocol: 'tcp', port: 22 }, { ...any, cidr: '10.0.0.0/8', protocol: 'tcp', port: 22 }],
  ['missing fields are null', {}, any],
  ['protocol in upper case is lower-cased', { cidr: '0.0.0.0/0', protocol: 'TCP' }, { ...any, cidr: '0.0.0.0/0', protocol: 'tcp' }],
  ['protocol in mixed case', { protocol: 'UdpLite' }, { ...any, protocol: 'udplite' }],
  ['protocol by number', { protocol: 6 }, { ...any, protocol: '6' }],
  ['fractional protocol number', { protocol: 6.5 }, { error: '.protocol', says: 'must be a string, number or null' }],
  ['protocol a boolean', { protocol: true }, { error: '.protocol', says: 'must be a string, number or null' }],
  ['port a number', { protocol: 'udp', port: 53 }, { ...any, protocol: 'udp', port: 53 }],
  ['port a numeric string stays as given', { protocol: 'tcp', port: '80' }, { ...any, protocol: 'tcp', port: '80' }],
  ['port a [low, high] range', { protocol: 'tcp', port: [1000, 2000] }, { ...any, protocol: 'tcp', port: [1000, 2000] }],
  ['port a range of numeric strings', { protocol: 'tcp', port: ['1000', '2000'] }, { ...any, protocol: 'tcp', port: [1000, 2000] }],
  ['port a range of three', { port: [1, 2, 3] }, { error: '.port', says: 'must be a number, a string, a [low, high] pair or null' }],
  ['port a range of one', { port: [1] }, { error: '.port', says: 'must be a number' }],
  ['port a range of words', { port: ['a', 'b'] }, { error: '.port', says: 'must be a number' }],
  ['port an object', { port: { from: 1 } }, { error: '.port', says: 'must be a number' }],
  ['port a boolean', { port: true }, { error: '.port', says: 'must be a number' }],
  ['icmp type and code', { protocol: 'icmp', icmp_type: 8, icmp_code: 0 }, { ...any, protocol: 'icmp', icmp_type: 8, icmp_code: 0 }],
  ['icmp type and code as numeric strings', { protocol: 'icmp', icmp_type: '3', icmp_code: '1' }, { ...any, protocol: 'icmp', icmp_type: 3, icmp_code: 1 }],
  ['icmp type by name', { protocol: 'icmp', icmp_type: 'echo-request' }, { ...any, protocol: 'icmp', icmp_type: 'echo-request' }],
  ['icmp type and code null are absent', { protocol: 'icmp', icmp_type: null, icmp_code: null }, { ...any, protocol: 'icmp' }],
  ['icmp type a boolean', { icmp_type: false }, { error: '.icmp_type', says: 'must be a number or a name' }],
  ['icmp code fractional', { icmp_type: 3, icmp_code: 1.5 }, { error: '.icmp_code', says: 'must be an integer' }],
  ['icmp code a word', { icmp_type: 3, icmp_code: 'x' }, { error: '.icmp_code', says: 'must be an integer' }],
  ['group a number', { group: 1 }, { error: '.group', says: 'must be a string or null' }],
  ['cidr a list', { cidr: ['10.0.0.0/8'] }, { error: '.cidr', says: 'must be a string or null' }],
  ['rule a string', 'allow all', { error: '', says: 'must be an object' }],
];

/** Rows for a whole rules object, built on {@link ruleRows}; `wrap` places the rules in a message. */
function rulesRows(type: string, where: string, wrap: (rules: unknown) => object, decoded: (rules: object) => object): Row[] {
  const rows: Row[] = [];
  for (const [name, input, want] of ruleRows) {
    const rules = { inbound: [], outbound: [{ ...any, cidr: '0.0.0.0/0' }, input] };
    if ('error' in want) {
      const path = `${where}.outbound[1]${want.error}`;
      rows.push({ name: `rule: ${name}`, input: wrap(rules), expected: invalid(type, new RegExp(`^${escape(path)} ${escape(want.says)}`)) });
    } else {
      const out = { ...emptyRules(), outbound: [{ ...any, cidr: '0.0.0.0/0' }, want] };
      rows.push({ name: `rule: ${name}`, input: wrap(rules), expected: { msg: decoded(out) } });
    }
  }
  rows.push(
    { name: 'rules: the prototype shape', input: wrap(prototypeRules), expected: { msg: decoded(prototypeRules) } },
    { name: 'rules: lists and defaults missing', input: wrap({}), expected: { msg: decoded(emptyRules()) } },
    { name: 'rules: lists null', input: wrap({ inbound: null, outbound: null }), expected: { msg: decoded(emptyRules()) } },
    {
      name: 'rules: inbound not a list',
      input: wrap({ inbound: { group: 'g' } }),
      expected: invalid(type, new RegExp(`${escape(where)}\\.inbound must be a list`)),
    },
    {
      name: 'rules: a bad inbound rule is named by index',
      input: wrap({ inbound: [{}, {}, { port: {} }] }),
      expected: invalid(type, new RegExp(`${escape(where)}\\.inbound\\[2\\]\\.port`)),
    },
    {
      name: 'rules: default allow',
      input: wrap({ inbound_default: 'allow' }),
      expected: invalid(type, new RegExp(`${escape(where)}\\.inbound_default must be "deny"`)),
    },
    {
      name: 'rules: outbound default other',
      input: wrap({ outbound_default: 'DENY' }),
      expected: invalid(type, new RegExp(`${escape(where)}\\.outbound_default`)),
    },
    { name: 'rules: not an object', input: wrap(['inbound']), expected: invalid(type, new RegExp(escape(where))) },
  );
  return rows;
}

describe('network API: decodeNetworkRequest', () => {
  const rows: Row[] = [
    ...malformedRows(),
    { name: 'GETGROUPS', input: { type: 'GETGROUPS', issued: MS }, expected: { msg: { type: 'GETGROUPS', issued: MS } } },
    { name: 'GETGROUPS with issued in seconds', input: { type: 'GETGROUPS', issued: '1700000000' }, expected: { msg: { type: 'GETGROUPS', issued: MS } } },
    { name: 'GETGROUPS without issued', input: { type: 'GETGROUPS' }, expected: { msg: { type: 'GETGROUPS', issued: NOW } } },
    { name: 'HEARTBEAT', input: { type: 'HEARTBEAT' }, expected: { msg: { type: 'HEARTBEAT' } } },
    { name: 'GETACLSTATE belongs to another API', input: { type: 'GETACLSTATE', endpoint_id: 'e' }, expected: { type: 'GETACLSTATE', rc: Rc.FAILURE } },
  ];
  decodeTable(decodeNetworkRequest, rows);
});

describe('network API: decodeNetworkPublication', () => {
  const update = { type: 'GROUPUPDATE', group: 'g1', members: { ep1: ['10.0.0.1', 'FD00:0::1'], ep2: [] }, rules: prototypeRules, issued: MS };
  const decoded = { ...update, members: { ep1: ['10.0.0.1', 'fd00::1'], ep2: [] }, skipped: [] };
  /** SPEC §4 v2: a bad member is left out (and said why); the rest of the group still applies. */
  const without = (skipped: string[]) => ({ msg: { ...decoded, members: { ep2: [] }, skipped } });
  const rows: Row[] = [
    ...malformedRows(),
    { name: 'GROUPUPDATE: addresses canonical', input: update, expected: { msg: decoded } },
    { name: 'GROUPUPDATE with no members (a deleted group)', input: { ...update, members: {} }, expected: { msg: { ...decoded, members: {} } } },
    {
      // JSON.parse makes `__proto__` an own key; decoding must keep it one (not set the prototype).
      name: 'GROUPUPDATE: members named __proto__ and constructor are members',
      input: raw(`{"type":"GROUPUPDATE","group":"g1","members":{"__proto__":["10.0.0.1"],"constructor":["10.0.0.2"]},"rules":{},"issued":${MS}}`),
      expected: {
        msg: {
          ...decoded,
          rules: emptyRules(),
          members: Object.fromEntries([
            ['__proto__', ['10.0.0.1']],
            ['constructor', ['10.0.0.2']],
          ]),
        },
      },
    },
    { name: 'GROUPUPDATE with issued garbage', input: { ...update, issued: 'now' }, expected: { msg: { ...decoded, issued: NOW } } },
    { name: 'HEARTBEAT', input: { type: 'HEARTBEAT', issued: MS }, expected: { msg: { type: 'HEARTBEAT' } } },
    { name: 'group missing', input: { ...update, group: undefined }, expected: invalid('GROUPUPDATE', /missing field 'group'/) },
    { name: 'group a number', input: { ...update, group: 1 }, expected: invalid('GROUPUPDATE', /'group' must be a string/) },
    { name: 'members missing', input: { ...update, members: undefined }, expected: invalid('GROUPUPDATE', /missing field 'members'/) },
    { name: 'members a list', input: { ...update, members: ['ep1'] }, expected: invalid('GROUPUPDATE', /'members' must be an object/) },
    {
      name: 'member with a bad endpoint id: left out',
      input: { ...update, members: { 'ep 1': [], ep2: [] } },
      expected: without(['member "ep 1": bad endpoint id']),
    },
    {
      name: 'member addresses not a list: left out',
      input: { ...update, members: { ep1: '10.0.0.1', ep2: [] } },
      expected: without(['member "ep1": addresses must be a list']),
    },
    {
      name: 'member with a bad address: left out',
      input: { ...update, members: { ep1: ['10.0.0.1', '10.0.0.256'], ep2: [] } },
      expected: without(['member "ep1": bad address']),
    },
    {
      name: 'member address a CIDR: left out',
      input: { ...update, members: { ep1: ['10.0.0.0/24'], ep2: [] } },
      expected: without(['member "ep1": bad address']),
    },
    {
      name: 'every member bad: refused whole (it would read as a deletion)',
      input: { ...update, members: { 'ep 1': [] } },
      expected: invalid('GROUPUPDATE', /every member is invalid \(member "ep 1": bad endpoint id\)/),
    },
    {
      name: "the 2014 plugin's member ids (web:1) are members",
      input: { ...update, members: { 'web:1': ['10.0.0.9'] } },
      expected: { msg: { ...decoded, members: { 'web:1': ['10.0.0.9'] } } },
    },
    { name: 'rules missing', input: { ...update, rules: undefined }, expected: invalid('GROUPUPDATE', /missing field 'rules'/) },
    { name: 'rules a string', input: { ...update, rules: 'allow' }, expected: invalid('GROUPUPDATE', /'rules' must be an object/) },
    ...rulesRows(
      'GROUPUPDATE',
      'rules',
      (rules) => ({ ...update, rules }),
      (rules) => ({ ...decoded, rules }),
    ),
  ];
  decodeTable(decodeNetworkPublication, rows);
});

describe('ACL API: decodeAclRequest', () => {
  const rows: Row[] = [
    ...malformedRows(),
    {
      name: 'GETACLSTATE',
      input: { type: 'GETACLSTATE', endpoint_id: 'ep1', issued: MS },
      expected: { msg: { type: 'GETACLSTATE', endpoint_id: 'ep1', issued: MS } },
    },
    {
      name: 'GETACLSTATE without issued',
      input: { type: 'GETACLSTATE', endpoint_id: 'ep1' },
      expected: { msg: { type: 'GETACLSTATE', endpoint_id: 'ep1', issued: NOW } },
    },
    { name: 'GETACLSTATE without endpoint_id', input: { type: 'GETACLSTATE', issued: MS }, expected: invalid('GETACLSTATE', /missing field 'endpoint_id'/) },
    {
      name: 'GETACLSTATE with a bad endpoint_id',
      input: { type: 'GETACLSTATE', endpoint_id: 'ep1 rm' },
      expected: invalid('GETACLSTATE', /'endpoint_id' is not a valid endpoint id/),
    },
    {
      name: 'GETACLSTATE with a numeric endpoint_id',
      input: { type: 'GETACLSTATE', endpoint_id: 1 },
      expected: invalid('GETACLSTATE', /'endpoint_id' must be a string/),
    },
    { name: 'HEARTBEAT', input: { type: 'HEARTBEAT' }, expected: { msg: { type: 'HEARTBEAT' } } },
    { name: 'GETGROUPS belongs to another API', input: { type: 'GETGROUPS' }, expected: { type: 'GETGROUPS', rc: Rc.FAILURE } },
  ];
  decodeTable(decodeAclRequest, rows);
});

describe('ACL API: decodeAclPublication', () => {
  const v4 = { ...emptyRules(), inbound: [{ ...any, cidr: '10.0.0.1/32' }] };
  const v6 = { ...emptyRules(), outbound: [{ ...any, cidr: '::/0', protocol: 'tcp', port: [80, 443] }] };
  const update = { type: 'ACLUPDATE', acls: { v4, v6 }, issued: MS };
  const rows: Row[] = [
    ...malformedRows(),
    { name: 'ACLUPDATE', input: update, expected: { msg: update } },
    { name: 'ACLUPDATE with v6 missing: empty rules', input: { ...update, acls: { v4 } }, expected: { msg: { ...update, acls: { v4, v6: emptyRules() } } } },
    {
      name: 'ACLUPDATE with v4 null: empty rules',
      input: { ...update, acls: { v4: null, v6 } },
      expected: { msg: { ...update, acls: { v4: emptyRules(), v6 } } },
    },
    { name: 'ACLUPDATE with issued in seconds', input: { ...update, issued: 1_700_000_000 }, expected: { msg: update } },
    { name: 'HEARTBEAT', input: { type: 'HEARTBEAT' }, expected: { msg: { type: 'HEARTBEAT' } } },
    { name: 'acls missing', input: { type: 'ACLUPDATE', issued: MS }, expected: invalid('ACLUPDATE', /missing field 'acls'/) },
    { name: 'acls a list', input: { ...update, acls: [v4, v6] }, expected: invalid('ACLUPDATE', /'acls' must be an object/) },
    { name: 'acls.v6 a string', input: { ...update, acls: { v4, v6: 'none' } }, expected: invalid('ACLUPDATE', /acls\.v6 must be an object/) },
    ...rulesRows(
      'ACLUPDATE',
      'acls.v4',
      (rules) => ({ ...update, acls: { v4: rules, v6 } }),
      (rules) => ({ ...update, acls: { v4: rules, v6 } }),
    ),
  ];
  decodeTable(decodeAclPublication, rows);
});
