import { expect } from 'chai';
import { defaultInterfaceName, interfacePrefix, isInterfaceName, isInterfacePrefix } from '../../../src/common/endpoint-names.js';

describe('endpoint names: interface names and prefixes (SPEC §3)', () => {
  const names: Array<[string, boolean]> = [
    ['tapabcdef01234', true],
    ['tap0.1_a-b', true],
    ['a'.repeat(15), true],
    ['a'.repeat(16), false],
    ['', false],
    ['tap x', false],
    ['tap/x', false],
    ['tapé', false],
  ];
  for (const [name, ok] of names) it(`${JSON.stringify(name)} is ${ok ? '' : 'not '}an interface name`, () => expect(isInterfaceName(name)).to.equal(ok));

  it('a default interface name is one, for any id and prefix (the suffix is at most 11 characters)', () => {
    for (const id of ['abc', 'x'.repeat(255), 'host1:ctr/web', 'ÿ€web'])
      for (const prefix of ['tap', 'cali']) expect(isInterfaceName(defaultInterfaceName(prefix, id)), `${prefix} ${id}`).to.equal(true);
    expect(defaultInterfaceName('tap', '0123456789abcdef')).to.equal('tap0123456789a');
  });

  it('a prefix is 1-4 letters, digits, _ or -; the config key and the plugin flag say so', () => {
    expect(['tap', 'c', 'ab_-'].every(isInterfacePrefix)).to.equal(true);
    expect(['', 'abcde', 'ta.p', 'ta p'].some(isInterfacePrefix)).to.equal(false);
    expect(interfacePrefix().default).to.equal('tap');
    expect(interfacePrefix().parse('cali')).to.equal('cali');
    expect(() => interfacePrefix().parse('tap.')).to.throw('expected 1-4 letters or digits');
  });
});
