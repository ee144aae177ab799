import { expect } from 'chai';
import {
  ipsetErrorLine, parseIpsetSave, parseIptablesSave, renderIpsetRestore, renderIptablesRestore, setsReferenced,
} from '../../../src/felix/dataplane/render/restore.js';
import { contentHash, contentSetHash, contentSetName, endpointSuffix, tempSetName } from '../../../src/felix/dataplane/render/names.js';

describe('iptables-restore text', () => {
  it('declares (flushes) written and removed chains, appends rules, replaces rules in place, moves jumps, then deletes chains', () => {
    const text = renderIptablesRestore([
      {
        table: 'filter',
        write: [{ name: 'felix-a', rules: ['-j DROP'] }],
        replace: [{ chain: 'felix-c', index: 2, rule: '-j RETURN' }],
        remove: ['felix-b'],
        insertJumps: [{ table: 'filter', from: 'FORWARD', rule: '-j felix-FORWARD' }],
        deleteJumps: [{ table: 'filter', from: 'INPUT', rule: '-j felix-INPUT' }],
      },
      { table: 'raw', write: [], replace: [], remove: [], insertJumps: [], deleteJumps: [] },
    ]);
    expect(text).to.equal(
      ['*filter', ':felix-a - [0:0]', ':felix-b - [0:0]', '-A felix-a -j DROP', '-R felix-c 2 -j RETURN', '-D INPUT -j felix-INPUT', '-I FORWARD 1 -j felix-FORWARD', '-X felix-b', 'COMMIT', ''].join('\n'),
    );
    expect(renderIptablesRestore([{ table: 'nat', write: [], replace: [], remove: [], insertJumps: [], deleteJumps: [] }])).to.equal('', 'nothing to change → no process run');
  });

  it('parses iptables-save into table → chain → rules; finds the sets a rule references', () => {
    const state = parseIptablesSave(['*raw', ':PREROUTING ACCEPT [0:0]', '-A PREROUTING -j felix-RPF', 'COMMIT', '*filter', ':felix-x - [0:0]', '-A felix-x -m set --match-set felix-4a-00 src -j RETURN', 'COMMIT'].join('\n'));
    expect(state.get('raw')!.get('PREROUTING')).to.deep.equal(['-j felix-RPF']);
    expect(setsReferenced(state.get('filter')!.get('felix-x')![0]!)).to.deep.equal(['felix-4a-00']);
  });
});

describe('content-named sets (SPEC §6 v2)', () => {
  it('names a set by family, kind and the hash of its type and sorted members; temporaries are recognisable', () => {
    const name = contentSetName(4, 'port', ['10.0.0.1,tcp:80']);
    expect(name).to.match(/^felix-4p-[0-9a-f]{16}$/);
    expect(contentSetHash(name)).to.equal(contentHash('hash:net,port', ['10.0.0.1,tcp:80']));
    expect(contentSetName(4, 'port', ['10.0.0.1,tcp:81'])).not.to.equal(name);
    expect(contentSetHash('felix-to-addr-abc')).to.equal(null, 'a version-1 name');
    expect(tempSetName(name)).to.equal(`felix-tmp-${name.slice(6)}`);
    expect(tempSetName(name).length).to.be.at.most(31);
  });

  it('one members list named as another family or kind gets that family’s and kind’s name (names are remembered per list)', () => {
    const members = ['10.0.0.0/8'];
    const addr = contentSetName(4, 'addr', members);
    expect(contentSetName(4, 'addr', members)).to.equal(addr);
    expect(contentSetName(4, 'icmp', members)).to.equal(`felix-4i-${addr.slice(9)}`);
    expect(contentSetName(6, 'addr', members)).to.equal(`felix-6a-${addr.slice(9)}`);
    expect(contentSetName(4, 'port', members)).to.equal(`felix-4p-${contentHash('hash:net,port', members)}`);
  });

  it('writes each set under a temporary name, then renames it (or swaps an untrusted one); records each set’s last line', () => {
    const a = { name: 'felix-4a-1', type: 'hash:net' as const, family: 4 as const, members: ['10.0.0.1'] };
    const b = { name: 'felix-6p-2', type: 'hash:net,port' as const, family: 6 as const, members: ['fd00::/8,tcp:80', 'fd00::/8,tcp:81'] };
    const { text, lastLine } = renderIpsetRestore([{ set: a, replace: false }, { set: b, replace: true }], ['felix-to-addr-old']);
    expect(text.split('\n')).to.deep.equal([
      'create felix-tmp-4a-1 hash:net family inet maxelem 1048576',
      'flush felix-tmp-4a-1',
      'add felix-tmp-4a-1 10.0.0.1',
      'rename felix-tmp-4a-1 felix-4a-1',
      'create felix-tmp-6p-2 hash:net,port family inet6 maxelem 1048576',
      'flush felix-tmp-6p-2',
      'add felix-tmp-6p-2 fd00::/8,tcp:80',
      'add felix-tmp-6p-2 fd00::/8,tcp:81',
      'swap felix-tmp-6p-2 felix-6p-2',
      'destroy felix-tmp-6p-2',
      'destroy felix-to-addr-old',
      '',
    ]);
    expect([...lastLine]).to.deep.equal([['felix-4a-1', 4], ['felix-6p-2', 10], ['felix-to-addr-old', 11]]);
    expect(ipsetErrorLine('ipset v7.17: Error in line 7: Hash is full')).to.equal(7);
    expect(ipsetErrorLine('boom')).to.equal(null);
  });

  it('parses ipset save: type, family and members of every set', () => {
    const sets = parseIpsetSave(
      [
        'create felix-4a-1 hash:net family inet hashsize 1024 maxelem 1048576 bucketsize 12 initval 0x2c1e3a3b',
        'add felix-4a-1 10.0.0.1',
        'add felix-4a-1 10.1.0.0/16',
        'create other hash:ip family inet6 hashsize 1024 maxelem 65536',
        '',
      ].join('\n'),
    );
    expect([...sets]).to.deep.equal([
      ['felix-4a-1', { type: 'hash:net', family: 4, members: ['10.0.0.1', '10.1.0.0/16'] }],
      ['other', { type: 'hash:ip', family: 6, members: [] }],
    ]);
  });
});

describe('endpoint suffix (SPEC §3 v2)', () => {
  const rows: [string, string][] = [
    ['abcdefghijklmnop', 'abcdefghijk'],
    ['a.b-c_d', 'a.b-c_d'],
    ['192_168_1_1', '192_168_1_1'],
  ];
  for (const [id, suffix] of rows) it(`${id} → ${suffix}`, () => expect(endpointSuffix(id)).to.equal(suffix));
  it('hashes ids whose first 11 characters are not [A-Za-z0-9_.-]', () => {
    const s = endpointSuffix('host1:ctr/web');
    expect(s).to.match(/^x[0-9a-f]{10}$/);
    expect(endpointSuffix('host1:ctr/web')).to.equal(s, 'stable');
    expect(endpointSuffix('host1:ctr/api')).not.to.equal(s);
    expect(endpointSuffix('abcdefghij:tail')).to.match(/^x/);
    expect(endpointSuffix('abcdefghijk:tail')).to.equal('abcdefghijk', 'only the first 11 characters count');
  });
});
