import { expect } from 'chai';
import { IniSections, formatIni, parseIni } from '../../../src/common/ini.js';

/** The document as plain data: sections as [name, line, {lower-cased key: [key, value, line]}]. */
function plain(text: string) {
  const doc = parseIni(text);
  return {
    sections: doc.sections.map((s) => [s.name, s.line, Object.fromEntries([...s.entries].map(([k, e]) => [k, [e.key, e.value, e.line]]))]),
    errors: doc.errors.map((e) => e.line),
  };
}

describe('ini: parseIni', () => {
  const rows: [string, string, ReturnType<typeof plain>][] = [
    ['empty text', '', { sections: [], errors: [] }],
    ['comments and blank lines only', '; a\n# b\n\n   \n', { sections: [], errors: [] }],
    [
      'key = value and key: value',
      '[global]\nA = 1\nb: two words\n',
      { sections: [['global', 1, { a: ['A', '1', 2], b: ['b', 'two words', 3] }]], errors: [] },
    ],
    [
      'keys are stored lower-cased, written form kept',
      '[g]\nPluginAddress=x\n',
      { sections: [['g', 1, { pluginaddress: ['PluginAddress', 'x', 2] }]], errors: [] },
    ],
    ['a repeated key keeps the last, whatever its case', '[g]\nKEY=1\nkey=2\n', { sections: [['g', 1, { key: ['key', '2', 3] }]], errors: [] }],
    [
      'value with colons (IPv6, URL)',
      '[g]\nip = fd00::1\nurl: http://h:1/p\n',
      { sections: [['g', 1, { ip: ['ip', 'fd00::1', 2], url: ['url', 'http://h:1/p', 3] }]], errors: [] },
    ],
    ['value with = in it', '[g]\na = b=c\n', { sections: [['g', 1, { a: ['a', 'b=c', 2] }]], errors: [] }],
    [
      'inline comments after white space',
      '[g]\na = 1 ; one\nb = 2 # two\nc = 3\t;tab\n',
      { sections: [['g', 1, { a: ['a', '1', 2], b: ['b', '2', 3], c: ['c', '3', 4] }]], errors: [] },
    ],
    ['; or # inside a value is kept', '[g]\na = x;y\nb = x#y\n', { sections: [['g', 1, { a: ['a', 'x;y', 2], b: ['b', 'x#y', 3] }]], errors: [] }],
    ['a value that is only a comment is empty', '[g]\na = ; none\nb = #\n', { sections: [['g', 1, { a: ['a', '', 2], b: ['b', '', 3] }]], errors: [] }],
    ['empty value', '[g]\na =\n', { sections: [['g', 1, { a: ['a', '', 2] }]], errors: [] }],
    ['indented lines and CRLF', '[g]\r\n   a = 1  \r\n', { sections: [['g', 1, { a: ['a', '1', 2] }]], errors: [] }],
    [
      'section name trimmed, dots kept, comment after it',
      '[ felix instance-1.example ] ; c\nip=1\n',
      { sections: [['felix instance-1.example', 1, { ip: ['ip', '1', 2] }]], errors: [] },
    ],
    [
      'a section written twice stays two sections',
      '[g]\na=1\n[g]\nb=2\n',
      {
        sections: [
          ['g', 1, { a: ['a', '1', 2] }],
          ['g', 3, { b: ['b', '2', 4] }],
        ],
        errors: [],
      },
    ],
    ['a UTF-8 byte order mark is ignored', '\ufeff[g]\na=1\n', { sections: [['g', 1, { a: ['a', '1', 2] }]], errors: [] }],
    [
      'a line that is neither section nor key is reported with its line',
      '[g]\na=1\njust words\nb=2\n',
      { sections: [['g', 1, { a: ['a', '1', 2], b: ['b', '2', 4] }]], errors: [3] },
    ],
    ['an unclosed section', '[g]\n[broken\n', { sections: [['g', 1, {}]], errors: [2] }],
    ['a key without a name', '[g]\n= 5\n', { sections: [['g', 1, {}]], errors: [2] }],
    ['a key before any section', 'a = 1\n[g]\n', { sections: [['g', 2, {}]], errors: [1] }],
  ];
  for (const [name, text, want] of rows) it(name, () => expect(plain(text)).to.deep.equal(want));

  it('says what it expected, never what it got (the text may be a secret)', () => {
    const doc = parseIni('[g]\nnonsense here\nx = 1\n');
    expect(doc.errors).to.deep.equal([{ line: 2, message: "expected '[section]' or 'key = value'" }]);
    expect(parseIni('a = 1').errors[0]!.message).to.equal('a key outside any section');
  });
});

describe('ini: formatIni', () => {
  /** What parseIni reads from the text: sections as [name, {key: value}], and no errors. */
  const readBack = (text: string) => {
    const doc = parseIni(text);
    expect(doc.errors).to.deep.equal([]);
    return doc.sections.map((s) => [s.name, Object.fromEntries([...s.entries.values()].map((e) => [e.key, e.value]))]);
  };

  it('writes sections in order, keys in order, a blank line between sections', () => {
    expect(formatIni({ global: { PluginAddress: '10.0.0.1', ResyncIntervalSecs: 5, RaiseKernelLimits: false }, log: { LogFilePath: 'None' } })).to.equal(
      '[global]\nPluginAddress = 10.0.0.1\nResyncIntervalSecs = 5\nRaiseKernelLimits = false\n\n[log]\nLogFilePath = None\n',
    );
    expect(formatIni({ 'felix instance-1': { ip: '198.18.0.1', host: 'instance-1' } }, { separator: '=' })).to.equal(
      '[felix instance-1]\nip=198.18.0.1\nhost=instance-1\n',
    );
    expect(formatIni({})).to.equal('');
  });

  it('leaves out a key whose value is undefined; an empty section is written', () => {
    expect(formatIni({ g: { a: 1, b: undefined, c: '' }, empty: {} })).to.equal('[g]\na = 1\nc = \n\n[empty]\n');
  });

  const roundTrips: Array<[string, IniSections]> = [
    ['plain values', { global: { PluginAddress: '198.18.0.1', FelixHostname: 'instance-1' } }],
    ['IPv6 and URLs (colons in values)', { g: { ip: 'fd00::1', url: 'http://h:1/p', ep: 'tcp://[fd00::1]:9901' } }],
    ['= in a value, at its start too', { g: { a: 'b=c', b: '=x' } }],
    ['; and # inside a value (not after white space)', { g: { a: 'x;y', b: 'x#y' } }],
    ['inner white space and tabs', { g: { a: 'two words', b: 'a\tb' } }],
    ['empty values', { g: { a: '' } }],
    ['dots, spaces and brackets in section names', { 'felix instance-1.example': { ip: '1.2.3.4' }, 'endpoint [x': { id: 'e' } }],
    ['paths', { log: { LogFilePath: '/tmp/lab dir/felix-instance-1.log' } }],
  ];
  for (const [name, sections] of roundTrips)
    for (const separator of [' = ', '='] as const)
      it(`reads back as given: ${name} (separator '${separator}')`, () => {
        const want = Object.entries(sections).map(([n, e]) => [n, Object.fromEntries(Object.entries(e).map(([k, v]) => [k, String(v)]))]);
        expect(readBack(formatIni(sections, { separator }))).to.deep.equal(want);
      });

  const refusals: Array<[string, IniSections, RegExp]> = [
    ['a line break in a value', { g: { a: 'x\n[evil]' } }, /^cannot write \[g\] a: the value holds a line break/],
    ['a carriage return in a value', { g: { a: 'x\ry' } }, /\[g\] a: the value holds a line break/],
    ['white space at the end of a value', { g: { a: 'x ' } }, /\[g\] a: the value starts or ends with white space/],
    ['white space at the start of a value', { g: { a: ' x' } }, /starts or ends with white space/],
    ['a value that starts with ;', { g: { a: ';x' } }, /\[g\] a: the value holds ';' or '#'/],
    ['# after white space in a value', { g: { a: 'x #y' } }, /\[g\] a: the value holds ';' or '#'/],
    ['= in a key', { g: { 'a=b': '1' } }, /\[g\] a=b: a key is text without/],
    [': in a key', { g: { 'a:b': '1' } }, /a key is text/],
    ['a key starting with #', { g: { '#a': '1' } }, /a key is text/],
    ['a key starting with [', { g: { '[a': '1' } }, /a key is text/],
    ['an empty key', { g: { '': '1' } }, /a key is text/],
    ['a key with white space at its end', { g: { 'a ': '1' } }, /a key is text/],
    ['a key given twice in different case', { g: { Key: '1', key: '2' } }, /\[g\] key: given twice/],
    ['] in a section name', { 'a]b': {} }, /^cannot write \[a\]b\]: a section name/],
    ['a line break in a section name', { 'a\nb': {} }, /^cannot write \[a\\nb\]: a section name/],
    ['an empty section name', { '': {} }, /a section name/],
    ['white space around a section name', { ' g': {} }, /a section name/],
  ];
  for (const [name, sections, reason] of refusals)
    it(`refuses ${name}, naming section and key in one line`, () => {
      let message = '';
      try {
        formatIni(sections);
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).to.match(reason);
      expect(message).not.to.include('\n');
    });

  it('never quotes the value it refuses (it may be a secret)', () => {
    expect(() => formatIni({ security: { Token: 's3cret value ' } }))
      .to.throw(Error)
      .that.satisfies((e: Error) => !e.message.includes('s3cret'));
  });
});
