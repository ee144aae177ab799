/**
 * CurveZMQ end to end (issue 7): keys made by the built `calico-keygen`, the
 * built plugin, ACL manager and Felix (in a namespace) configured with them.
 * A keyed peer works as before; a peer without keys, or with the wrong
 * server key, gets nothing from any socket and changes nothing.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { curveKeyPair } from 'zeromq';
import { curvePublicOf } from '../../src/common/curve.js';
import { FakeAclManager, FakePlugin, createMsg, ipc, tap, writeFelixConfig } from '../support/felix-peers.js';
import { Netns, createNetns, deleteAllNetns, plugContainer } from '../support/netns.js';
import { PeerOptions, ReplyPeer, RequestPeer, SubscribePeer, curveClient, curveServer } from '../support/peers.js';
import { freePorts } from '../support/ports.js';
import { Running, runCommand, startCommand, stopAll, waitFor } from '../support/process.js';
import { errorMessage } from '../../src/common/errors.js';

/** The process umask, read the non-deprecated way (set it, then put it back). */
function currentUmask(): number {
  const mask = process.umask(0);
  process.umask(mask);
  return mask;
}

type Pair = { publicKey: string; secretKey: string };

const PLUGIN = 'src/plugin/main.js';
const ACLMGR = 'src/aclmgr/main.js';
const FELIX = 'src/felix/main.js';

describe('CurveZMQ on every socket (built commands)', function () {
  this.timeout(60000);
  let dir: string;
  let keyDir: string;
  const keys: Record<string, Pair> = {};
  let closers: Array<{ close(): void }>;
  const track = <T extends { close(): void }>(x: T): T => {
    closers.push(x);
    return x;
  };
  const keyFile = (name: string, kind: 'key' | 'pub') => path.join(keyDir, `${name}.${kind}`);
  /**
   * The options of peers that are not in the club: no keys; a wrong server key; a public key not its own; and a
   * valid pair of its own that the server's CurveClientKeysFile does not list (set in every daemon here).
   */
  const outsiders = (serverKey: string): Array<[string, PeerOptions]> => [
    ['no keys', {}],
    ['a wrong server key', curveClient(curveKeyPair(), curveKeyPair().publicKey)],
    ['the server’s public key as its own, with a random secret', curveClient({ publicKey: serverKey, secretKey: curveKeyPair().secretKey }, serverKey)],
    ['an unlisted key pair', curveClient(curveKeyPair(), serverKey)],
  ];
  /** A CurveClientKeysFile listing these daemons' public keys. */
  const clientKeys = (...names: string[]) => {
    const file = path.join(keyDir, `clients-${names.join('-')}.txt`);
    fs.writeFileSync(file, `# admitted clients\n${names.map((n) => `${keys[n]!.publicKey}  # ${n}`).join('\n')}\n`);
    return file;
  };

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'security-test-'));
    keyDir = path.join(dir, 'keys');
    for (const name of ['plugin', 'aclmgr', 'felix']) {
      const r = await runCommand('src/keygen/main.js', ['--out-dir', keyDir, '--name', name]);
      expect(r.code, r.output).to.equal(0);
      keys[name] = { publicKey: fs.readFileSync(keyFile(name, 'pub'), 'utf8').trim(), secretKey: fs.readFileSync(keyFile(name, 'key'), 'utf8').trim() };
    }
  });
  beforeEach(() => (closers = []));
  afterEach(async () => {
    for (const c of closers) c.close();
    await stopAll();
  });
  after(async () => {
    await deleteAllNetns();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('calico-keygen writes a matching pair, the secret key mode 0600, and will not overwrite it', async () => {
    expect(fs.statSync(keyFile('felix', 'key')).mode & 0o777).to.equal(0o600);
    expect(fs.statSync(keyFile('felix', 'pub')).mode & 0o077).to.equal(0o044 & ~currentUmask());
    expect(curvePublicOf(keys['felix']!.secretKey)).to.equal(keys['felix']!.publicKey);
    expect(keys['felix']!.publicKey).to.not.equal(keys['plugin']!.publicKey);
    const again = await runCommand('src/keygen/main.js', ['--out-dir', keyDir, '--name', 'felix']);
    expect(again.code).to.equal(1);
    expect(again.output.trim()).to.equal(`calico-keygen: ${keyFile('felix', 'key')} exists (use --force to replace it)`);
    expect(fs.readFileSync(keyFile('felix', 'key'), 'utf8').trim()).to.equal(keys['felix']!.secretKey);
  });

  it('plugin network and ACL manager: only keyed peers read groups and ACLs or get answers', async () => {
    const [groups, pub, aclReq, aclPub] = await freePorts(4);
    const data = path.join(dir, 'net-data.txt');
    fs.writeFileSync(
      data,
      '[endpoint a]\nid=ep1\nip=192.168.1.1\nmac=ee:ee:ee:ee:ee:01\nhost=h1\ngroup=g1\n\n[endpoint b]\nid=ep2\nip=192.168.1.2\nmac=ee:ee:ee:ee:ee:02\nhost=h1\ngroup=g1\n',
    );
    const plugin = startCommand(PLUGIN, [
      'network',
      '--data',
      data,
      '--log-dir',
      'none',
      '--bind',
      '127.0.0.1',
      '--groups-port',
      String(groups),
      '--publish-port',
      String(pub),
      '--heartbeat-ms',
      '200',
      '--curve-secret-key',
      keyFile('plugin', 'key'),
      '--curve-public-key',
      keyFile('plugin', 'pub'),
      '--curve-client-keys',
      clientKeys('aclmgr'),
    ]);
    const cfg = path.join(dir, 'acl_manager.cfg');
    fs.writeFileSync(
      cfg,
      `[global]\nPluginAddress = 127.0.0.1\nLocalAddress = 127.0.0.1\nPluginGroupsPort = ${groups}\nPluginPublishPort = ${pub}\nAclRequestPort = ${aclReq}\nAclPublishPort = ${aclPub}\nAclHeartbeatIntervalMillis = 200\n` +
        `[log]\nLogFilePath = None\nLogSeverityScreen = INFO\n[connection]\nResyncSettleMillis = 200\n` +
        `[security]\nCurveSecretKeyFile = ${keyFile('aclmgr', 'key')}\nCurvePublicKeyFile = ${keyFile('aclmgr', 'pub')}\nPluginPublicKeyFile = ${keyFile('plugin', 'pub')}\nCurveClientKeysFile = ${clientKeys('felix')}\n`,
    );
    const manager: Running = startCommand(ACLMGR, ['--config-file', cfg]);
    await waitFor(
      'ACL manager resynced with the keyed plugin',
      () => manager.output().includes('resynchronised with the plugin') && plugin.output().includes('"ready"'),
      15000,
    );

    const felixKeys = curveClient(keys['felix']!, keys['aclmgr']!.publicKey);
    const spies = outsiders(keys['aclmgr']!.publicKey).map(
      ([name, opts]) => [name, track(new SubscribePeer(`tcp://127.0.0.1:${aclPub}`, ['ep1', 'aclheartbeat'], opts))] as const,
    );
    const groupSpies = outsiders(keys['plugin']!.publicKey).map(
      ([name, opts]) => [name, track(new SubscribePeer(`tcp://127.0.0.1:${pub}`, ['groups', 'networkheartbeat'], opts))] as const,
    );
    const sub = track(new SubscribePeer(`tcp://127.0.0.1:${aclPub}`, ['ep1', 'aclheartbeat'], felixKeys));
    const groupSub = track(
      new SubscribePeer(`tcp://127.0.0.1:${pub}`, ['groups', 'networkheartbeat'], curveClient(keys['aclmgr']!, keys['plugin']!.publicKey)),
    );
    await sub.inbox.take((m) => m['topic'] === 'aclheartbeat', 'aclheartbeat on the keyed SUB');
    await groupSub.inbox.take((m) => m['topic'] === 'networkheartbeat', 'networkheartbeat on the keyed SUB');
    const req = track(new RequestPeer(`tcp://127.0.0.1:${aclReq}`, 3000, felixKeys));
    expect(await req.request({ type: 'GETACLSTATE', endpoint_id: 'ep1', issued: Date.now() })).to.deep.include({ rc: 'SUCCESS', endpoint_id: 'ep1' });
    const update = await sub.inbox.take((m) => m['topic'] === 'ep1' && m['type'] === 'ACLUPDATE', 'ACLUPDATE for ep1');
    expect(JSON.stringify(update['acls'])).to.include('192.168.1.2/32');

    for (const [name, opts] of outsiders(keys['aclmgr']!.publicKey)) {
      const stranger = track(new RequestPeer(`tcp://127.0.0.1:${aclReq}`, 700, opts));
      let answer: unknown;
      await stranger.request({ type: 'GETACLSTATE', endpoint_id: 'ep1', issued: Date.now() }).then(
        (r) => (answer = r),
        () => {},
      );
      expect(answer, `GETACLSTATE from a peer with ${name}`).to.equal(undefined);
    }
    // The keyed SUB heard several heartbeats meanwhile; the strangers nothing at all.
    expect(sub.inbox.messages.length).to.be.greaterThan(2);
    for (const [name, spy] of [...spies, ...groupSpies]) expect(spy.inbox.messages, `SUB with ${name}`).to.deep.equal([]);
  });

  it('plugin ep: an unkeyed resync gets no answer and sends nothing; a keyed one is served, pushed to a keyed Felix', async () => {
    const [epPort, felixPort] = await freePorts(2);
    const data = path.join(dir, 'ep-data.txt');
    fs.writeFileSync(
      data,
      `[felix h1]\nip=127.0.0.1\nport=${felixPort}\nhost=h1\n\n[endpoint a]\nid=ep1\nip=192.168.1.1\nmac=ee:ee:ee:ee:ee:01\nhost=h1\ngroup=g1\n`,
    );
    const felix = track(await new ReplyPeer(undefined, curveServer(keys['felix']!)).bind(`tcp://127.0.0.1:${felixPort}`));
    const plugin = startCommand(PLUGIN, [
      'ep',
      '--data',
      data,
      '--log-dir',
      'none',
      '--bind',
      '127.0.0.1',
      '--ep-port',
      String(epPort),
      '--keepalive-ms',
      '200',
      '--curve-secret-key',
      keyFile('plugin', 'key'),
      '--felix-public-key',
      keyFile('felix', 'pub'),
      '--curve-client-keys',
      clientKeys('felix'),
    ]);
    await waitFor('plugin ready', () => plugin.output().includes('"ready"'), 10000);
    // The plugin's REQ to the keyed Felix works: its keepalive gets through.
    await felix.inbox.take((m) => m['type'] === 'HEARTBEAT', 'HEARTBEAT from the keyed plugin');
    for (const [name, opts] of outsiders(keys['plugin']!.publicKey)) {
      const stranger = track(new RequestPeer(`tcp://127.0.0.1:${epPort}`, 700, opts));
      let answer: unknown;
      await stranger.request({ type: 'RESYNCSTATE', resync_id: `r-${name}`, hostname: 'h1', issued: Date.now() }).then(
        (r) => (answer = r),
        () => {},
      );
      expect(answer, `RESYNCSTATE from a peer with ${name}`).to.equal(undefined);
    }
    expect(felix.inbox.messages.filter((m) => m['type'] === 'ENDPOINTCREATED')).to.deep.equal([]);
    const keyed = track(new RequestPeer(`tcp://127.0.0.1:${epPort}`, 3000, curveClient(keys['felix']!, keys['plugin']!.publicKey)));
    expect(await keyed.request({ type: 'RESYNCSTATE', resync_id: 'r-ok', hostname: 'h1', issued: Date.now() })).to.deep.include({
      rc: 'SUCCESS',
      endpoint_count: 1,
    });
    const created = await felix.inbox.take((m) => m['type'] === 'ENDPOINTCREATED', 'ENDPOINTCREATED');
    expect(created).to.deep.include({ endpoint_id: 'ep1', resync_id: 'r-ok' });
  });

  it('Felix: keyed plugin and ACL manager program it; unkeyed or wrongly keyed requests are not answered and change nothing', async () => {
    const fdir = fs.mkdtempSync(path.join(dir, 'felix-'));
    const host: Netns = await createNetns('sechost', 'csec');
    const EP1 = { id: 'e1e1e1e1e1e1bb01', ip: '192.168.40.1' };
    const EP2 = { id: 'e2e2e2e2e2e2bb02', ip: '192.168.40.2' };
    const c1 = await plugContainer(host, 'sc1', EP1.ip, tap(EP1.id));
    const c2 = await plugContainer(host, 'sc2', EP2.ip, tap(EP2.id));
    const cfg = writeFelixConfig(
      fdir,
      `[security]\nCurveSecretKeyFile = ${keyFile('felix', 'key')}\nPluginPublicKeyFile = ${keyFile('plugin', 'pub')}\nAclManagerPublicKeyFile = ${keyFile('aclmgr', 'pub')}\nCurveClientKeysFile = ${clientKeys('plugin')}\n`,
    );
    const plugin = track(
      new FakePlugin(ipc(fdir, 'plugin.sock'), ipc(fdir, 'felix.sock'), {
        server: curveServer(keys['plugin']!),
        client: curveClient(keys['plugin']!, keys['felix']!.publicKey),
      }),
    );
    plugin.endpoints.set(EP1.id, createMsg(EP1, c1.mac));
    await plugin.listen();
    const aclmgr = track(new FakeAclManager(curveServer(keys['aclmgr']!)));
    await aclmgr.bind(ipc(fdir, 'acl.sock'), ipc(fdir, 'aclpub.sock'));
    const felix = startCommand(FELIX, ['--config-file', cfg], { netns: host.name });
    const routes = () => host.run('ip', ['route', 'show']);
    // Felix's keyed REQ to the plugin and REQ to the ACL manager got through.
    await plugin
      .rep!.inbox.take((m) => m['type'] === 'RESYNCSTATE', 'RESYNCSTATE', 10000)
      .catch((err: unknown) => {
        const log = path.join(fdir, 'felix.log');
        throw new Error(`${errorMessage(err)}\n${felix.output()}\n${fs.existsSync(log) ? fs.readFileSync(log, 'utf8').slice(-3000) : 'no log'}`);
      });
    await waitFor('route to EP1', async () => (await routes()).includes(`${EP1.ip} dev ${tap(EP1.id)}`), 10000);
    await aclmgr.rep.inbox.take((m) => m['type'] === 'GETACLSTATE' && m['endpoint_id'] === EP1.id, 'GETACLSTATE for EP1');

    const filterRules = async () => (await host.run('iptables-save', ['-t', 'filter'])).split('\n').filter((l) => !l.startsWith('#'));
    const chainsBefore = await filterRules();
    for (const [name, opts] of outsiders(keys['felix']!.publicKey)) {
      const stranger = track(new RequestPeer(ipc(fdir, 'felix.sock'), 700, opts));
      let answer: unknown;
      await stranger.request(createMsg(EP2, c2.mac)).then(
        (r) => (answer = r),
        () => {},
      );
      expect(answer, `ENDPOINTCREATED from a peer with ${name}`).to.equal(undefined);
    }
    expect(await routes()).to.not.include(EP2.ip);
    expect(await filterRules()).to.deep.equal(chainsBefore);

    expect(await plugin.send(createMsg(EP2, c2.mac))).to.deep.include({ rc: 'SUCCESS' });
    await waitFor('route to EP2 from the keyed plugin', async () => (await routes()).includes(`${EP2.ip} dev ${tap(EP2.id)}`), 10000);
  });

  it('a daemon with a bad key setting stops with one line naming it', async () => {
    const junk = path.join(dir, 'junk.pub');
    fs.writeFileSync(junk, 'not a key\n');
    const cfg = path.join(dir, 'bad.cfg');
    fs.writeFileSync(
      cfg,
      `[global]\nPluginAddress = 127.0.0.1\n[log]\nLogFilePath = None\n[security]\nCurveSecretKeyFile = ${keyFile('aclmgr', 'key')}\nPluginPublicKeyFile = ${junk}\n`,
    );
    const r = await runCommand(ACLMGR, ['--config-file', cfg]);
    expect(r.code).to.equal(1);
    expect(r.output.trim()).to.equal(
      `calico-acl-manager: ${cfg}:7: [security] PluginPublicKeyFile: bad value "${junk}": ${junk}: not a CurveZMQ key (expected 40 Z85 characters)`,
    );
    const p = await runCommand(PLUGIN, ['ep', '--data', junk, '--log-dir', 'none', '--curve-secret-key', keyFile('plugin', 'key')]);
    expect(p.code).to.equal(2);
    expect(p.output.trim()).to.equal('plugin: --felix-public-key: missing (required when --curve-secret-key is set) (see --help)');
  });

  it('a daemon whose secret key others may read stops with one line naming the file and its mode (issue #11)', async () => {
    const loose = path.join(dir, 'loose.key');
    fs.copyFileSync(keyFile('aclmgr', 'key'), loose);
    fs.chmodSync(loose, 0o644);
    const cfg = path.join(dir, 'loose.cfg');
    fs.writeFileSync(
      cfg,
      `[global]\nPluginAddress = 127.0.0.1\n[log]\nLogFilePath = None\n[security]\nCurveSecretKeyFile = ${loose}\nPluginPublicKeyFile = ${keyFile('plugin', 'pub')}\n`,
    );
    const fdir = fs.mkdtempSync(path.join(dir, 'felix-loose-'));
    const felixCfg = writeFelixConfig(
      fdir,
      `[security]\nCurveSecretKeyFile = ${loose}\nPluginPublicKeyFile = ${keyFile('plugin', 'pub')}\nAclManagerPublicKeyFile = ${keyFile('aclmgr', 'pub')}\n`,
    );
    const loosely = `${loose}: mode 0644 gives group or others access to this secret key (chmod 600 it)`;
    for (const [cmd, args, code, line] of [
      [ACLMGR, ['--config-file', cfg], 1, `calico-acl-manager: ${cfg}:6: [security] CurveSecretKeyFile: bad value "${loose}": ${loosely}`],
      [FELIX, ['--config-file', felixCfg], 1, `calico-felix: ${felixCfg}:19: [security] CurveSecretKeyFile: bad value "${loose}": ${loosely}`],
      [
        PLUGIN,
        ['network', '--data', cfg, '--log-dir', 'none', '--curve-secret-key', loose],
        2,
        `plugin: --curve-secret-key: bad value "${loose}": ${loosely} (see --help)`,
      ],
    ] as Array<[string, string[], number, string]>) {
      const r = await runCommand(cmd, args);
      expect(r.code, r.output).to.equal(code);
      expect(r.output.trim()).to.equal(line);
    }
  });

  it('refused handshakes are logged a few times, not once each, and counted in calico_curve_handshakes_refused_total (issue #11)', async () => {
    const [groups, pub, metricsPort] = await freePorts(3);
    const data = path.join(dir, 'flood-data.txt');
    fs.writeFileSync(data, '[endpoint a]\nid=ep1\nip=192.168.1.1\nmac=ee:ee:ee:ee:ee:01\nhost=h1\ngroup=g1\n');
    const plugin = startCommand(PLUGIN, [
      'network',
      '--data',
      data,
      '--log-dir',
      'none',
      '--log-severity-screen',
      'INFO',
      '--bind',
      '127.0.0.1',
      '--groups-port',
      String(groups),
      '--publish-port',
      String(pub),
      '--metrics-port',
      String(metricsPort),
      '--curve-secret-key',
      keyFile('plugin', 'key'),
      '--curve-client-keys',
      clientKeys('aclmgr'),
    ]);
    await waitFor('plugin ready', () => plugin.output().includes('"ready"'), 10000);
    // 100 clients with a key pair the plugin does not admit, 100 without keys; one attempt each (no reconnection).
    const attempts = Array.from({ length: 200 }, (_, i) => (i % 2 ? {} : curveClient(curveKeyPair(), keys['plugin']!.publicKey)));
    for (const opts of attempts) track(new RequestPeer(`tcp://127.0.0.1:${groups}`, 5000, { ...opts, reconnectInterval: 600000 }));
    const refusedLines = () =>
      plugin
        .output()
        .split('\n')
        .filter((l) => /handshake|refused/i.test(l));
    const refused = async () => {
      const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      return text
        .split('\n')
        .filter((l) => l.startsWith('calico_curve_handshakes_refused_total'))
        .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
    };
    await waitFor('200 refusals counted', async () => (await refused()) >= 200, 15000).catch((err: unknown) => {
      throw new Error(`${errorMessage(err)}; ${refusedLines().length} refusal lines logged meanwhile`);
    });
    expect(await refused()).to.equal(200);
    expect(refusedLines().length, refusedLines().join('\n')).to.be.within(1, 4);
  });
});
