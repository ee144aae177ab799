/**
 * The fake kernel (test/support/fake-kernel.ts) refuses what the real tools
 * and rtnetlink refuse, with their messages. The expectations here were taken
 * from iptables v1.8.9 (nf_tables), ipset v7.17, conntrack v1.4.7 and Linux
 * in a throwaway namespace; these tests themselves need no root.
 */
import { expect } from 'chai';
import { CommandError } from '../../../src/felix/dataplane/drivers/commands.js';
import type { LinkEvent } from '../../../src/felix/dataplane/drivers/netlink.js';
import {
  parseIpsetSave,
  parseIptablesCounters,
  parseIptablesSave,
  renderIpsetRestore,
  renderIptablesRestore,
} from '../../../src/felix/dataplane/render/restore.js';
import { FakeKernel } from '../../support/fake-kernel.js';

/** The error a promise rejects with (fails the test if it resolves). */
async function rejection<E = NodeJS.ErrnoException>(p: Promise<unknown>): Promise<E> {
  try {
    await p;
  } catch (e) {
    return e as E;
  }
  throw new Error('expected a rejection');
}

describe('FakeKernel', () => {
  let k: FakeKernel;
  const restore = (text: string, family: 4 | 6 = 4): Promise<string> =>
    k.runner.run(family === 4 ? 'iptables-restore' : 'ip6tables-restore', ['--noflush'], text);
  const ipset = (text: string, exist = false): Promise<string> => k.runner.run('ipset', [...(exist ? ['-exist'] : []), 'restore'], text);
  const failure = (p: Promise<unknown>): Promise<CommandError> => rejection<CommandError>(p);
  const rules = (chain: string, table: 'filter' | 'nat' | 'raw' = 'filter', family: 4 | 6 = 4): string[] | undefined => k.chains(family, table).get(chain);

  beforeEach(() => {
    k = new FakeKernel();
  });
  afterEach(() => {
    k.checkInvariants();
  });

  describe('iptables-save', () => {
    it('prints every table with its built-in chains (policy ACCEPT), user chains (-) sorted, rules, COMMIT', async () => {
      await restore('*filter\n:felix-z - [0:0]\n:felix-a - [0:0]\n-A felix-a -j DROP\n-A FORWARD -j felix-a\nCOMMIT\n');
      const text = await k.runner.run('iptables-save', []);
      expect(text.split('\n').filter((l) => !l.startsWith('#'))).to.deep.equal([
        '*filter',
        ':INPUT ACCEPT [0:0]',
        ':FORWARD ACCEPT [0:0]',
        ':OUTPUT ACCEPT [0:0]',
        ':felix-a - [0:0]',
        ':felix-z - [0:0]',
        '-A FORWARD -j felix-a',
        '-A felix-a -j DROP',
        'COMMIT',
        '*nat',
        ':PREROUTING ACCEPT [0:0]',
        ':INPUT ACCEPT [0:0]',
        ':OUTPUT ACCEPT [0:0]',
        ':POSTROUTING ACCEPT [0:0]',
        'COMMIT',
        '*raw',
        ':PREROUTING ACCEPT [0:0]',
        ':OUTPUT ACCEPT [0:0]',
        'COMMIT',
        '',
      ]);
      const parsed = parseIptablesSave(text);
      expect([...parsed.keys()]).to.deep.equal(['filter', 'nat', 'raw']);
      expect(parsed.get('filter')!.get('felix-a')).to.deep.equal(['-j DROP']);
    });

    it('prints one table with -t, counters with -c, and refuses an unknown table', async () => {
      const nat = await k.runner.run('iptables-save', ['-t', 'nat']);
      expect(nat).to.include('*nat').and.not.include('*filter');
      await restore('*filter\n-A INPUT -j ACCEPT\nCOMMIT\n');
      expect(await k.runner.run('iptables-save', ['-c', '-t', 'filter'])).to.include('\n[0:0] -A INPUT -j ACCEPT\n');
      const err = await failure(k.runner.run('iptables-save', ['-t', 'bogus']));
      expect(err).to.be.instanceOf(CommandError);
      expect(err.stderr).to.equal("Table `bogus' does not exist");
    });

    it('keeps IPv4 and IPv6 apart', async () => {
      await restore('*filter\n:felix-six - [0:0]\nCOMMIT\n', 6);
      expect(await k.runner.run('ip6tables-save', ['-t', 'filter'])).to.include(':felix-six - [0:0]');
      expect(await k.runner.run('iptables-save', ['-t', 'filter'])).not.to.include('felix-six');
    });
  });

  describe('iptables-restore --noflush', () => {
    it('refuses to run without --noflush', async () => {
      const err = await failure(k.runner.run('iptables-restore', [], '*filter\nCOMMIT\n'));
      expect(err.stderr).to.match(/without --noflush/);
    });

    it('accepts --noflush --counters and [p:b] rule prefixes', async () => {
      await k.runner.run('iptables-restore', ['--noflush', '--counters'], '*filter\n[3:4] -A INPUT -j ACCEPT\nCOMMIT\n');
      expect(rules('INPUT')).to.deep.equal(['-j ACCEPT']);
    });

    it('counters as iptables v1.8.9 keeps them (checked in a namespace): -D N / -I N in one restore apply in sequence and keep the other rules’ counters; -R, a declaration (flush) and -Z reset', async () => {
      const saved = async (chain: string) =>
        parseIptablesCounters(await k.runner.run('iptables-save', ['-c', '-t', 'filter']))
          .get('filter')!
          .get(chain)!
          .map((r) => `${r.packets} ${r.rule}`);
      await restore(
        '*filter\n:felix-x - [0:0]\n:felix-y - [0:0]\n' +
          ['a', 'b', 'c', 'd'].map((c) => `-A felix-x -m comment --comment ${c}`).join('\n') +
          '\n-A felix-x -j felix-y\n-A felix-x -j DROP\n-A felix-y -j RETURN\nCOMMIT\n',
      );
      for (let i = 1; i <= 6; i++) k.hitRule(4, 'filter', 'felix-x', i, 3);
      k.hitRule(4, 'filter', 'felix-y', 1, 3);
      await restore(
        '*filter\n-D felix-x 2\n-D felix-x 2\n-I felix-x 2 -m comment --comment new1\n-I felix-x 3 -m comment --comment new2\n-R felix-x 4 -m comment --comment d2\nCOMMIT\n',
      );
      expect(await saved('felix-x')).to.deep.equal([
        '3 -m comment --comment a',
        '0 -m comment --comment new1',
        '0 -m comment --comment new2',
        '0 -m comment --comment d2',
        '3 -j felix-y',
        '3 -j DROP',
      ]);
      expect(k.ruleCounters(4, 'filter', 'felix-x').map((r) => r.packets)).to.deep.equal([3, 0, 0, 0, 3, 3]);
      // Writing another chain whole leaves these counters alone; the written one starts at 0.
      await restore('*filter\n:felix-y - [0:0]\n-A felix-y -j RETURN\nCOMMIT\n');
      expect(await saved('felix-y')).to.deep.equal(['0 -j RETURN']);
      expect((await saved('felix-x')).at(-1)).to.equal('3 -j DROP');
      // --counters sets a new rule's counters from its [p:b] prefix (ignored without it); -Z zeroes.
      await k.runner.run('iptables-restore', ['--noflush'], '*filter\n[5:500] -I felix-y 1 -j RETURN\nCOMMIT\n');
      await k.runner.run('iptables-restore', ['--noflush', '--counters'], '*filter\n[7:700] -A felix-y -j RETURN\nCOMMIT\n');
      expect(await saved('felix-y')).to.deep.equal(['0 -j RETURN', '0 -j RETURN', '7 -j RETURN']);
      await restore('*filter\n-Z felix-x\nCOMMIT\n');
      expect(k.ruleCounters(4, 'filter', 'felix-x').map((r) => r.packets)).to.deep.equal([0, 0, 0, 0, 0, 0]);
      expect(k.ruleCounters(4, 'filter', 'felix-y').map((r) => r.packets)).to.deep.equal([0, 0, 7]);
      // Declaring the chain flushes it: every counter goes with its rule.
      k.hitRule(4, 'filter', 'felix-x', 6, 2);
      await restore('*filter\n:felix-x - [0:0]\n-A felix-x -j DROP\nCOMMIT\n');
      expect(await saved('felix-x')).to.deep.equal(['0 -j DROP']);
    });

    it('declaring a user chain creates it or flushes it; declaring a built-in one sets its policy and keeps its rules', async () => {
      await restore('*filter\n:felix-a - [0:0]\n-A felix-a -j DROP\n-A felix-a -j ACCEPT\n-A INPUT -j felix-a\nCOMMIT\n');
      await restore('*filter\n:felix-a - [0:0]\n-A felix-a -j RETURN\n:INPUT DROP [0:0]\nCOMMIT\n');
      expect(rules('felix-a')).to.deep.equal(['-j RETURN']);
      expect(rules('INPUT')).to.deep.equal(['-j felix-a']);
      expect(k.policy(4, 'filter', 'INPUT')).to.equal('DROP');
    });

    it('-I inserts at a position (default 1), refuses a position past the end; -D removes the exact rule; -F flushes', async () => {
      await restore('*filter\n-A INPUT -j ACCEPT\n-I INPUT -j DROP\n-I INPUT 3 -j RETURN\n-I INPUT 2 -i lo -j ACCEPT\nCOMMIT\n');
      expect(rules('INPUT')).to.deep.equal(['-j DROP', '-i lo -j ACCEPT', '-j ACCEPT', '-j RETURN']);
      const err = await failure(restore('*filter\n-I INPUT 9 -j DROP\nCOMMIT\n'));
      expect(err.stderr).to.equal('iptables-restore: line 2 failed: Index of insertion too big.');
      await restore('*filter\n-D INPUT -i lo -j ACCEPT\nCOMMIT\n');
      expect(rules('INPUT')).to.deep.equal(['-j DROP', '-j ACCEPT', '-j RETURN']);
      await restore('*filter\n-F INPUT\nCOMMIT\n');
      expect(rules('INPUT')).to.deep.equal([]);
    });

    it('-D of a rule that is not there fails', async () => {
      const err = await failure(restore('*filter\n-D INPUT -j DROP\nCOMMIT\n'));
      expect(err.stderr).to.equal('iptables-restore: line 2 failed: Bad rule (does a matching rule exist in that chain?).');
    });

    it('-A, -I, -D, -F on a missing chain fail', async () => {
      for (const line of ['-A nochain -j DROP', '-I nochain -j DROP', '-D nochain -j DROP', '-F nochain']) {
        const err = await failure(restore(`*filter\n${line}\nCOMMIT\n`));
        expect(err.stderr, line).to.equal('iptables-restore: line 2 failed: No chain/target/match by that name.');
      }
    });

    it('a table block is one transaction: a failure anywhere leaves the table as it was', async () => {
      await restore('*filter\n:felix-keep - [0:0]\n-A felix-keep -j DROP\nCOMMIT\n');
      const before = k.iptablesSave(4);
      const err = await failure(
        restore('*filter\n:felix-new - [0:0]\n:felix-keep - [0:0]\n-A felix-new -j DROP\n-A INPUT -j felix-new\n-A INPUT -j nothing-here\nCOMMIT\n'),
      );
      expect(err.stderr).to.match(/^iptables-restore v1\.8\.9 \(nf_tables\): Chain 'nothing-here' does not exist/);
      expect(k.iptablesSave(4)).to.equal(before);
      expect(rules('felix-keep')).to.deep.equal(['-j DROP']);
    });

    it('tables committed before the failing one stay committed, like the real tool', async () => {
      await failure(restore('*nat\n:felix-n - [0:0]\nCOMMIT\n*filter\n:felix-c - [0:0]\n-A felix-c -j nowhere\nCOMMIT\n'));
      expect(rules('felix-n', 'nat')).to.deep.equal([]);
      expect(rules('felix-c')).to.equal(undefined);
    });

    it('refuses a jump or goto to a missing chain (nf_tables reports it at COMMIT), and a chain used before it is declared', async () => {
      let err = await failure(restore('*filter\n:felix-b - [0:0]\n-A felix-b -j felix-missing\nCOMMIT\n'));
      expect(err.stderr).to.equal(
        "iptables-restore v1.8.9 (nf_tables): Chain 'felix-missing' does not exist\nError occurred at line: 4\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.",
      );
      err = await failure(restore('*filter\n:felix-b - [0:0]\n-A felix-b -g ACCEPT\nCOMMIT\n'));
      expect(err.stderr).to.match(/Chain 'ACCEPT' does not exist/);
      err = await failure(restore('*filter\n:felix-p - [0:0]\n-A felix-p -j felix-later\n:felix-later - [0:0]\nCOMMIT\n'));
      expect(err.stderr).to.match(/Chain 'felix-later' does not exist/);
      expect(rules('felix-b')).to.equal(undefined);
    });

    it('takes built-in and all-uppercase targets, and refuses NAT targets outside nat and rpfilter outside raw', async () => {
      await restore('*filter\n:felix-a - [0:0]\n-A felix-a -j ACCEPT\n-A felix-a -j SOMETARGET\n-A felix-a -j REJECT\nCOMMIT\n');
      expect(rules('felix-a')).to.deep.equal(['-j ACCEPT', '-j SOMETARGET', '-j REJECT --reject-with icmp-port-unreachable']);
      let err = await failure(restore('*filter\n-A felix-a -j DNAT --to-destination 10.0.0.5\nCOMMIT\n'));
      expect(err.stderr).to.equal('iptables-restore v1.8.9 (nf_tables): \nline 2: RULE_APPEND failed (Invalid argument): rule in chain felix-a');
      err = await failure(restore('*filter\n-A felix-a -m rpfilter --invert -j DROP\nCOMMIT\n'));
      expect(err.stderr).to.match(/RULE_APPEND failed \(Invalid argument\)/);
      await restore('*raw\n:felix-RPF - [0:0]\n-A felix-RPF -i tap+ -m rpfilter --invert -j DROP\n-A PREROUTING -j felix-RPF\nCOMMIT\n');
      await restore(
        '*nat\n:felix-PREROUTING - [0:0]\n-A felix-PREROUTING -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.0.5:8775\nCOMMIT\n',
      );
      expect(rules('felix-PREROUTING', 'nat')).to.have.length(1);
    });

    it('-X refuses a chain still referenced after the block, a built-in chain, a missing chain, a chain with rules', async () => {
      await restore('*filter\n:felix-a - [0:0]\n-A INPUT -j felix-a\n:felix-full - [0:0]\n-A felix-full -j DROP\nCOMMIT\n');
      let err = await failure(restore('*filter\n-X felix-a\nCOMMIT\n'));
      expect(err.stderr).to.equal('iptables-restore v1.8.9 (nf_tables): \nline 2: CHAIN_DEL failed (Device or resource busy): chain felix-a');
      err = await failure(restore('*filter\n-X INPUT\nCOMMIT\n'));
      expect(err.stderr).to.equal('iptables-restore v1.8.9 (nf_tables): \nline 2: CHAIN_DEL failed (Device or resource busy): chain INPUT');
      err = await failure(restore('*filter\n-X felix-zz\nCOMMIT\n'));
      expect(err.stderr).to.equal('iptables-restore: line 2 failed: No chain/target/match by that name.');
      err = await failure(restore('*filter\n-X felix-full\nCOMMIT\n'));
      expect(err.stderr).to.match(/CHAIN_DEL failed \(Device or resource busy\): chain felix-full/);
      expect(rules('felix-a')).to.deep.equal([]);
      // Reference removed and chain flushed in the same block: fine.
      await restore('*filter\n-D INPUT -j felix-a\n-X felix-a\n:felix-full - [0:0]\n-X felix-full\nCOMMIT\n');
      expect([...k.chains(4, 'filter').keys()]).to.deep.equal(['INPUT', 'FORWARD', 'OUTPUT']);
    });

    it('-X then a rule naming the deleted chain fails, as with nf_tables', async () => {
      await restore('*filter\n:felix-r - [0:0]\nCOMMIT\n');
      const err = await failure(restore('*filter\n-A INPUT -j felix-r\n-X felix-r\n-D INPUT -j felix-r\nCOMMIT\n'));
      expect(err.stderr).to.match(/Chain 'felix-r' does not exist\nError occurred at line: 5/);
      expect(rules('felix-r')).to.deep.equal([]);
    });

    it('refuses a jump loop reachable from a built-in chain (an unreachable one is accepted)', async () => {
      await restore('*filter\n:felix-l1 - [0:0]\n:felix-l2 - [0:0]\n-A felix-l1 -j felix-l2\n-A felix-l2 -j felix-l1\nCOMMIT\n');
      const err = await failure(restore('*filter\n-A FORWARD -j felix-l1\nCOMMIT\n'));
      expect(err.stderr).to.match(/RULE_APPEND failed \(Too many links\)/);
      expect(rules('FORWARD')).to.deep.equal([]);
    });

    it('every --match-set must name an existing set of the same family', async () => {
      let err = await failure(restore('*filter\n-A INPUT -m set --match-set nosuch src -j DROP\nCOMMIT\n'));
      expect(err.stderr).to.equal(
        "iptables-restore v1.8.9 (nf_tables): Set nosuch doesn't exist.\n\nError occurred at line: 2\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.",
      );
      await ipset('create felix-6 hash:net family inet6\n');
      err = await failure(restore('*filter\n-A INPUT -m set --match-set felix-6 src -j DROP\nCOMMIT\n'));
      expect(err.stderr).to.match(/The protocol family of set felix-6 is IPv6, which is not applicable\./);
      await restore('*filter\n-A INPUT -m set --match-set felix-6 src -j DROP\nCOMMIT\n', 6);
      expect(k.references('felix-6')).to.equal(1);
    });

    it('refuses chain names over 28 characters, a block without COMMIT, a line outside a block', async () => {
      let err = await failure(restore('*filter\n:felix-01234567890123456789012 - [0:0]\nCOMMIT\n'));
      expect(err.stderr).to.match(/chain name `felix-01234567890123456789012' too long \(must be under 29 chars\)/);
      await restore('*filter\n:felix-0123456789012345678901 - [0:0]\nCOMMIT\n');
      err = await failure(restore('*filter\n:felix-e - [0:0]\n'));
      expect(err.stderr).to.equal('iptables-restore: COMMIT expected at line 3');
      err = await failure(restore(':felix-e - [0:0]\nCOMMIT\n'));
      expect(err.stderr).to.equal('iptables-restore: line 1 failed');
    });

    it('refuses a word where an option belongs, and the old `-s ! ADDR` form', async () => {
      let err = await failure(restore('*filter\n:felix-t - [0:0]\n-A felix-t abcdef\nCOMMIT\n'));
      expect(err.stderr).to.equal(
        "Bad argument `abcdef'\nError occurred at line: 3\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.",
      );
      err = await failure(restore('*filter\n-A INPUT -s ! 10.0.0.0/8 -j RETURN\nCOMMIT\n'));
      expect(err.stderr).to.match(/^Bad argument `10\.0\.0\.0\/8'/);
    });

    const canonical: Array<[string, 4 | 6, string, string]> = [
      ['host address gets its prefix', 4, '-s 10.0.0.1 -j RETURN', '-s 10.0.0.1/32 -j RETURN'],
      ['network is masked', 4, '-s 10.0.0.1/24 -j RETURN', '-s 10.0.0.0/24 -j RETURN'],
      ['/0 disappears', 6, '-p tcp -s ::/0 -j RETURN', '-p tcp -j RETURN'],
      [
        'addresses, interfaces, protocol come first',
        4,
        '-p udp -o tapa -d 1.2.3.4 -s 5.6.7.8 -j ACCEPT',
        '-s 5.6.7.8/32 -d 1.2.3.4/32 -o tapa -p udp -j ACCEPT',
      ],
      ['protocol numbers become names', 4, '-p 47 -s 10.0.0.0/8 -j RETURN', '-s 10.0.0.0/8 -p gre -j RETURN'],
      [
        'icmpv6 is ipv6-icmp',
        6,
        '-p icmpv6 --icmpv6-type 135 -m hl --hl-eq 255 -j RETURN',
        '-p ipv6-icmp -m icmp6 --icmpv6-type 135 -m hl --hl-eq 255 -j RETURN',
      ],
      ['implicit -m tcp is printed', 4, '-p tcp --dport 80 -j RETURN', '-p tcp -m tcp --dport 80 -j RETURN'],
      ['icmp type names are numbers', 4, '-p icmp --icmp-type echo-request -j RETURN', '-p icmp -m icmp --icmp-type 8 -j RETURN'],
      [
        'MARK --set-mark is --set-xmark',
        4,
        '-s 10.0.0.1 -m mac --mac-source 02:AB:00:00:00:01 -j MARK --set-mark 1',
        '-s 10.0.0.1/32 -m mac --mac-source 02:ab:00:00:00:01 -j MARK --set-xmark 0x1/0xffffffff',
      ],
      ['mark in hex', 4, '-m mark ! --mark 1 -j DROP', '-m mark ! --mark 0x1 -j DROP'],
      ['conntrack states in kernel order', 4, '-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT', '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT'],
      ['REJECT gets its default', 6, '-j REJECT', '-j REJECT --reject-with icmp6-port-unreachable'],
      ['already canonical stays', 4, '-i tap+ -m conntrack --ctstate INVALID -j DROP', '-i tap+ -m conntrack --ctstate INVALID -j DROP'],
    ];
    for (const [name, family, written, saved] of canonical) {
      it(`stores rules as iptables-save prints them: ${name}`, async () => {
        await restore(`*filter\n:felix-t - [0:0]\n-A felix-t ${written}\nCOMMIT\n`, family);
        expect(rules('felix-t', 'filter', family)).to.deep.equal([saved]);
        // -D matches the rule however it is written.
        await restore(`*filter\n-D felix-t ${written}\nCOMMIT\n`, family);
        expect(rules('felix-t', 'filter', family)).to.deep.equal([]);
      });
    }

    it('applies what renderIptablesRestore writes, and removes it again', async () => {
      const write = [
        { name: 'felix-to-a', rules: ['-j DROP'] },
        { name: 'felix-TO-ENDPOINT', rules: ['-o tapa -g felix-to-a', '-j DROP'] },
      ];
      await restore(
        renderIptablesRestore([
          { table: 'filter', write, edit: [], remove: [], insertJumps: [{ table: 'filter', from: 'FORWARD', rule: '-j felix-TO-ENDPOINT' }], deleteJumps: [] },
        ]),
      );
      const state = parseIptablesSave(await k.runner.run('iptables-save', []));
      expect(state.get('filter')!.get('felix-TO-ENDPOINT')).to.deep.equal(['-o tapa -g felix-to-a', '-j DROP']);
      expect(state.get('filter')!.get('FORWARD')).to.deep.equal(['-j felix-TO-ENDPOINT']);
      await restore(
        renderIptablesRestore([
          {
            table: 'filter',
            write: [],
            edit: [{ op: 'replace', chain: 'felix-to-a', index: 1, rule: '-j RETURN' }],
            remove: [],
            insertJumps: [],
            deleteJumps: [],
          },
        ]),
      );
      expect(k.chains(4, 'filter').get('felix-to-a')).to.deep.equal(['-j RETURN']);
      await restore(
        renderIptablesRestore([
          {
            table: 'filter',
            write: [],
            edit: [],
            remove: ['felix-TO-ENDPOINT', 'felix-to-a'],
            insertJumps: [],
            deleteJumps: [{ table: 'filter', from: 'FORWARD', rule: '-j felix-TO-ENDPOINT' }],
          },
        ]),
      );
      expect([...k.chains(4, 'filter').keys()]).to.deep.equal(['INPUT', 'FORWARD', 'OUTPUT']);
    });
  });

  describe('ipset', () => {
    it('creates and fills sets; list -t, list -n, list NAME; save reads back through parseIpsetSave', async () => {
      await ipset(
        'create felix-a hash:net family inet maxelem 1048576\nadd felix-a 10.0.0.0/8\ncreate felix-p hash:net,port family inet6 maxelem 1048576\nadd felix-p 2001:db8::/32,tcp:80\n',
      );
      const terse = await k.runner.run('ipset', ['list', '-t']);
      expect(terse).to.equal(
        'Name: felix-a\nType: hash:net\nRevision: 7\nHeader: family inet hashsize 1024 maxelem 1048576 bucketsize 12 initval 0x00000000\n' +
          'Size in memory: 0\nReferences: 0\nNumber of entries: 1\n\n' +
          'Name: felix-p\nType: hash:net,port\nRevision: 8\nHeader: family inet6 hashsize 1024 maxelem 1048576 bucketsize 12 initval 0x00000000\n' +
          'Size in memory: 0\nReferences: 0\nNumber of entries: 1\n',
      );
      expect(await k.runner.run('ipset', ['list', '-n'])).to.equal('felix-a\nfelix-p\n');
      expect(await k.runner.run('ipset', ['list', 'felix-a'])).to.match(/Number of entries: 1\nMembers:\n10\.0\.0\.0\/8\n$/);
      expect(await k.runner.run('ipset', ['save'])).to.equal(
        'create felix-a hash:net family inet hashsize 1024 maxelem 1048576 bucketsize 12 initval 0x00000000\nadd felix-a 10.0.0.0/8\n' +
          'create felix-p hash:net,port family inet6 hashsize 1024 maxelem 1048576 bucketsize 12 initval 0x00000000\nadd felix-p 2001:db8::/32,tcp:80\n',
      );
      const err = await failure(k.runner.run('ipset', ['list', 'nosuch']));
      expect(err.stderr).to.equal('ipset v7.17: The set with the given name does not exist');
    });

    it('restore is not transactional: the first bad line stops it, lines before it stay applied', async () => {
      const err = await failure(ipset('create felix-a hash:net family inet\nadd felix-a 10.0.0.0/8\nflush nosuch\ncreate felix-b hash:net family inet\n'));
      expect(err.stderr).to.equal('ipset v7.17: Error in line 3: The set with the given name does not exist');
      expect([...k.sets().keys()]).to.deep.equal(['felix-a']);
      expect(k.sets().get('felix-a')!.members).to.deep.equal(new Set(['10.0.0.0/8']));
    });

    it('a line it cannot read also drops the add lines still batched before it (a kernel error does not)', async () => {
      let err = await failure(ipset('create a hash:net\ncreate b hash:net\nadd a 1.1.1.1\nadd b 2.2.2.2\nadd b 2.2.2.3\nadd nosuch 3.3.3.3\n'));
      expect(err.stderr).to.equal('ipset v7.17: Error in line 6: The set with the given name does not exist');
      expect([...k.sets().get('a')!.members]).to.deep.equal(['1.1.1.1']);
      expect([...k.sets().get('b')!.members]).to.deep.equal([]);
      err = await failure(ipset('add b 1.1.1.1\nadd b bogus\n'));
      expect(err.stderr).to.equal('ipset v7.17: Error in line 2: Syntax error: cannot parse bogus: resolving to IPv4 address failed');
      expect([...k.sets().get('b')!.members]).to.deep.equal([]);
      err = await failure(ipset('add b 1.1.1.1\nadd b 1.1.1.1\nadd b 1.1.1.3\n'));
      expect(err.stderr).to.equal("ipset v7.17: Error in line 2: Element cannot be added to the set: it's already added");
      expect([...k.sets().get('b')!.members]).to.deep.equal(['1.1.1.1']);
    });

    it('create of an existing set fails; with -exist only if type, maxelem, timeout and extensions match (family is not compared, as in the kernel)', async () => {
      await ipset('create felix-a hash:net family inet maxelem 1048576\n');
      let err = await failure(ipset('create felix-a hash:net family inet maxelem 1048576\n'));
      expect(err.stderr).to.equal('ipset v7.17: Error in line 1: Set cannot be created: set with the same name already exists');
      await ipset('create felix-a hash:net family inet maxelem 1048576 hashsize 4096\n', true);
      err = await failure(ipset('create felix-a hash:net family inet\n', true));
      expect(err.stderr).to.match(/set with the same name already exists/);
      err = await failure(ipset('create felix-a hash:net,port family inet maxelem 1048576\n', true));
      expect(err.stderr).to.match(/set with the same name already exists/);
      await ipset('create felix-a hash:net family inet6 maxelem 1048576\n', true);
      expect(k.sets().get('felix-a')!.family).to.equal(4);
    });

    it('add of a member present and del of one absent fail without -exist only', async () => {
      await ipset('create felix-a hash:net\nadd felix-a 10.0.0.0/8\n');
      let err = await failure(ipset('add felix-a 10.0.0.0/8\n'));
      expect(err.stderr).to.equal("ipset v7.17: Error in line 1: Element cannot be added to the set: it's already added");
      err = await failure(ipset('del felix-a 9.9.9.9\n'));
      expect(err.stderr).to.equal("ipset v7.17: Error in line 1: Element cannot be deleted from the set: it's not added");
      await ipset('add felix-a 10.0.0.0/8\ndel felix-a 9.9.9.9\ndestroy nosuch\n', true);
    });

    it('add, del, flush, rename, swap, destroy of a missing set fail', async () => {
      await ipset('create felix-a hash:net\n');
      for (const line of ['add nosuch 1.1.1.1', 'del nosuch 1.1.1.1', 'flush nosuch', 'rename nosuch x', 'swap nosuch felix-a', 'destroy nosuch']) {
        const err = await failure(ipset(`${line}\n`));
        expect(err.stderr, line).to.equal('ipset v7.17: Error in line 1: The set with the given name does not exist');
      }
      const err = await failure(ipset('swap felix-a nosuch\n'));
      expect(err.stderr).to.equal('ipset v7.17: Error in line 1: Sets cannot be swapped: the second set does not exist');
    });

    it('rename: not to an existing name, not while referenced', async () => {
      await ipset('create felix-tmp hash:net\nadd felix-tmp 10.0.0.0/8\ncreate felix-b hash:net\n');
      let err = await failure(ipset('rename felix-tmp felix-b\n'));
      expect(err.stderr).to.equal('ipset v7.17: Error in line 1: Set cannot be renamed: a set with the new name already exists');
      await ipset('rename felix-tmp felix-a\n');
      expect([...k.sets().keys()]).to.deep.equal(['felix-a', 'felix-b']);
      expect([...k.sets().get('felix-a')!.members]).to.deep.equal(['10.0.0.0/8']);
      await restore('*filter\n-A INPUT -m set --match-set felix-a src -j DROP\nCOMMIT\n');
      err = await failure(ipset('rename felix-a felix-c\n'));
      expect(err.stderr).to.equal('ipset v7.17: Error in line 1: Set cannot be renamed: it is in use by another system');
    });

    it('swap exchanges contents under the names (rules keep their name), only between sets of one type and family', async () => {
      await ipset('create felix-a hash:net\nadd felix-a 10.0.0.0/8\ncreate felix-tmp hash:net\nadd felix-tmp 192.168.0.0/16\n');
      await restore('*filter\n-A INPUT -m set --match-set felix-a src -j DROP\nCOMMIT\n');
      await ipset('swap felix-tmp felix-a\n');
      expect([...k.sets().get('felix-a')!.members]).to.deep.equal(['192.168.0.0/16']);
      expect([...k.sets().get('felix-tmp')!.members]).to.deep.equal(['10.0.0.0/8']);
      expect(k.sets().get('felix-a')!.references).to.equal(1);
      expect(await k.runner.run('ipset', ['list', '-n'])).to.equal('felix-a\nfelix-tmp\n');
      await ipset('create felix-p hash:net,port\ncreate felix-6 hash:net family inet6\n');
      for (const other of ['felix-p', 'felix-6']) {
        const err = await failure(ipset(`swap felix-tmp ${other}\n`));
        expect(err.stderr, other).to.equal('ipset v7.17: Error in line 1: The sets cannot be swapped: their type does not match');
      }
    });

    it('destroy of a set an iptables rule references fails; once the rule is gone it works', async () => {
      await ipset('create felix-a hash:net\n');
      await restore('*filter\n:felix-x - [0:0]\n-A felix-x -m set --match-set felix-a src -j RETURN\nCOMMIT\n', 4);
      expect(await k.runner.run('ipset', ['list', '-t', 'felix-a'])).to.include('References: 1\n');
      let err = await failure(ipset('destroy felix-a\n'));
      expect(err.stderr).to.equal('ipset v7.17: Error in line 1: Set cannot be destroyed: it is in use by a kernel component');
      err = await failure(k.runner.run('ipset', ['destroy', 'felix-a']));
      expect(err.stderr).to.equal('ipset v7.17: Set cannot be destroyed: it is in use by a kernel component');
      await restore('*filter\n:felix-x - [0:0]\n-X felix-x\nCOMMIT\n');
      await ipset('destroy felix-a\n');
      expect(k.sets().size).to.equal(0);
    });

    it('a destroyed set frees its place in the listing order for the next one', async () => {
      await ipset('create s1 hash:net\ncreate s2 hash:net\ncreate s3 hash:net\ndestroy s2\ncreate n1 hash:net\n');
      expect(await k.runner.run('ipset', ['list', '-n'])).to.equal('s1\nn1\ns3\n');
    });

    it('refuses set names over 31 characters, unknown types, and entries past maxelem', async () => {
      let err = await failure(ipset('create felix-01234567890123456789012345 hash:net\n'));
      expect(err.stderr).to.equal("ipset v7.17: Error in line 1: Syntax error: setname 'felix-01234567890123456789012345' is longer than 31 characters");
      err = await failure(ipset('create felix-b hash:bogus\n'));
      expect(err.stderr).to.equal("ipset v7.17: Error in line 1: Syntax error: typename 'hash:bogus' is unknown");
      err = await failure(ipset('create m hash:net maxelem 2\nadd m 1.0.0.0/8\nadd m 2.0.0.0/8\nadd m 3.0.0.0/8\n'));
      expect(err.stderr).to.equal('ipset v7.17: Error in line 4: Hash is full, cannot add more elements');
      expect(k.sets().get('m')!.members.size).to.equal(2);
    });

    const entries: Array<[string, string, 4 | 6, string, string[] | RegExp]> = [
      ['network masked', 'hash:net', 4, '10.0.0.1/24', ['10.0.0.0/24']],
      ['host prefix dropped', 'hash:net', 4, '10.0.0.9/32', ['10.0.0.9']],
      ['IPv6 compressed', 'hash:net', 6, '2001:DB8:0:0::1/64', ['2001:db8::/64']],
      ['/0 refused', 'hash:net', 4, '0.0.0.0/0', /The value of the CIDR parameter of the IP address is invalid/],
      ['wrong family refused', 'hash:net', 4, '2001:db8::1', /resolving to IPv4 address failed/],
      ['port range expanded', 'hash:net,port', 4, '10.0.0.0/8,udp:1-3', ['10.0.0.0/8,udp:1', '10.0.0.0/8,udp:2', '10.0.0.0/8,udp:3']],
      ['bare port is tcp', 'hash:net,port', 4, '10.0.0.0/8,80', ['10.0.0.0/8,tcp:80']],
      ['icmp type/code by name', 'hash:net,port', 4, '10.0.0.0/8,icmp:8/0', ['10.0.0.0/8,icmp:echo-request']],
      ['icmpv6 named ipv6-icmp', 'hash:net,port', 6, '2001:db8::/32,icmpv6:128/0', ['2001:db8::/32,ipv6-icmp:echo-request']],
      ['unnamed icmp stays numeric', 'hash:net,port', 4, '10.0.0.0/8,icmp:145/4', ['10.0.0.0/8,icmp:145/4']],
      ['port needed', 'hash:net,port', 4, '10.5.0.0/16', /Second element is missing from 10\.5\.0\.0\/16\./],
    ];
    for (const [name, type, family, element, expected] of entries) {
      it(`stores entries as ipset list prints them: ${name}`, async () => {
        await ipset(`create s ${type} family ${family === 4 ? 'inet' : 'inet6'}\n`);
        if (expected instanceof RegExp) {
          expect((await failure(ipset(`add s ${element}\n`))).stderr).to.match(expected);
        } else {
          await ipset(`add s ${element}\n`);
          expect([...k.sets().get('s')!.members]).to.deep.equal(expected);
        }
      });
    }

    it('applies what renderIpsetRestore writes: fill a temporary, rename it; swap over an untrusted one; destroy', async () => {
      const set = { name: 'felix-4a-1', type: 'hash:net' as const, family: 4 as const, members: ['10.0.0.0/8'] };
      await ipset(renderIpsetRestore([{ set, replace: false }]).text, true);
      await ipset(renderIpsetRestore([{ set: { ...set, members: ['10.1.0.0/16', '10.2.0.0/16'] }, replace: true }]).text, true);
      expect([...k.sets().keys()]).to.deep.equal(['felix-4a-1']);
      expect(k.sets().get('felix-4a-1')!.members).to.deep.equal(new Set(['10.1.0.0/16', '10.2.0.0/16']));
      expect([...parseIpsetSave(await k.runner.run('ipset', ['save']))]).to.deep.equal([
        ['felix-4a-1', { type: 'hash:net', family: 4, members: ['10.1.0.0/16', '10.2.0.0/16'] }],
      ]);
      await ipset(renderIpsetRestore([], ['felix-4a-1']).text, true);
      expect(k.sets().size).to.equal(0);
    });
  });

  describe('conntrack', () => {
    it('-D deletes the flows of an address as source or destination', async () => {
      k.addFlow('10.0.0.1', '10.0.0.2');
      k.addFlow('10.0.0.2', '10.0.0.1');
      k.addFlow('10.0.0.3', '10.0.0.4');
      await k.runner.run('conntrack', ['-D', '-s', '10.0.0.1']);
      expect(k.flows()).to.deep.equal([
        { src: '10.0.0.2', dst: '10.0.0.1' },
        { src: '10.0.0.3', dst: '10.0.0.4' },
      ]);
      await k.runner.run('conntrack', ['-D', '-d', '10.0.0.1']);
      expect(k.flows()).to.deep.equal([{ src: '10.0.0.3', dst: '10.0.0.4' }]);
    });

    it('deleting nothing exits 1 with "0 flow entries have been deleted." (callers must take that as success)', async () => {
      const err = await failure(k.runner.run('conntrack', ['-D', '-s', '10.9.9.9']));
      expect(err.stderr).to.equal('conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.');
    });

    it('-f ipv6 matches IPv6 flows only, and refuses an IPv4 address', async () => {
      k.addFlow('2001:DB8::1', '2001:db8::2');
      k.addFlow('10.0.0.1', '10.0.0.2');
      await k.runner.run('conntrack', ['-D', '-d', '2001:db8::2', '-f', 'ipv6']);
      expect(k.flows()).to.deep.equal([{ src: '10.0.0.1', dst: '10.0.0.2' }]);
      const err = await failure(k.runner.run('conntrack', ['-D', '-d', '10.0.0.2', '-f', 'ipv6']));
      expect(err.stderr).to.match(/^conntrack v1\.4\.7 \(conntrack-tools\): mismatched address family/);
    });

    it('--load-file - runs one -D per line; a line deleting nothing is no failure; a listing is refused', async () => {
      k.addFlow('10.0.0.1', '10.0.0.2');
      k.addFlow('2001:db8::1', '2001:db8::2');
      k.addFlow('10.0.0.3', '10.0.0.4');
      await k.runner.run('conntrack', ['--load-file', '-'], '-D -f ipv4 -s 10.9.9.9\n-D -f ipv4 -d 10.0.0.2\n-D -f ipv6 -s 2001:db8::1\n');
      expect(k.flows()).to.deep.equal([{ src: '10.0.0.3', dst: '10.0.0.4' }]);
      const err = await failure(k.runner.run('conntrack', ['-R', '-'], '-L\n'));
      expect(err.stderr).to.match(/Cannot use command `-L' with --load-file/);
    });
  });

  describe('netlink', () => {
    it('delivers link events asynchronously, in order, to every listener of every open socket', async () => {
      const seen: LinkEvent[] = [];
      const other: LinkEvent[] = [];
      k.netlink.onLinkEvent((e) => seen.push(e));
      const second = k.newNetlink();
      second.onLinkEvent((e) => other.push(e));
      const tap = k.addLink('tapa');
      k.setLinkUp('tapa', false);
      k.setLinkUp('tapa', false); // no change, no event
      expect(seen).to.deep.equal([]);
      await k.settle();
      expect(seen).to.deep.equal([
        { kind: 'up-or-changed', link: { index: tap.index, name: 'tapa', up: true } },
        { kind: 'up-or-changed', link: { index: tap.index, name: 'tapa', up: false } },
      ]);
      expect(other).to.deep.equal(seen);
      second.close();
      k.removeLink('tapa');
      await k.settle();
      expect(seen.at(-1)).to.deep.equal({ kind: 'removed', index: tap.index, name: 'tapa' });
      expect(other).to.have.length(2);
    });

    it('an up link being removed first reports going down, as the kernel does', async () => {
      const seen: LinkEvent[] = [];
      k.netlink.onLinkEvent((e) => seen.push(e));
      const tap = k.addLink('tapa');
      k.removeLink('tapa');
      await k.settle();
      expect(seen.map((e) => (e.kind === 'removed' ? 'removed' : e.link.up ? 'up' : 'down'))).to.deep.equal(['up', 'down', 'removed']);
      expect(await k.netlink.links()).to.deep.equal([{ index: 1, name: 'lo', up: true }]);
      expect(tap.index).to.equal(2);
    });

    it('setRoute: creates or replaces (a route to the same destination moves links); ENODEV for a missing link, ENETDOWN for a down link', async () => {
      const tap = k.addLink('tapa');
      const other = k.addLink('tapc');
      await k.netlink.setRoute({ family: 4, dst: '10.0.0.1', ifindex: tap.index });
      await k.netlink.setRoute({ family: 6, dst: '2001:DB8::1', ifindex: tap.index });
      expect(await k.netlink.hostRoutes()).to.deep.equal([
        { family: 4, dst: '10.0.0.1', ifindex: tap.index },
        { family: 6, dst: '2001:db8::1', ifindex: tap.index },
      ]);
      await k.netlink.setRoute({ family: 4, dst: '10.0.0.1', ifindex: other.index });
      expect(await k.netlink.hostRoutes()).to.deep.equal([
        { family: 4, dst: '10.0.0.1', ifindex: other.index },
        { family: 6, dst: '2001:db8::1', ifindex: tap.index },
      ]);
      expect(await k.netlink.link('tapc')).to.deep.equal(other);
      expect(await k.netlink.link('nosuch')).to.equal(null);
      expect((await rejection(k.netlink.setRoute({ family: 4, dst: '10.0.0.2', ifindex: 99 }))).code).to.equal('ENODEV');
      k.addLink('tapb', { up: false });
      expect((await rejection(k.netlink.setRoute({ family: 4, dst: '10.0.0.3', ifindex: k.link('tapb')!.index }))).code).to.equal('ENETDOWN');
    });

    it('deleteRoute: ESRCH for a missing route or one through another link', async () => {
      const a = k.addLink('tapa');
      const b = k.addLink('tapb');
      await k.netlink.setRoute({ family: 4, dst: '10.0.0.1', ifindex: a.index });
      expect((await rejection(k.netlink.deleteRoute({ family: 4, dst: '10.0.0.9', ifindex: a.index }))).code).to.equal('ESRCH');
      expect((await rejection(k.netlink.deleteRoute({ family: 4, dst: '10.0.0.1', ifindex: b.index }))).code).to.equal('ESRCH');
      await k.netlink.deleteRoute({ family: 4, dst: '10.0.0.1', ifindex: a.index });
      expect(k.routes()).to.deep.equal([]);
    });

    it('setNeighbour creates or replaces; deleteNeighbour of a missing one is ENOENT', async () => {
      const a = k.addLink('tapa');
      await k.netlink.setNeighbour({ dst: '10.0.0.1', ifindex: a.index, mac: 'EE:EE:EE:EE:EE:01' });
      await k.netlink.setNeighbour({ dst: '10.0.0.1', ifindex: a.index, mac: 'ee:ee:ee:ee:ee:02' });
      expect(await k.netlink.neighbours()).to.deep.equal([{ dst: '10.0.0.1', ifindex: a.index, mac: 'ee:ee:ee:ee:ee:02' }]);
      await k.netlink.deleteNeighbour({ dst: '10.0.0.1', ifindex: a.index, mac: '' });
      expect((await rejection(k.netlink.deleteNeighbour({ dst: '10.0.0.1', ifindex: a.index, mac: '' }))).code).to.equal('ENOENT');
    });

    it('removing a link, or setting it down, drops its routes and neighbours (permanent ones too); nothing comes back on up', async () => {
      const a = k.addLink('tapa');
      const b = k.addLink('tapb');
      for (const l of [a, b]) {
        await k.netlink.setRoute({ family: 4, dst: `10.0.0.${l.index}`, ifindex: l.index });
        await k.netlink.setNeighbour({ dst: `10.0.0.${l.index}`, ifindex: l.index, mac: 'ee:ee:ee:ee:ee:01' });
      }
      k.removeLink('tapa');
      expect(k.routes().map((r) => r.ifindex)).to.deep.equal([b.index]);
      expect(k.neighbours().map((n) => n.ifindex)).to.deep.equal([b.index]);
      k.setLinkUp('tapb', false);
      k.setLinkUp('tapb', true);
      expect(k.routes()).to.deep.equal([]);
      expect(k.neighbours()).to.deep.equal([]);
    });

    it('a closed socket refuses calls; the others keep working', async () => {
      const second = k.newNetlink();
      second.close();
      expect((await rejection(second.links())).code).to.equal('EBADF');
      expect(await k.netlink.links()).to.have.length(1);
    });
  });

  describe('sysctl', () => {
    it('global keys always exist; per-interface keys only while the link does, and go with it', async () => {
      await k.sysctl.ensure('net/ipv4/ip_forward', '1');
      await k.sysctl.ensure('net/ipv4/conf/all/forwarding', '1');
      const missing = await rejection(k.sysctl.ensure('net/ipv4/conf/tapa/proxy_arp', '1'));
      expect(missing.code).to.equal('ENOENT');
      expect(missing.message).to.equal("ENOENT: no such file or directory, open '/proc/sys/net/ipv4/conf/tapa/proxy_arp'");
      k.addLink('tapa');
      await k.sysctl.ensure('net/ipv4/conf/tapa/proxy_arp', '1');
      await k.sysctl.ensure('net/ipv4/neigh/tapa/proxy_delay', '0');
      await k.sysctl.ensure('net/ipv4/conf/tapa/proxy_arp', '1');
      expect(k.sysctl.writes).to.equal(4);
      expect(k.count('sysctl.ensure')).to.equal(6);
      k.removeLink('tapa');
      expect([...k.sysctl.values.keys()]).to.deep.equal(['net/ipv4/ip_forward', 'net/ipv4/conf/all/forwarding']);
      expect((await rejection(k.sysctl.ensure('net/ipv4/neigh/tapa/proxy_delay', '0'))).code).to.equal('ENOENT');
    });

    it('reads a value written, Linux’s default for one never written, null for a key that does not exist', async () => {
      expect(await k.sysctl.read('net/ipv4/neigh/default/gc_thresh3')).to.equal('1024');
      await k.sysctl.ensure('net/ipv4/neigh/default/gc_thresh3', '4096');
      expect(await k.sysctl.read('net/ipv4/neigh/default/gc_thresh3')).to.equal('4096');
      expect(await k.sysctl.read('net/ipv4/conf/tapa/proxy_arp')).to.equal(null);
      expect(k.count('sysctl.read')).to.equal(3);
    });

    it('nf_conntrack_count is the flows, read-only; without nf_conntrack net/netfilter does not exist', async () => {
      k.addFlow('10.0.0.1', '10.0.0.2');
      k.addFlow('fd00::1', 'fd00::2');
      expect(await k.sysctl.read('net/netfilter/nf_conntrack_count')).to.equal('2');
      expect((await rejection(k.sysctl.ensure('net/netfilter/nf_conntrack_count', '0'))).code).to.equal('EACCES');
      await k.sysctl.ensure('net/netfilter/nf_conntrack_max', '262144');
      expect(await k.sysctl.read('net/netfilter/nf_conntrack_max')).to.equal('262144');
      const unloaded = new FakeKernel({ conntrack: false });
      expect(await unloaded.sysctl.read('net/netfilter/nf_conntrack_max')).to.equal(null);
      expect((await rejection(unloaded.sysctl.ensure('net/netfilter/nf_conntrack_max', '1'))).code).to.equal('ENOENT');
    });

    it('a child namespace has no neigh/default and no /proc/net/stat neighbour files; its nf_conntrack_max is read-only', async () => {
      const child = new FakeKernel({ namespace: 'child' });
      expect(await child.sysctl.read('net/ipv4/neigh/default/gc_thresh3')).to.equal(null);
      expect(await child.sysctl.read('net/ipv6/conf/default/forwarding')).to.equal('0');
      expect((await rejection(child.sysctl.ensure('net/ipv6/neigh/default/gc_thresh3', '2048'))).code).to.equal('ENOENT');
      const denied = await rejection(child.sysctl.ensure('net/netfilter/nf_conntrack_max', '262144'));
      expect(denied.code).to.equal('EACCES');
      expect(denied.message).to.equal("EACCES: permission denied, open '/proc/sys/net/netfilter/nf_conntrack_max'");
      expect(await child.sysctl.read('net/netfilter/nf_conntrack_max')).to.equal('65536');
      expect(child.readProcNetStat('arp_cache')).to.equal(null);
      expect(child.readProcNetStat('ndisc_cache')).to.equal(null);
      expect(k.readProcNetStat('arp_cache')).to.match(/^entries {2}allocs /);
    });
  });

  describe('neighbour counts', () => {
    it('a dump counts this namespace’s entries, permanent and learned; the root’s /proc/net/stat counts other namespaces’ too', async () => {
      const a = k.addLink('tapa');
      await k.netlink.setNeighbour({ dst: '10.0.0.1', ifindex: a.index, mac: 'ee:ee:ee:ee:ee:01' });
      await k.netlink.setNeighbour({ dst: 'fd00::1', ifindex: a.index, mac: 'ee:ee:ee:ee:ee:01' });
      k.learnNeighbours(4, 5);
      k.neighboursElsewhere(4, 100);
      expect(await k.netlink.neighbourCounts()).to.deep.equal({ 4: 6, 6: 1 });
      const entries = (name: string) => parseInt(k.readProcNetStat(name)!.split('\n')[1]!.split(' ')[0]!, 16);
      expect(entries('arp_cache')).to.equal(106);
      expect(entries('ndisc_cache')).to.equal(1);
      k.removeLink('tapa');
      expect(await k.netlink.neighbourCounts()).to.deep.equal({ 4: 5, 6: 0 });
    });
  });

  describe('test hooks', () => {
    it('failNext fails the next matching call once, before anything is applied', async () => {
      k.failNext((cmd, _args, input) => cmd === 'iptables-restore' && (input ?? '').includes('felix-b'), 'iptables-restore: line 2 failed');
      await restore('*filter\n:felix-a - [0:0]\nCOMMIT\n');
      const err = await failure(restore('*filter\n:felix-b - [0:0]\nCOMMIT\n'));
      expect(err).to.be.instanceOf(CommandError);
      expect(err.command).to.equal('iptables-restore --noflush');
      expect(err.stderr).to.equal('iptables-restore: line 2 failed');
      expect(rules('felix-b')).to.equal(undefined);
      await restore('*filter\n:felix-b - [0:0]\nCOMMIT\n');
      expect(rules('felix-b')).to.deep.equal([]);
    });

    it('failNext reaches netlink and sysctl operations too, with an errno code', async () => {
      const a = k.addLink('tapa');
      k.failNext((cmd, args) => cmd === 'netlink' && args[0] === 'setRoute', 'EBUSY');
      k.failNext((cmd, args) => cmd === 'sysctl' && args[1] === 'net/ipv4/ip_forward');
      expect((await rejection(k.netlink.setRoute({ family: 4, dst: '10.0.0.1', ifindex: a.index }))).code).to.equal('EBUSY');
      expect(k.routes()).to.deep.equal([]);
      expect((await rejection(k.sysctl.ensure('net/ipv4/ip_forward', '1'))).code).to.equal('EIO');
      expect(k.sysctl.values.size).to.equal(0);
      await k.netlink.setRoute({ family: 4, dst: '10.0.0.1', ifindex: a.index });
    });

    it('records calls and counts them by tool; resetCalls forgets them', async () => {
      await ipset('create felix-a hash:net\n');
      await k.runner.run('iptables-save', []);
      await k.runner.run('ip6tables-save', []);
      await k.netlink.links();
      expect(k.calls).to.deep.equal([
        { cmd: 'ipset', args: ['restore'], input: 'create felix-a hash:net\n' },
        { cmd: 'iptables-save', args: [] },
        { cmd: 'ip6tables-save', args: [] },
      ]);
      expect(k.counts).to.deep.equal({ ipset: 1, 'iptables-save': 1, 'ip6tables-save': 1, 'netlink.links': 1 });
      k.resetCalls();
      expect(k.calls).to.deep.equal([]);
      expect(k.count('ipset')).to.equal(0);
    });

    it('refuses tools it does not model, by name', async () => {
      const err = await failure(k.runner.run('iptables', ['-A', 'INPUT', '-j', 'DROP']));
      expect(err.stderr).to.match(/^fake kernel: iptables is not modelled/);
    });

    it('checkInvariants throws on a state the kernel could not be in', () => {
      type Internals = { iptables: Record<4 | 6, Record<string, Map<string, { rules: object[] }>>> };
      const internals = k as unknown as Internals;
      internals.iptables[4]
        ['filter']!.get('INPUT')!
        .rules.push({ text: '-j nowhere', target: { kind: 'jump', name: 'nowhere' }, sets: ['ghost'], matches: [], invalid: null });
      expect(() => k.checkInvariants()).to.throw(
        /INPUT: '-j nowhere' targets missing chain nowhere[\s\S]*uses missing set ghost[\s\S]*set ghost has 0 references recorded, 1 in rules/,
      );
      internals.iptables[4]['filter']!.get('INPUT')!.rules.length = 0;
    });
  });
});
