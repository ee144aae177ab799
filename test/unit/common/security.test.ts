/** CurveZMQ key files and the `[security]` / `MaxMessageBytes` settings of felix.cfg and acl_manager.cfg. */
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { curveKeyPair } from 'zeromq';
import { loadAclManagerConfig } from '../../../src/aclmgr/config.js';
import { ConfigError } from '../../../src/common/config.js';
import { curvePublicOf, readKeyFile, readKeyListFile, resolveCurve, z85Decode, z85Encode } from '../../../src/common/curve.js';
import { DEFAULT_MAX_MESSAGE_BYTES } from '../../../src/common/security.js';
import { loadFelixConfig } from '../../../src/felix/config.js';

describe('CurveZMQ keys', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'curve-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const write = (name: string, text: string, mode = 0o644) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text);
    fs.chmodSync(file, mode);
    return file;
  };

  it('Z85 round-trips and derives the public key libzmq made for the secret key', () => {
    // The Z85 test vector of the ZeroMQ RFC 32: 86 4F D2 6F B5 59 F7 5B ↔ "HelloWorld".
    expect(z85Encode(Buffer.from('864fd26fb559f75b', 'hex'))).to.equal('HelloWorld');
    for (let i = 0; i < 20; i++) {
      const pair = curveKeyPair();
      expect(z85Encode(z85Decode(pair.secretKey)!)).to.equal(pair.secretKey);
      expect(curvePublicOf(pair.secretKey)).to.equal(pair.publicKey);
    }
  });

  const badKeys: Array<[string, string]> = [
    ['too short', 'abc'],
    ['41 characters', `${curveKeyPair().publicKey}x`],
    ['a character outside Z85', `${curveKeyPair().publicKey.slice(0, 39)}~`],
    ['a chunk over 2^32', `${'#'.repeat(5)}${curveKeyPair().publicKey.slice(5)}`],
    ['empty', ''],
  ];
  for (const [name, text] of badKeys) {
    it(`refuses a key file that is ${name}, naming the file`, () => {
      const file = write('k.pub', text);
      expect(() => readKeyFile(file)).to.throw(`${file}: not a CurveZMQ key`);
    });
  }

  it('reads a key with surrounding white space; names a missing file and its error code', () => {
    const pair = curveKeyPair();
    expect(readKeyFile(write('ok.pub', `\n ${pair.publicKey}\n`))).to.equal(pair.publicKey);
    expect(() => readKeyFile(path.join(dir, 'nope.key'))).to.throw(/nope\.key: cannot read: ENOENT/);
  });

  it('reads a client key list: a key per line with an optional label, blank and comment lines skipped; a bad line is named', () => {
    const [a, b] = [curveKeyPair().publicKey, curveKeyPair().publicKey];
    // Z85 keys may hold '#': only a whole-line comment is one.
    let hashed = '';
    while (!hashed.includes('#')) hashed = curveKeyPair().publicKey;
    expect(readKeyListFile(write('clients.txt', `# Felixes\n#\n${a}  # host1\n\n  ${b}\n${hashed} host3\n`))).to.deep.equal([a, b, hashed]);
    const bad = write('bad.txt', `${a}\nfelix-2\n`);
    expect(() => readKeyListFile(bad)).to.throw(`${bad}:2: not a CurveZMQ key`);
  });

  describe('resolveCurve', () => {
    const own = curveKeyPair();
    const peer = curveKeyPair().publicKey;
    const k = (name: string, key: string | null) => ({ name, key });
    const rows: Array<[string, Parameters<typeof resolveCurve>, ReturnType<typeof resolveCurve> | RegExp]> = [
      ['nothing set: security off', [k('S', null), k('P', null), [k('Peer', null)]], null],
      ['secret only, no peers: public key derived', [k('S', own.secretKey), k('P', null), []], own],
      ['secret, public and peer', [k('S', own.secretKey), k('P', own.publicKey), [k('Peer', peer)]], own],
      ['a peer key without a secret key', [k('S', null), k('P', null), [k('Peer', peer)]], /^S: missing \(required when Peer is set\)$/],
      ['a public key without a secret key', [k('S', null), k('P', own.publicKey), []], /^S: missing \(required when P is set\)$/],
      ['a secret key without a peer key', [k('S', own.secretKey), k('P', null), [k('Peer', null)]], /^Peer: missing \(required when S is set\)$/],
      ['a public key of another pair', [k('S', own.secretKey), k('P', peer), []], /^P: does not belong to the secret key in S$/],
      ['client keys without a secret key', [k('S', null), k('P', null), [], [{ name: 'C', set: true }]], /^S: missing \(required when C is set\)$/],
      ['client keys with a secret key', [k('S', own.secretKey), k('P', null), [], [{ name: 'C', set: true }]], own],
    ];
    for (const [name, args, expected] of rows) {
      it(name, () => {
        if (expected instanceof RegExp) expect(() => resolveCurve(...args)).to.throw(expected);
        else expect(resolveCurve(...args)).to.deep.equal(expected);
      });
    }
  });

  describe('config files', () => {
    const felix = curveKeyPair();
    const plugin = curveKeyPair();
    const aclmgr = curveKeyPair();
    let keys: Record<string, string>;
    beforeEach(() => {
      keys = {
        felixKey: write('felix.key', felix.secretKey, 0o600),
        felixPub: write('felix.pub', felix.publicKey),
        pluginPub: write('plugin.pub', plugin.publicKey),
        aclPub: write('aclmgr.pub', aclmgr.publicKey),
        aclKey: write('aclmgr.key', aclmgr.secretKey, 0o400),
      };
    });
    const felixCfg = (security: string, connection = '') =>
      write('felix.cfg', `[global]\nPluginAddress = p\nACLAddress = a\n[connection]\n${connection}\n[security]\n${security}`);

    it('felix.cfg without [security]: a 10 MiB limit and no keys (the 2014 wire)', () => {
      const { socketOptions, config } = loadFelixConfig(felixCfg(''));
      expect(DEFAULT_MAX_MESSAGE_BYTES).to.equal(10 * 1024 * 1024);
      expect(socketOptions).to.deep.equal({ maxMessageSize: DEFAULT_MAX_MESSAGE_BYTES });
      expect(config.security).to.deep.equal({
        CurveSecretKeyFile: null,
        CurvePublicKeyFile: null,
        CurveClientKeysFile: null,
        PluginPublicKeyFile: null,
        AclManagerPublicKeyFile: null,
      });
    });

    it('felix.cfg with every key: its own pair for every socket, the peers’ public keys in the config', () => {
      const { socketOptions, config } = loadFelixConfig(
        felixCfg(
          `CurveSecretKeyFile = ${keys['felixKey']}\ncurvepublickeyfile = ${keys['felixPub']}\nPluginPublicKeyFile = ${keys['pluginPub']}\nAclManagerPublicKeyFile = ${keys['aclPub']}\n`,
          'MaxMessageBytes = 65536',
        ),
      );
      expect(socketOptions).to.deep.equal({ maxMessageSize: 65536, curve: felix });
      expect(config.security.PluginPublicKeyFile).to.equal(plugin.publicKey);
      expect(config.security.AclManagerPublicKeyFile).to.equal(aclmgr.publicKey);
    });

    it('acl_manager.cfg with its secret key and the plugin’s public key', () => {
      const file = write(
        'acl_manager.cfg',
        `[global]\nPluginAddress = p\n[security]\nCurveSecretKeyFile = ${keys['aclKey']}\nPluginPublicKeyFile = ${keys['pluginPub']}\n`,
      );
      const { socketOptions, config } = loadAclManagerConfig(file);
      expect(socketOptions).to.deep.equal({ maxMessageSize: DEFAULT_MAX_MESSAGE_BYTES, curve: aclmgr });
      expect(config.security.PluginPublicKeyFile).to.equal(plugin.publicKey);
      expect(config.security.CurveClientKeysFile).to.equal(null);
    });

    const bad: Array<[string, () => [string, string], RegExp]> = [
      [
        'a missing key file',
        () => [`CurveSecretKeyFile = ${path.join(dir, 'gone.key')}\n`, ''],
        /felix\.cfg:\d+: \[security\] CurveSecretKeyFile: bad value ".*gone\.key": .*gone\.key: cannot read: ENOENT$/,
      ],
      [
        'a secret key others may read',
        () => [`CurveSecretKeyFile = ${write('loose.key', felix.secretKey, 0o604)}\n`, ''],
        /felix\.cfg:\d+: \[security\] CurveSecretKeyFile: bad value ".*loose\.key": .*loose\.key: mode 0604 gives group or others access to this secret key \(chmod 600 it\)$/,
      ],
      [
        'a secret key its group may read',
        () => [`CurveSecretKeyFile = ${write('group.key', felix.secretKey, 0o640)}\n`, ''],
        /group\.key: mode 0640 gives group or others access/,
      ],
      [
        'a file that holds no key',
        () => [`PluginPublicKeyFile = ${write('junk.pub', 'hello')}\n`, ''],
        /felix\.cfg:\d+: \[security\] PluginPublicKeyFile: bad value .*not a CurveZMQ key/,
      ],
      [
        'peer keys without its own',
        () => [`PluginPublicKeyFile = ${keys['pluginPub']}\n`, ''],
        /felix\.cfg: \[security\] CurveSecretKeyFile: missing \(required when \[security\] PluginPublicKeyFile is set\)$/,
      ],
      [
        'its own key without the ACL manager’s',
        () => [`CurveSecretKeyFile = ${keys['felixKey']}\nPluginPublicKeyFile = ${keys['pluginPub']}\n`, ''],
        /felix\.cfg: \[security\] AclManagerPublicKeyFile: missing \(required when \[security\] CurveSecretKeyFile is set\)$/,
      ],
      [
        'a public key not of its secret key',
        () => [
          `CurveSecretKeyFile = ${keys['felixKey']}\nCurvePublicKeyFile = ${keys['pluginPub']}\nPluginPublicKeyFile = ${keys['pluginPub']}\nAclManagerPublicKeyFile = ${keys['aclPub']}\n`,
          '',
        ],
        /\[security\] CurvePublicKeyFile: does not belong to the secret key in \[security\] CurveSecretKeyFile$/,
      ],
      [
        'client keys without its own key',
        () => [`CurveClientKeysFile = ${write('clients.txt', `${plugin.publicKey}\n`)}\n`, ''],
        /felix\.cfg: \[security\] CurveSecretKeyFile: missing \(required when \[security\] CurveClientKeysFile is set\)$/,
      ],
      ['a size limit under 1 KiB', () => ['', 'MaxMessageBytes = 100'], /felix\.cfg:\d+: \[connection\] MaxMessageBytes: bad value "100"/],
    ];
    for (const [name, make, expected] of bad) {
      it(`felix.cfg with ${name}: one ConfigError line naming file, section and key`, () => {
        const [security, connection] = make();
        expect(() => loadFelixConfig(felixCfg(security, connection)))
          .to.throw(ConfigError, expected)
          .with.property('message')
          .that.includes(dir)
          .and.not.include('\n');
      });
    }
  });
});
