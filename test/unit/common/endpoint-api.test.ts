import { Rc } from '../../../src/common/wire/codec.js';
import { decodeFelixRequest, decodePluginRequest, decodeResyncResponse } from '../../../src/common/wire/endpoint-api.js';
import { NOW, Row, decodeTable, malformedRows, raw } from './decode-table.js';

const MS = 1_700_000_000_123;

const created = {
  type: 'ENDPOINTCREATED',
  endpoint_id: 'ep-1.a_b',
  mac: 'AA:bb:CC:dd:EE:ff',
  addrs: [{ addr: '10.0.0.1', gateway: '10.0.0.254', properties: { gr: true } }, { addr: 'FD00:0:0::1' }],
  state: 'enabled',
  resync_id: 'r-1',
  issued: MS,
  interface_name: 'tapep1',
};
const createdDecoded = {
  type: 'ENDPOINTCREATED',
  endpoint_id: 'ep-1.a_b',
  mac: 'aa:bb:cc:dd:ee:ff',
  addrs: [{ addr: '10.0.0.1', gateway: '10.0.0.254', properties: { gr: true } }, { addr: 'fd00::1' }],
  state: 'enabled',
  resync_id: 'r-1',
  issued: MS,
  interface_name: 'tapep1',
};

const updated = { type: 'ENDPOINTUPDATED', endpoint_id: 'ep1', mac: 'aa:bb:cc:dd:ee:01', addrs: [{ addr: '10.0.0.2' }], state: 'disabled', issued: MS };

function without<T extends object>(o: T, ...keys: string[]): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([k]) => !keys.includes(k))) as Partial<T>;
}

const invalid = (type: string, reason: RegExp) => ({ type, rc: Rc.INVALID, reason });

describe('endpoint API: decodeFelixRequest', () => {
  const rows: Row[] = [
    ...malformedRows(),
    {
      name: 'a RESYNCSTATE is not a Felix request',
      input: { type: 'RESYNCSTATE', resync_id: 'r', hostname: 'h' },
      expected: { type: 'RESYNCSTATE', rc: Rc.FAILURE },
    },
    { name: 'HEARTBEAT', input: { type: 'HEARTBEAT' }, expected: { msg: { type: 'HEARTBEAT' } } },
    { name: 'HEARTBEAT with extra fields', input: { type: 'HEARTBEAT', issued: 'x', foo: [1] }, expected: { msg: { type: 'HEARTBEAT' } } },

    { name: 'ENDPOINTCREATED, every field: MAC lower-cased, IPv6 canonical', input: created, expected: { msg: createdDecoded } },
    {
      name: 'ENDPOINTCREATED without optional interface_name, gateway, properties; resync_id null',
      input: { ...created, interface_name: undefined, resync_id: null, addrs: [{ addr: '10.0.0.1' }] },
      expected: { msg: { ...without(createdDecoded, 'interface_name'), resync_id: null, addrs: [{ addr: '10.0.0.1' }] } },
    },
    { name: 'ENDPOINTCREATED with resync_id missing: null', input: without(created, 'resync_id'), expected: { msg: { ...createdDecoded, resync_id: null } } },
    {
      name: 'ENDPOINTCREATED with interface_name null',
      input: { ...created, interface_name: null },
      expected: { msg: without(createdDecoded, 'interface_name') },
    },
    {
      name: 'ENDPOINTCREATED with an id the originals accepted (host1:ctr/web)',
      input: { ...created, endpoint_id: 'host1:ctr/web' },
      expected: { msg: { ...createdDecoded, endpoint_id: 'host1:ctr/web' } },
    },
    {
      name: 'ENDPOINTCREATED with gateway null',
      input: { ...created, addrs: [{ addr: '10.0.0.1', gateway: null }] },
      expected: { msg: { ...createdDecoded, addrs: [{ addr: '10.0.0.1' }] } },
    },
    { name: 'ENDPOINTCREATED with no addresses', input: { ...created, addrs: [] }, expected: { msg: { ...createdDecoded, addrs: [] } } },
    {
      name: 'ENDPOINTCREATED: properties that are not {gr: bool} are dropped',
      input: {
        ...created,
        addrs: [
          { addr: '10.0.0.1', properties: 'gr' },
          { addr: '10.0.0.2', properties: { gr: 'yes' } },
        ],
      },
      expected: { msg: { ...createdDecoded, addrs: [{ addr: '10.0.0.1' }, { addr: '10.0.0.2' }] } },
    },
    {
      name: 'issued as seconds with fraction',
      input: { ...created, issued: 1_700_000_000.5 },
      expected: { msg: { ...createdDecoded, issued: 1_700_000_000_500 } },
    },
    {
      name: 'issued as a numeric string of seconds',
      input: { ...created, issued: '1700000000.25' },
      expected: { msg: { ...createdDecoded, issued: 1_700_000_000_250 } },
    },
    { name: 'issued as a numeric string of ms', input: { ...created, issued: String(MS) }, expected: { msg: createdDecoded } },
    { name: 'issued garbage is never a reason to reject', input: { ...created, issued: 'yesterday' }, expected: { msg: { ...createdDecoded, issued: NOW } } },
    { name: 'issued an object', input: { ...created, issued: { t: 1 } }, expected: { msg: { ...createdDecoded, issued: NOW } } },
    { name: 'issued negative', input: { ...created, issued: -5 }, expected: { msg: { ...createdDecoded, issued: NOW } } },
    { name: 'issued missing', input: without(created, 'issued'), expected: { msg: { ...createdDecoded, issued: NOW } } },

    { name: 'endpoint_id missing', input: without(created, 'endpoint_id'), expected: invalid('ENDPOINTCREATED', /missing field 'endpoint_id'/) },
    { name: 'endpoint_id null', input: { ...created, endpoint_id: null }, expected: invalid('ENDPOINTCREATED', /missing field 'endpoint_id'/) },
    { name: 'endpoint_id a number', input: { ...created, endpoint_id: 12 }, expected: invalid('ENDPOINTCREATED', /'endpoint_id' must be a string/) },
    { name: 'endpoint_id empty', input: { ...created, endpoint_id: '' }, expected: invalid('ENDPOINTCREATED', /'endpoint_id' is not a valid endpoint id/) },
    {
      name: 'endpoint_id with a space',
      input: { ...created, endpoint_id: 'a b' },
      expected: invalid('ENDPOINTCREATED', /'endpoint_id' is not a valid endpoint id/),
    },
    { name: 'endpoint_id with a space', input: { ...created, endpoint_id: 'a b' }, expected: invalid('ENDPOINTCREATED', /'endpoint_id'/) },
    { name: 'endpoint_id with a newline', input: { ...created, endpoint_id: 'x\n-j ACCEPT' }, expected: invalid('ENDPOINTCREATED', /'endpoint_id'/) },
    { name: 'endpoint_id of 256 characters', input: { ...created, endpoint_id: 'a'.repeat(256) }, expected: invalid('ENDPOINTCREATED', /'endpoint_id'/) },
    {
      name: 'endpoint_id of 255 characters',
      input: { ...created, endpoint_id: 'a'.repeat(255) },
      expected: { msg: { ...createdDecoded, endpoint_id: 'a'.repeat(255) } },
    },

    { name: 'mac missing', input: without(created, 'mac'), expected: invalid('ENDPOINTCREATED', /missing field 'mac'/) },
    { name: 'mac with five octets', input: { ...created, mac: 'aa:bb:cc:dd:ee' }, expected: invalid('ENDPOINTCREATED', /'mac' is not a MAC address/) },
    { name: 'mac without colons', input: { ...created, mac: 'aabbccddeeff' }, expected: invalid('ENDPOINTCREATED', /'mac' is not a MAC address/) },
    { name: 'mac with dashes', input: { ...created, mac: 'aa-bb-cc-dd-ee-ff' }, expected: invalid('ENDPOINTCREATED', /'mac'/) },
    { name: 'mac with a non-hex digit', input: { ...created, mac: 'aa:bb:cc:dd:ee:fg' }, expected: invalid('ENDPOINTCREATED', /'mac'/) },
    { name: 'mac a number', input: { ...created, mac: 42 }, expected: invalid('ENDPOINTCREATED', /'mac' must be a string/) },

    { name: 'addrs missing', input: without(created, 'addrs'), expected: invalid('ENDPOINTCREATED', /missing field 'addrs'/) },
    { name: 'addrs a string', input: { ...created, addrs: '10.0.0.1' }, expected: invalid('ENDPOINTCREATED', /'addrs' must be a list/) },
    { name: 'addrs entry a string', input: { ...created, addrs: ['10.0.0.1'] }, expected: invalid('ENDPOINTCREATED', /addrs\[0\] must be an object/) },
    {
      name: 'addrs entry without addr',
      input: { ...created, addrs: [{ gateway: '10.0.0.1' }] },
      expected: invalid('ENDPOINTCREATED', /addrs\[0\]\.addr is not an IP address/),
    },
    {
      name: 'bad IPv4 in the second entry',
      input: { ...created, addrs: [{ addr: '10.0.0.1' }, { addr: '10.0.0.300' }] },
      expected: invalid('ENDPOINTCREATED', /addrs\[1\]\.addr is not an IP address: "10.0.0.300"/),
    },
    { name: 'three-part IPv4', input: { ...created, addrs: [{ addr: '10.0.1' }] }, expected: invalid('ENDPOINTCREATED', /addrs\[0\]\.addr/) },
    {
      name: 'CIDR where an address is expected',
      input: { ...created, addrs: [{ addr: '10.0.0.1/32' }] },
      expected: invalid('ENDPOINTCREATED', /addrs\[0\]\.addr/),
    },
    {
      name: 'addr a number',
      input: { ...created, addrs: [{ addr: 167772161 }] },
      expected: invalid('ENDPOINTCREATED', /addrs\[0\]\.addr is not an IP address: 167772161/),
    },
    {
      name: 'bad gateway',
      input: { ...created, addrs: [{ addr: '10.0.0.1', gateway: 'router' }] },
      expected: invalid('ENDPOINTCREATED', /addrs\[0\]\.gateway is not an IP address/),
    },

    { name: 'state missing', input: without(created, 'state'), expected: invalid('ENDPOINTCREATED', /missing field 'state'/) },
    { name: 'state in upper case', input: { ...created, state: 'ENABLED' }, expected: invalid('ENDPOINTCREATED', /'state' must be one of enabled, disabled/) },
    { name: 'state unknown', input: { ...created, state: 'up' }, expected: invalid('ENDPOINTCREATED', /'state'/) },
    { name: 'state a boolean', input: { ...created, state: true }, expected: invalid('ENDPOINTCREATED', /'state' must be a string/) },
    { name: 'resync_id a number', input: { ...created, resync_id: 5 }, expected: invalid('ENDPOINTCREATED', /'resync_id' must be a string/) },
    {
      name: 'interface_name of 16 characters',
      input: { ...created, interface_name: 'tap0123456789abc' },
      expected: invalid('ENDPOINTCREATED', /'interface_name'/),
    },
    { name: 'interface_name with a slash', input: { ...created, interface_name: 'tap/1' }, expected: invalid('ENDPOINTCREATED', /'interface_name'/) },
    {
      name: 'interface_name of 15 characters',
      input: { ...created, interface_name: 'tap0123456789ab' },
      expected: { msg: { ...createdDecoded, interface_name: 'tap0123456789ab' } },
    },

    { name: 'ENDPOINTUPDATED', input: updated, expected: { msg: updated } },
    { name: 'ENDPOINTUPDATED ignores fields it does not carry', input: { ...updated, resync_id: 'r', interface_name: 'x' }, expected: { msg: updated } },
    { name: 'ENDPOINTUPDATED without mac', input: without(updated, 'mac'), expected: invalid('ENDPOINTUPDATED', /missing field 'mac'/) },
    { name: 'ENDPOINTUPDATED without addrs', input: without(updated, 'addrs'), expected: invalid('ENDPOINTUPDATED', /missing field 'addrs'/) },
    { name: 'ENDPOINTUPDATED with a bad state', input: { ...updated, state: 'gone' }, expected: invalid('ENDPOINTUPDATED', /'state'/) },
    {
      name: 'ENDPOINTUPDATED with a bad IPv6 address',
      input: { ...updated, addrs: [{ addr: 'fd00::g' }] },
      expected: invalid('ENDPOINTUPDATED', /addrs\[0\]\.addr/),
    },

    {
      name: 'ENDPOINTDESTROYED',
      input: { type: 'ENDPOINTDESTROYED', endpoint_id: 'ep1', issued: '1700000000' },
      expected: { msg: { type: 'ENDPOINTDESTROYED', endpoint_id: 'ep1', issued: 1_700_000_000_000 } },
    },
    {
      name: 'ENDPOINTDESTROYED without endpoint_id',
      input: { type: 'ENDPOINTDESTROYED', issued: MS },
      expected: invalid('ENDPOINTDESTROYED', /missing field 'endpoint_id'/),
    },
    {
      name: 'ENDPOINTDESTROYED with a list as endpoint_id',
      input: { type: 'ENDPOINTDESTROYED', endpoint_id: ['ep1'] },
      expected: invalid('ENDPOINTDESTROYED', /'endpoint_id' must be a string/),
    },
  ];
  decodeTable(decodeFelixRequest, rows);
});

describe('endpoint API: decodePluginRequest', () => {
  const resync = { type: 'RESYNCSTATE', resync_id: 'abc-1', hostname: 'instance-1.example', issued: MS };
  const rows: Row[] = [
    ...malformedRows(),
    { name: 'RESYNCSTATE', input: resync, expected: { msg: resync } },
    { name: 'RESYNCSTATE with issued in seconds', input: { ...resync, issued: 1_700_000_000 }, expected: { msg: { ...resync, issued: 1_700_000_000_000 } } },
    { name: 'RESYNCSTATE without issued', input: without(resync, 'issued'), expected: { msg: { ...resync, issued: NOW } } },
    { name: 'RESYNCSTATE without resync_id', input: without(resync, 'resync_id'), expected: invalid('RESYNCSTATE', /missing field 'resync_id'/) },
    { name: 'RESYNCSTATE with resync_id null', input: { ...resync, resync_id: null }, expected: invalid('RESYNCSTATE', /missing field 'resync_id'/) },
    { name: 'RESYNCSTATE without hostname', input: without(resync, 'hostname'), expected: invalid('RESYNCSTATE', /missing field 'hostname'/) },
    { name: 'RESYNCSTATE with a numeric hostname', input: { ...resync, hostname: 1 }, expected: invalid('RESYNCSTATE', /'hostname' must be a string/) },
    { name: 'HEARTBEAT', input: { type: 'HEARTBEAT' }, expected: { msg: { type: 'HEARTBEAT' } } },
    {
      name: 'an ENDPOINTCREATED is not a plugin request',
      input: created,
      expected: { type: 'ENDPOINTCREATED', rc: Rc.FAILURE, reason: /unknown message type/ },
    },
  ];
  decodeTable(decodePluginRequest, rows);
});

describe('endpoint API: decodeResyncResponse', () => {
  const ok = { type: 'RESYNCSTATE', rc: 'SUCCESS', message: '', endpoint_count: 3 };
  const rows: Row[] = [
    { name: 'SUCCESS with a count', input: ok, expected: { msg: ok } },
    { name: 'endpoint_count as a numeric string (the 2014 plugin)', input: { ...ok, endpoint_count: '3' }, expected: { msg: ok } },
    { name: 'endpoint_count as a padded numeric string', input: { ...ok, endpoint_count: ' 12 ' }, expected: { msg: { ...ok, endpoint_count: 12 } } },
    { name: 'endpoint_count zero', input: { ...ok, endpoint_count: 0 }, expected: { msg: { ...ok, endpoint_count: 0 } } },
    { name: 'with interface_prefix', input: { ...ok, interface_prefix: 'veth' }, expected: { msg: { ...ok, interface_prefix: 'veth' } } },
    { name: 'interface_prefix null is absent', input: { ...ok, interface_prefix: null }, expected: { msg: ok } },
    { name: 'message missing becomes empty', input: without(ok, 'message'), expected: { msg: ok } },
    { name: 'extra fields are dropped', input: { ...ok, resync_id: 'r', foo: 1 }, expected: { msg: ok } },
    {
      name: 'a failure needs no count',
      input: { type: 'RESYNCSTATE', rc: 'FAILURE', message: 'busy' },
      expected: { msg: { type: 'RESYNCSTATE', rc: 'FAILURE', message: 'busy', endpoint_count: 0 } },
    },
    { name: 'SUCCESS without a count', input: without(ok, 'endpoint_count'), expected: invalid('RESYNCSTATE', /missing field 'endpoint_count'/) },
    { name: 'negative count', input: { ...ok, endpoint_count: -1 }, expected: invalid('RESYNCSTATE', /'endpoint_count' must be a non-negative integer/) },
    { name: 'fractional count', input: { ...ok, endpoint_count: 1.5 }, expected: invalid('RESYNCSTATE', /'endpoint_count'/) },
    { name: 'count in words', input: { ...ok, endpoint_count: 'three' }, expected: invalid('RESYNCSTATE', /'endpoint_count'/) },
    { name: 'count as "3.0"', input: { ...ok, endpoint_count: '3.0' }, expected: invalid('RESYNCSTATE', /'endpoint_count'/) },
    { name: 'count as a list', input: { ...ok, endpoint_count: [3] }, expected: invalid('RESYNCSTATE', /'endpoint_count'/) },
    { name: 'interface_prefix too long', input: { ...ok, interface_prefix: 'veth0' }, expected: invalid('RESYNCSTATE', /'interface_prefix'/) },
    { name: 'interface_prefix empty', input: { ...ok, interface_prefix: '' }, expected: invalid('RESYNCSTATE', /'interface_prefix'/) },
    { name: 'interface_prefix a number', input: { ...ok, interface_prefix: 7 }, expected: invalid('RESYNCSTATE', /'interface_prefix' must be a string/) },
    { name: 'reply of another type', input: { type: 'HEARTBEAT', rc: 'SUCCESS', message: '' }, expected: invalid('HEARTBEAT', /expected a RESYNCSTATE reply/) },
    { name: 'unknown rc', input: { ...ok, rc: 'OK' }, expected: invalid('RESYNCSTATE', /bad rc 'OK'/) },
    { name: 'rc missing', input: without(ok, 'rc'), expected: invalid('RESYNCSTATE', /bad rc/) },
    { name: 'not JSON', input: raw('RESYNCSTATE'), expected: invalid('ERROR', /not JSON/) },
    { name: 'JSON array', input: raw('[]'), expected: invalid('ERROR', /not a typed JSON object/) },
    { name: 'no type', input: without(ok, 'type'), expected: invalid('ERROR', /not a typed JSON object/) },
  ];
  decodeTable(decodeResyncResponse, rows);
});
