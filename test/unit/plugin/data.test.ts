import { expect } from 'chai';
import {
  DataMerger,
  EndpointSectionValues,
  FelixSectionValues,
  canonicalEndpointIp,
  endpointKey,
  formatEndpointSection,
  formatFelixSection,
  parseDataFile,
  readEndpointSection,
  shortHost,
} from '../../../src/plugin/data.js';

describe('plugin data parsing', () => {
  const good = `[felix instance-1]\nip=10.240.0.2\nhost=instance-1.example.com\n\n[endpoint 192_168_1_1]\nid=abc123\nip=192.168.1.1, fd00::1\nMAC=EE:EE:EE:EE:EE:01\nhost=Instance-1\n`;

  it('parses felix and endpoint sections (keys case-insensitive, hosts shortened)', () => {
    const p = parseDataFile(good, 'data.txt');
    expect(p.syntaxErrors).to.deep.equal([]);
    expect(p.badSections.size).to.equal(0);
    expect(p.entries.get('felix instance-1')).to.deep.equal({
      kind: 'felix',
      value: { host: 'instance-1', ip: '10.240.0.2', ip6: null, port: null, source: 'data.txt:1' },
    });
    expect(p.entries.get('endpoint 192_168_1_1')).to.deep.equal({
      kind: 'endpoint',
      value: { id: 'abc123', addrs: ['192.168.1.1', 'fd00::1'], mac: 'ee:ee:ee:ee:ee:01', host: 'instance-1', groups: ['default'], source: 'data.txt:5' },
    });
  });

  it("reads a host's IPv6 fabric address (ip6=, for BIRD's IPv6 sessions) in canonical form", () => {
    const p = parseDataFile('[felix instance-1]\nip=198.18.0.1\nip6=FD00:198:18:0::1\n', 'data.txt');
    expect(p.badSections.size).to.equal(0);
    expect(p.entries.get('felix instance-1')!.value).to.deep.include({ ip: '198.18.0.1', ip6: 'fd00:198:18::1' });
  });

  // Messages name file, line (of the key at fault), section type and key; never the value (`VALUE` must not appear).
  const bad: Array<[string, string, string]> = [
    [
      'bad ip',
      '[endpoint x]\nid=a\nip=192.168.1.VALUE\nmac=ee:ee:ee:ee:ee:01\nhost=h\n',
      'data.txt:3: [endpoint] ip: not an IP address (or a comma-separated list of them)',
    ],
    [
      'bad second ip',
      '[endpoint x]\nid=a\nip=192.168.1.3, VALUE\nmac=ee:ee:ee:ee:ee:01\nhost=h\n',
      'data.txt:3: [endpoint] ip: not an IP address (or a comma-separated list of them)',
    ],
    ['bad mac', '[endpoint x]\nid=a\nip=192.168.1.3\nmac=ee:VALUE\nhost=h\n', 'data.txt:4: [endpoint] mac: not a MAC address'],
    ['missing host', '[endpoint x]\nid=a\nip=192.168.1.3\nmac=ee:ee:ee:ee:ee:01\n', "data.txt:1: [endpoint] missing 'host'"],
    ['missing id', '[endpoint x]\nip=192.168.1.3\nmac=ee:ee:ee:ee:ee:01\nhost=h\n', "data.txt:1: [endpoint] missing 'id'"],
    [
      'bad id',
      '[endpoint x]\nid=a VALUE/c\nip=192.168.1.3\nmac=ee:ee:ee:ee:ee:01\nhost=h\n',
      'data.txt:2: [endpoint] id: not an endpoint id (1-255 characters, no white space or control characters)',
    ],
    ['felix without ip', '[felix h]\nhost=h\n', "data.txt:1: [felix] missing 'ip'"],
    ['felix bad ip', '[felix h]\nip=VALUE\n', 'data.txt:2: [felix] ip: not an IP address'],
    ['felix ip6 not an address', '[felix h]\nip=1.2.3.4\nip6=fd00::VALUE\n', 'data.txt:3: [felix] ip6: not an IPv6 address'],
    ['felix ip6 an IPv4 address', '[felix h]\nip=1.2.3.4\nip6=1.2.3.5\n', 'data.txt:3: [felix] ip6: not an IPv6 address'],
    ['felix ip6 beside an IPv6 ip', '[felix h]\nip=fd00::1\nip6=fd00::2\n', "data.txt:3: [felix] ip6: only for a host whose 'ip' is IPv4"],
    ['felix bad port', '[felix h]\nip=1.2.3.4\nport=99999VALUE\n', 'data.txt:3: [felix] port: not a port number (1-65535)'],
    ['unknown section', '[VALUE r]\nip=1.2.3.4\n', "data.txt:1: unknown section type (expected 'felix' or 'endpoint')"],
  ];
  for (const [name, text, message] of bad) {
    it(`reports a bad entry by file, line and key, not by value: ${name}`, () => {
      const p = parseDataFile(text, 'data.txt');
      expect(p.entries.size).to.equal(0);
      expect([...p.badSections.values()]).to.deep.equal([message]);
    });
  }

  it('reports lines that are not INI with file and line, not their text', () => {
    const p = parseDataFile('[felix a]\nip=1.2.3.4\njust VALUE words\nVALUE = outside\n', 'd.txt');
    expect(p.syntaxErrors).to.deep.equal(["d.txt:3: expected '[section]' or 'key = value'"]);
    expect(parseDataFile('VALUE = outside\n', 'd.txt').syntaxErrors).to.deep.equal(['d.txt:1: a key outside any section']);
  });

  it('reads files written for the 2014 originals: section names in any case, MACs with -, addresses with /32 or /128 (SPEC §11)', () => {
    const original =
      '[Felix host1]\nip=10.0.0.2/32\nhost=host1\n\n[ENDPOINT web]\nid=web:1\nip=192.168.1.9/32,fd00::9/128\nmac=EE-EE-EE-EE-EE-09\nhost=host1\ngroup=g1\n';
    const canonical =
      '[felix host1]\nip=10.0.0.2\nhost=host1\n\n[endpoint web]\nid=web:1\nip=192.168.1.9,fd00::9\nmac=ee:ee:ee:ee:ee:09\nhost=host1\ngroup=g1\n';
    const strip = (p: ReturnType<typeof parseDataFile>) => [...p.entries].map(([k, e]) => [k, { ...e.value, source: '' }]);
    const a = parseDataFile(original, 'a.txt');
    expect(a.badSections.size + a.syntaxErrors.length).to.equal(0);
    expect(strip(a)).to.deep.equal(strip(parseDataFile(canonical, 'a.txt')));
    expect(parseDataFile('[felix h]\nip=10.0.0.2/24\n', 'b.txt').badSections.size, 'a real prefix is not an address').to.equal(1);
  });

  it('compares host names up to the first dot', () => {
    expect(shortHost('Instance-1.example.com')).to.equal('instance-1');
  });
});

describe('DataMerger', () => {
  const ep = (mac: string) => `[endpoint e1]\nid=e1\nip=192.168.1.1\nmac=${mac}\nhost=h\n`;

  it('keeps the last good version of a section that goes bad', () => {
    const m = new DataMerger();
    expect(m.update('a.txt', ep('ee:ee:ee:ee:ee:01'))).to.deep.equal([]);
    const problems = m.update('a.txt', ep('nonsense'));
    expect(problems[0]).to.match(/keeping its last good version/);
    expect(m.merged().data.endpoints.get('e1')!.mac).to.equal('ee:ee:ee:ee:ee:01');
  });

  it('keeps a whole file that stops parsing, and forgets a file that is gone', () => {
    const m = new DataMerger();
    m.update('a.txt', ep('ee:ee:ee:ee:ee:01'));
    expect(m.update('a.txt', '[endpoint e1\n')[0]).to.match(/file not used, keeping its last good content/);
    expect(m.merged().data.endpoints.has('e1')).to.equal(true);
    m.update('a.txt', null);
    expect(m.merged().data.endpoints.size).to.equal(0);
  });

  it('skips a bad section never seen good, and lets the first file win a conflict', () => {
    const m = new DataMerger();
    expect(m.update('b.txt', ep('zz'))[0]).to.match(/skipped/);
    m.update('a.txt', ep('ee:ee:ee:ee:ee:01'));
    m.update('c.txt', ep('ee:ee:ee:ee:ee:02'));
    const { data, conflicts } = m.merged();
    expect(data.endpoints.get('e1')!.mac).to.equal('ee:ee:ee:ee:ee:01');
    expect(conflicts).to.have.length(1);
    expect(conflicts[0]).to.match(/c\.txt:1: endpoint 'e1' is also defined at a\.txt:1/);
  });
});

describe('formatEndpointSection (what network-container writes)', () => {
  const base: EndpointSectionValues = { id: 'abc', ip: '192.168.1.1', mac: 'ee:ee:ee:ee:ee:01', host: 'instance-1', group: 'group1' };
  const readBack = (text: string) => {
    const p = parseDataFile(text, 'x.txt');
    expect([...p.badSections.values(), ...p.syntaxErrors]).to.deep.equal([]);
    return [...p.entries.values()].map((e) => e.value);
  };

  const writable: Array<[string, Partial<EndpointSectionValues>]> = [
    ['an id the originals used', { id: 'host1:ctr/web' }],
    ['an id with : as the plugin put in groups', { id: 'web:1' }],
    ['= [ ] ; # inside an id are plain characters', { id: 'a=b[c]d;e#f' }],
    ['an id of 255 characters', { id: 'x'.repeat(255) }],
    ['a non-ASCII id', { id: 'ÿ€web' }],
    ['an IPv6 address', { ip: 'fd00::1' }],
    ['a dotted host name with _ and -', { host: 'Instance_1-a.example.com' }],
    ['a group with _ . -', { group: 'g_1.a-b' }],
  ];
  for (const [name, over] of writable) {
    it(`writes and reads back: ${name}`, () => {
      const e = { ...base, ...over };
      expect(readBack(formatEndpointSection(e))).to.deep.equal([
        { id: e.id, addrs: [e.ip], mac: e.mac, host: shortHost(e.host), groups: [e.group], source: 'x.txt:1' },
      ]);
    });
  }

  it('writes a dual-stack IPv4,IPv6 pair as one section, named by both addresses, which reads back as both', () => {
    const e = { ...base, ip: '192.168.1.5,fd00:192:168::1:5' };
    const text = formatEndpointSection(e);
    expect(text.split('\n')[0]).to.equal('[endpoint 192_168_1_5-fd00_192_168__1_5]');
    expect(readBack(text)).to.deep.equal([
      { id: e.id, addrs: ['192.168.1.5', 'fd00:192:168::1:5'], mac: e.mac, host: e.host, groups: [e.group], source: 'x.txt:1' },
    ]);
  });

  // Each would add a line, end the value early, or read back as something else.
  const refused: Array<[string, Partial<EndpointSectionValues>, RegExp]> = [
    ['a newline in the host (a whole injected section)', { host: 'h\n[endpoint evil]\nid=evil\ngroup=admin' }, /^cannot write host "h\\n\[endpoint evil\]/],
    ['a carriage return in the host', { host: 'h\rgroup=admin' }, /host/],
    ['a space in the host', { host: 'h group=admin' }, /host/],
    ['= in the host', { host: 'h=x' }, /host/],
    ['[ ] in the host', { host: '[h]' }, /host/],
    ['; in the host', { host: 'h;x' }, /host/],
    ['an empty host', { host: '' }, /host/],
    ['a newline in the id', { id: 'a\ngroup=admin' }, /id/],
    ['a line separator (U+2028) in the id', { id: 'a\u2028b' }, /id/],
    ['NEL (U+0085) in the id', { id: 'a\u0085b' }, /id/],
    ['an id starting with ;', { id: ';x' }, /id ";x": starts with ';' or '#'/],
    ['an id starting with #', { id: '#x' }, /id "#x": starts with ';' or '#'/],
    ['an id of 256 characters', { id: 'x'.repeat(256) }, /id/],
    ['a comma in the group (two groups)', { group: 'g1,admin' }, /group/],
    ['a newline in the group', { group: 'g\n[endpoint evil]' }, /group/],
    ['a bad mac', { mac: 'ee:ee:ee:ee:ee:01\nhost=x' }, /mac/],
    ['a bad ip', { ip: '192.168.1.1\nid=x' }, /ip/],
    ['a space after the comma of a pair', { ip: '192.168.1.1, fd00::1' }, /ip "192\.168\.1\.1, fd00::1": not an IP address \(or an IPv4,IPv6 pair\)/],
    ['two IPv4 addresses', { ip: '192.168.1.1,192.168.1.2' }, /ip .*: more than one address of a family/],
    ['two IPv6 addresses', { ip: 'fd00::1,fd00::2' }, /more than one address of a family/],
    ['three addresses', { ip: '192.168.1.1,fd00::1,192.168.1.2' }, /more than one address of a family/],
    ['an empty second address', { ip: '192.168.1.1,' }, /not an IP address/],
  ];
  for (const [name, over, message] of refused) {
    it(`refuses ${name}`, () => {
      expect(() => formatEndpointSection({ ...base, ...over })).to.throw(message);
    });
  }
});

describe('readEndpointSection (a written endpoint file, to write it again)', () => {
  const base: EndpointSectionValues = { id: 'abc', ip: '192.168.1.5,fd00:192:168::1:5', mac: 'ee:ee:ee:ee:ee:01', host: 'instance-1', group: 'group1' };

  it('reads back what formatEndpointSection wrote; writing it again gives the same text', () => {
    const text = formatEndpointSection(base);
    expect(readEndpointSection(text, 'x.txt')).to.deep.equal(base);
    expect(formatEndpointSection(readEndpointSection(text, 'x.txt'))).to.equal(text);
  });

  it('changes one value through a read and a write (the lab moves a container to another group so)', () => {
    const text = formatEndpointSection({ ...readEndpointSection(formatEndpointSection(base), 'x.txt'), group: 'group2' });
    expect(parseDataFile(text, 'x.txt').entries.get('endpoint 192_168_1_5-fd00_192_168__1_5')!.value).to.deep.include({ groups: ['group2'] });
  });

  const refused: Array<[string, string, string | RegExp]> = [
    ['no section', '', 'x.txt: expected one [endpoint] section, found 0 sections'],
    ['a felix section', '[felix h]\nip=10.0.0.1\n', 'x.txt: expected one [endpoint] section, found 1 sections'],
    [
      'two endpoints',
      `${formatEndpointSection(base)}\n${formatEndpointSection({ ...base, ip: '192.168.1.6' })}`,
      'x.txt: expected one [endpoint] section, found 2 sections',
    ],
    ['a bad section', '[endpoint x]\nid=a\n', "x.txt:1: [endpoint] missing 'ip'"],
    ['a line that is not INI', 'nonsense\n', "x.txt:1: expected '[section]' or 'key = value'"],
  ];
  for (const [name, text, message] of refused)
    it(`refuses a file with ${name}, naming the file`, () => {
      expect(() => readEndpointSection(text, 'x.txt')).to.throw(message);
    });
});

describe('formatFelixSection (felix.txt, as the lab writes it)', () => {
  it('writes a host that reads back as given; ip6 and port only when set', () => {
    const text = formatFelixSection({ host: 'instance-1', ip: '198.18.0.1', ip6: 'fd00:198:18::1' });
    expect(text).to.equal('[felix instance-1]\nip=198.18.0.1\nip6=fd00:198:18::1\nhost=instance-1\n');
    const p = parseDataFile(`${text}\n${formatFelixSection({ host: 'h2', ip: '127.0.0.1', port: 9902 })}`, 'felix.txt');
    expect([...p.badSections.values(), ...p.syntaxErrors]).to.deep.equal([]);
    expect([...p.entries.values()].map((e) => ({ ...e.value, source: '' }))).to.deep.equal([
      { host: 'instance-1', ip: '198.18.0.1', ip6: 'fd00:198:18::1', port: null, source: '' },
      { host: 'h2', ip: '127.0.0.1', ip6: null, port: 9902, source: '' },
    ]);
  });

  const refused: Array<[string, Partial<FelixSectionValues>, string]> = [
    ['a host with a line break', { host: 'h\n[felix evil]' }, 'cannot write host "h\\n[felix evil]": not a host name'],
    ['an ip that is not an address', { ip: '10.0.0' }, 'cannot write ip "10.0.0": not an IP address'],
    ['an IPv4 ip6', { ip6: '10.0.0.2' }, 'cannot write ip6 "10.0.0.2": not an IPv6 address'],
    ['port 0', { port: 0 }, 'cannot write port "0": not a port number (1-65535)'],
  ];
  for (const [name, over, message] of refused)
    it(`refuses ${name}`, () => {
      expect(() => formatFelixSection({ host: 'h', ip: '10.0.0.1', ...over })).to.throw(message);
    });
});

describe('canonicalEndpointIp and endpointKey (network-container’s IP argument → ip= and the data file name)', () => {
  const rows: Array<[string, string, string, string]> = [
    ['an IPv4 address', '192.168.1.1', '192.168.1.1', '192_168_1_1'],
    ['an IPv6 address, compressed', 'FD00:192:168:0:0:0:1:1', 'fd00:192:168::1:1', 'fd00_192_168__1_1'],
    ['a pair, IPv4 first', '192.168.1.5,fd00:192:168::1:5', '192.168.1.5,fd00:192:168::1:5', '192_168_1_5-fd00_192_168__1_5'],
    ['a pair given IPv6 first', 'fd00:192:168::1:5,192.168.1.5', '192.168.1.5,fd00:192:168::1:5', '192_168_1_5-fd00_192_168__1_5'],
  ];
  for (const [name, given, ip, key] of rows) {
    it(name, () => {
      expect(canonicalEndpointIp(given)).to.equal(ip);
      expect(endpointKey(ip)).to.equal(key);
    });
  }

  it('refuses what network-container would refuse, naming the value', () => {
    expect(() => canonicalEndpointIp('192.168.1.1,192.168.1.2')).to.throw('bad IP address "192.168.1.1,192.168.1.2": more than one address of a family');
    expect(() => canonicalEndpointIp('192.168.400.1')).to.throw('bad IP address "192.168.400.1": not an IP address (or an IPv4,IPv6 pair)');
  });
});
