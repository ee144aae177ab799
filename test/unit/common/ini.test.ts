import { expect } from 'chai';
import { parseIni } from '../../../src/common/ini.js';

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
    ['key = value and key: value', '[global]\nA = 1\nb: two words\n', { sections: [['global', 1, { a: ['A', '1', 2], b: ['b', 'two words', 3] }]], errors: [] }],
    ['keys are stored lower-cased, written form kept', '[g]\nPluginAddress=x\n', { sections: [['g', 1, { pluginaddress: ['PluginAddress', 'x', 2] }]], errors: [] }],
    ['a repeated key keeps the last, whatever its case', '[g]\nKEY=1\nkey=2\n', { sections: [['g', 1, { key: ['key', '2', 3] }]], errors: [] }],
    ['value with colons (IPv6, URL)', '[g]\nip = fd00::1\nurl: http://h:1/p\n', { sections: [['g', 1, { ip: ['ip', 'fd00::1', 2], url: ['url', 'http://h:1/p', 3] }]], errors: [] }],
    ['value with = in it', '[g]\na = b=c\n', { sections: [['g', 1, { a: ['a', 'b=c', 2] }]], errors: [] }],
    ['inline comments after white space', '[g]\na = 1 ; one\nb = 2 # two\nc = 3\t;tab\n', { sections: [['g', 1, { a: ['a', '1', 2], b: ['b', '2', 3], c: ['c', '3', 4] }]], errors: [] }],
    ['; or # inside a value is kept', '[g]\na = x;y\nb = x#y\n', { sections: [['g', 1, { a: ['a', 'x;y', 2], b: ['b', 'x#y', 3] }]], errors: [] }],
    ['a value that is only a comment is empty', '[g]\na = ; none\nb = #\n', { sections: [['g', 1, { a: ['a', '', 2], b: ['b', '', 3] }]], errors: [] }],
    ['empty value', '[g]\na =\n', { sections: [['g', 1, { a: ['a', '', 2] }]], errors: [] }],
    ['indented lines and CRLF', '[g]\r\n   a = 1  \r\n', { sections: [['g', 1, { a: ['a', '1', 2] }]], errors: [] }],
    ['section name trimmed, dots kept, comment after it', '[ felix instance-1.example ] ; c\nip=1\n', { sections: [['felix instance-1.example', 1, { ip: ['ip', '1', 2] }]], errors: [] }],
    ['a section written twice stays two sections', '[g]\na=1\n[g]\nb=2\n', { sections: [['g', 1, { a: ['a', '1', 2] }], ['g', 3, { b: ['b', '2', 4] }]], errors: [] }],
    ['a UTF-8 byte order mark is ignored', '\ufeff[g]\na=1\n', { sections: [['g', 1, { a: ['a', '1', 2] }]], errors: [] }],
    ['a line that is neither section nor key is reported with its line', '[g]\na=1\njust words\nb=2\n', { sections: [['g', 1, { a: ['a', '1', 2], b: ['b', '2', 4] }]], errors: [3] }],
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
