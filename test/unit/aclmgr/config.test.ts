/** acl_manager.cfg (SPEC §7): defaults, overrides, and one-line errors. */
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadAclManagerConfig } from '../../../src/aclmgr/config.js';
import { ConfigError } from '../../../src/common/config.js';

describe('acl_manager.cfg', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aclcfg-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  function load(text: string) {
    const file = path.join(dir, 'acl_manager.cfg');
    fs.writeFileSync(file, text);
    return loadAclManagerConfig(file);
  }

  it('needs only PluginAddress; everything else has the SPEC defaults', () => {
    const { config, warnings } = load('[global]\nPluginAddress = plugin.example\n');
    expect(warnings).to.deep.equal([]);
    expect(config.global).to.deep.equal({
      PluginAddress: 'plugin.example',
      PluginPublishAddress: null,
      LocalAddress: '*',
      AclPublishAddress: null,
      PluginGroupsPort: 9903,
      PluginPublishPort: 9904,
      AclRequestPort: 9905,
      AclPublishPort: 9906,
      AclHeartbeatIntervalMillis: 30000,
    });
    expect(config.log.LogFilePath).to.equal('/var/log/calico/acl_manager.log');
    expect(config.connection).to.deep.equal({
      ConnectionTimeoutMillis: 40000,
      ConnectionKeepaliveIntervalMillis: 5000,
      PluginTimeoutMillis: 90000,
      ResyncSettleMillis: 2000,
      MaxMessageBytes: 10485760,
    });
    expect(config.metrics).to.deep.equal({ MetricsPort: 0, MetricsAddress: '127.0.0.1' });
  });

  it('takes overrides with keys in any case, and warns about unknown keys', () => {
    const { config, warnings } = load(
      '[GLOBAL]\npluginaddress = 10.0.0.1\naclrequestport = 19905\nColour = blue\n[log]\nLogFilePath = None\n[connection]\nPluginTimeoutMillis = 1500\n',
    );
    expect(config.global.PluginAddress).to.equal('10.0.0.1');
    expect(config.global.AclRequestPort).to.equal(19905);
    expect(config.log.LogFilePath).to.equal(null);
    expect(config.connection.PluginTimeoutMillis).to.equal(1500);
    expect(warnings).to.have.length(1);
    expect(warnings[0]).to.match(/unknown key \[global\] Colour/);
  });

  const bad: Array<[string, string, RegExp]> = [
    ['no PluginAddress', '[global]\nLocalAddress = *\n', /\[global\] PluginAddress: missing/],
    ['bad port', '[global]\nPluginAddress = a\nAclPublishPort = 0\n', /\[global\] AclPublishPort: bad value "0"/],
    ['bad host', '[global]\nPluginAddress = tcp://a b\n', /\[global\] PluginAddress: bad value/],
    ['bad timeout', '[global]\nPluginAddress = a\n[connection]\nResyncSettleMillis = -5\n', /\[connection\] ResyncSettleMillis: bad value/],
  ];
  for (const [name, text, expected] of bad) {
    it(`refuses ${name} with one line naming file, section and key`, () => {
      expect(() => load(text))
        .to.throw(ConfigError, expected)
        .with.property('message')
        .that.includes(dir)
        .and.not.include('\n');
    });
  }
});
