import { expect } from 'chai';
import { flagParser, keyOption } from '../../../src/common/cli.js';
import { host, int, port, str } from '../../../src/common/config.js';

describe('cli: flags checked by config key parsers', () => {
  it('passes what the config key accepts, as the key reads it', () => {
    expect(flagParser('ep-port', port(9901).parse)('9901')).to.equal(9901);
    // yargs hands a default over as it was given (a number here).
    expect(flagParser('ep-port', port(9901).parse)(9902)).to.equal(9902);
    expect(flagParser('bind', host('*').parse)('127.0.0.1')).to.equal('127.0.0.1');
  });

  const refused: Array<[string, unknown, string]> = [
    ['a port out of range', '70000', '--ep-port: bad value "70000": expected a number from 1 to 65535'],
    ['a word for a port', 'abc', '--ep-port: bad value "abc": expected a whole number'],
    ['a fraction for a port', '1.5', '--ep-port: bad value "1.5": expected a whole number'],
    ['a line break in a value (quoted, so still one line)', '1\n2', '--ep-port: bad value "1\\n2": expected a whole number'],
  ];
  for (const [name, raw, message] of refused)
    it(`refuses ${name} with one line naming the flag`, () => {
      expect(() => flagParser('ep-port', port(9901).parse)(raw)).to.throw(message);
    });

  it("keyOption: a string option with the key's default and its parser", () => {
    const o = keyOption('timeout-ms', int(40000, 1), 'reconnect after this');
    expect({ type: o.type, default: o.default, describe: o.describe }).to.deep.equal({ type: 'string', default: 40000, describe: 'reconnect after this' });
    expect(o.coerce('5')).to.equal(5);
    expect(() => o.coerce('0')).to.throw('--timeout-ms: bad value "0": expected a number from 1 up');
    expect(() => keyOption('name', str())).to.throw('--name: its config key has no default');
  });
});
