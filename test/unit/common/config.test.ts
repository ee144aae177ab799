import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, bool, host, int, loadConfig, logSection, orNone, port, str, zmqAddress } from '../../../src/common/config.js';

/** A felix.cfg-like schema (SPEC §7). */
const schema = {
  global: {
    PluginAddress: host(undefined, true),
    ACLAddress: host(undefined, true),
    LocalAddress: host('*'),
    FelixHostname: str('this-host'),
    ResyncIntervalSecs: int(1800),
    MetadataAddr: orNone(host('127.0.0.1')),
    MetadataPort: port(9697),
  },
  log: logSection('/var/log/calico/felix.log'),
  connection: {
    ConnectionTimeoutMillis: int(40000, 1),
    ConnectionKeepaliveIntervalMillis: int(5000),
  },
};

const defaults = {
  global: {
    PluginAddress: '10.0.0.1',
    ACLAddress: '10.0.0.2',
    LocalAddress: '*',
    FelixHostname: 'this-host',
    ResyncIntervalSecs: 1800,
    MetadataAddr: '127.0.0.1',
    MetadataPort: 9697,
  },
  log: { LogFilePath: '/var/log/calico/felix.log', LogSeverityFile: 'INFO', LogSeveritySys: 'ERROR', LogSeverityScreen: 'ERROR' },
  connection: { ConnectionTimeoutMillis: 40000, ConnectionKeepaliveIntervalMillis: 5000 },
};

const REQUIRED = '[global]\nPluginAddress = 10.0.0.1\nACLAddress = 10.0.0.2\n';

describe('config: loadConfig', () => {
  let dir: string;
  let n = 0;
  before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'common-config-'))));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  function file(text: string): string {
    const f = path.join(dir, `felix-${++n}.cfg`);
    fs.writeFileSync(f, text);
    return f;
  }

  /** Loads `text`, expecting a ConfigError whose one-line message is `want(file)`. */
  function failure(text: string): { file: string; message: string } {
    const f = file(text);
    try {
      loadConfig(f, schema);
    } catch (err) {
      expect(err).to.be.instanceOf(ConfigError);
      expect((err as ConfigError).code).to.equal('ECONFIG');
      expect((err as Error).message).not.to.include('\n');
      return { file: f, message: (err as Error).message };
    }
    return expect.fail('expected a ConfigError');
  }

  it('fills in defaults for every key not given', () => {
    expect(loadConfig(file(REQUIRED), schema)).to.deep.equal({ config: defaults, warnings: [] });
  });

  it('reads every key, whatever the case of keys and section names', () => {
    const text = `[GLOBAL]
pluginaddress = plugin.example
ACLADDRESS = fd00::2
localaddress = 0.0.0.0
felixhostname = instance-1
resyncintervalsecs = 60 ; one minute
metadataaddr = [fd00::9]
metadataport = 80
[Log]
logfilepath = /tmp/felix.log
logseverityfile = debug
logseveritysys = warn
logseverityscreen = None
[CONNECTION]
connectiontimeoutmillis = 400
connectionkeepaliveintervalmillis = 0
`;
    expect(loadConfig(file(text), schema)).to.deep.equal({
      config: {
        global: {
          PluginAddress: 'plugin.example',
          ACLAddress: 'fd00::2',
          LocalAddress: '0.0.0.0',
          FelixHostname: 'instance-1',
          ResyncIntervalSecs: 60,
          MetadataAddr: '[fd00::9]',
          MetadataPort: 80,
        },
        log: { LogFilePath: '/tmp/felix.log', LogSeverityFile: 'DEBUG', LogSeveritySys: 'WARNING', LogSeverityScreen: 'NONE' },
        connection: { ConnectionTimeoutMillis: 400, ConnectionKeepaliveIntervalMillis: 0 },
      },
      warnings: [],
    });
  });

  for (const none of ['None', 'none', 'NONE'])
    it(`'${none}' is null where the key allows it`, () => {
      const { config } = loadConfig(file(`${REQUIRED}MetadataAddr = ${none}\n[log]\nLogFilePath = ${none}\n`), schema);
      expect(config.global.MetadataAddr).to.equal(null);
      expect(config.log.LogFilePath).to.equal(null);
    });

  it("'None' is a bad value where the key does not allow it", () => {
    const { file: f, message } = failure(`${REQUIRED}ResyncIntervalSecs = None\n`);
    expect(message).to.equal(`${f}:4: [global] ResyncIntervalSecs: bad value "None": expected a whole number`);
  });

  it('an empty value or a value that is only a comment takes the default', () => {
    const { config } = loadConfig(file(`${REQUIRED}ResyncIntervalSecs =\nMetadataPort = ; unset\n`), schema);
    expect(config.global.ResyncIntervalSecs).to.equal(1800);
    expect(config.global.MetadataPort).to.equal(9697);
  });

  it('when a section is written twice the later value wins', () => {
    const { config } = loadConfig(file(`${REQUIRED}ResyncIntervalSecs = 10\n[log]\n[global]\nresyncintervalsecs = 20\n`), schema);
    expect(config.global.ResyncIntervalSecs).to.equal(20);
  });

  it('warns about unknown keys and sections with file and line, and still loads', () => {
    const f = file(`${REQUIRED}Colour = blue\n[extras]\nx = 1\n[log]\nLogFilePth = /tmp/x\n`);
    const { config, warnings } = loadConfig(f, schema);
    expect(config).to.deep.equal(defaults);
    expect(warnings).to.deep.equal([
      `${f}:4: unknown key [global] Colour ignored`,
      `${f}:5: unknown section [extras] ignored`,
      `${f}:8: unknown key [log] LogFilePth ignored`,
    ]);
  });

  const missing: [string, string, string][] = [
    ['no file content at all', '', '[global] PluginAddress'],
    ['one required key absent', '[global]\nPluginAddress = 10.0.0.1\n', '[global] ACLAddress'],
    ['a required key in the wrong section', '[global]\nPluginAddress = 10.0.0.1\n[log]\nACLAddress = 10.0.0.2\n', '[global] ACLAddress'],
    ['a required key with an empty value', '[global]\nPluginAddress =\nACLAddress = 10.0.0.2\n', '[global] PluginAddress'],
  ];
  for (const [name, text, what] of missing)
    it(`a missing required key stops loading, naming file, section and key: ${name}`, () => {
      const { file: f, message } = failure(text);
      expect(message).to.equal(`${f}: ${what}: missing (required)`);
    });

  const bad: [string, string, number, string][] = [
    ['a word for a number', 'ResyncIntervalSecs = soon', 4, '[global] ResyncIntervalSecs: bad value "soon": expected a whole number'],
    ['a fraction for a number', 'ResyncIntervalSecs = 1.5', 4, '[global] ResyncIntervalSecs: bad value "1.5": expected a whole number'],
    ['a negative number', 'ResyncIntervalSecs = -1', 4, '[global] ResyncIntervalSecs: bad value "-1": expected a number from 0 up'],
    ['port 0', 'MetadataPort = 0', 4, '[global] MetadataPort: bad value "0": expected a number from 1 to 65535'],
    ['port 65536', 'MetadataPort = 65536', 4, '[global] MetadataPort: bad value "65536": expected a number from 1 to 65535'],
    [
      'a URL for a host',
      'LocalAddress = http://0.0.0.0',
      4,
      '[global] LocalAddress: bad value "http://0.0.0.0": expected a host name, an IP address or a ZeroMQ endpoint',
    ],
    ['a host with a space', 'MetadataAddr = a b', 4, '[global] MetadataAddr: bad value "a b": expected a host name, an IP address or a ZeroMQ endpoint'],
    [
      'an unknown severity',
      '[log]\nLogSeverityScreen = LOUD',
      5,
      '[log] LogSeverityScreen: bad value "LOUD": must be one of NONE, DEBUG, INFO, WARNING, ERROR, CRITICAL',
    ],
    [
      'a zero timeout below its minimum',
      '[connection]\nConnectionTimeoutMillis = 0',
      5,
      '[connection] ConnectionTimeoutMillis: bad value "0": expected a number from 1 up',
    ],
  ];
  for (const [name, line, lineNo, what] of bad)
    it(`a bad value stops loading, naming file:line, section and key: ${name}`, () => {
      const { file: f, message } = failure(`${REQUIRED}${line}\n`);
      expect(message.startsWith(`${f}:${lineNo}: ${what}`), message).to.equal(true);
    });

  const switches: Array<[string, boolean]> = [
    ['true', true],
    ['False', false],
    ['yes', true],
    ['NO', false],
    ['on', true],
    ['off', false],
    ['1', true],
    ['0', false],
  ];
  for (const [raw, want] of switches)
    it(`a yes/no key reads '${raw}' as ${want}`, () => {
      const f = file(`[global]\nRaiseKernelLimits = ${raw}\n`);
      expect(loadConfig(f, { global: { RaiseKernelLimits: bool(!want) } }).config.global.RaiseKernelLimits).to.equal(want);
    });

  it('a yes/no key takes its default when not given, and stops loading on anything else, naming file:line, section and key', () => {
    expect(loadConfig(file('[global]\n'), { global: { RaiseKernelLimits: bool(true) } }).config.global.RaiseKernelLimits).to.equal(true);
    const f = file('[global]\nRaiseKernelLimits = maybe\n');
    expect(() => loadConfig(f, { global: { RaiseKernelLimits: bool(true) } })).to.throw(
      ConfigError,
      `${f}:2: [global] RaiseKernelLimits: bad value "maybe": expected true or false`,
    );
  });

  it('a syntax error stops loading, naming file and line', () => {
    const { file: f, message } = failure(`${REQUIRED}\nthis is not ini\n`);
    expect(message).to.equal(`${f}:5: expected '[section]' or 'key = value'`);
  });

  it('an unreadable file stops loading, naming the file', () => {
    const f = path.join(dir, 'no-such.cfg');
    expect(() => loadConfig(f, schema)).to.throw(ConfigError, `${f}: cannot read: ENOENT`);
  });
});

describe('config: zmqAddress', () => {
  const rows: [string, number, string][] = [
    ['10.0.0.1', 9901, 'tcp://10.0.0.1:9901'],
    ['*', 9902, 'tcp://*:9902'],
    ['plugin.example', 9903, 'tcp://plugin.example:9903'],
    ['fd00::1', 9904, 'tcp://[fd00::1]:9904'],
    ['[fd00::1]', 9905, 'tcp://[fd00::1]:9905'],
    ['ipc:///run/calico/plugin.sock', 9901, 'ipc:///run/calico/plugin.sock'],
    ['tcp://10.0.0.1:7000', 9901, 'tcp://10.0.0.1:7000'],
  ];
  for (const [h, p, want] of rows) it(`${h} ${p} → ${want}`, () => expect(zmqAddress(h, p)).to.equal(want));
});
