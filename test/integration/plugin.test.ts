/**
 * Runs the built `plugin` command and speaks to it over real sockets as a
 * Felix and as an ACL manager would (SPEC §3, §4, §7).
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { perTestWorkspace } from '../support/workspace.js';
import { freePorts } from '../support/ports.js';
import { Running, runCommand, startCommand, stopAll, waitFor } from '../support/process.js';
import { ReplyPeer, RequestPeer, SubscribePeer } from '../support/peers.js';
import { writeFileAtomic } from '../../src/common/files.js';
import { formatEndpointSection, formatFelixSection } from '../../src/plugin/data.js';

type Json = Record<string, unknown>;
const PLUGIN = 'src/plugin/main.js';

/** Sections end with a blank line, so that they can be joined. */
function felixSection(host: string, port: number): string {
  return `${formatFelixSection({ host, ip: '127.0.0.1', port })}\n`;
}

function endpointSection(n: number, host: string, group: string, mac = `ee:ee:ee:ee:ee:0${n}`): string {
  return `${formatEndpointSection({ id: `ep${n}`, ip: `192.168.1.${n}`, mac, host, group })}\n`;
}

describe('plugin (built command, real sockets)', function () {
  const ws = perTestWorkspace('plugin-test');

  async function startPlugin(role: 'ep' | 'network', data: string, args: string[]): Promise<Running> {
    const logDir = args.includes('--log-dir') ? [] : ['--log-dir', 'none'];
    const p = startCommand(PLUGIN, [role, '--data', data, ...logDir, '--log-severity-screen', 'INFO', '--bind', '127.0.0.1', ...args]);
    await waitFor('plugin ready', () => p.output().includes('"ready"'), 10000);
    return p;
  }

  describe('ep', () => {
    let epPort: number;
    let felixPort: number;
    let otherFelixPort: number;
    let data: string;
    let felix: ReplyPeer;
    let resync: RequestPeer;
    let plugin: Running;

    beforeEach(async () => {
      [epPort, felixPort, otherFelixPort] = await freePorts(3);
      data = path.join(ws.dir, 'data.txt');
      fs.writeFileSync(
        data,
        felixSection('instance-1', felixPort!) +
          felixSection('instance-2', otherFelixPort!) +
          endpointSection(1, 'instance-1', 'group1') +
          endpointSection(2, 'instance-1', 'group2') +
          endpointSection(4, 'instance-2', 'group1'),
      );
      felix = ws.track(await new ReplyPeer().bind(`tcp://127.0.0.1:${felixPort}`));
      plugin = await startPlugin('ep', data, ['--ep-port', String(epPort), '--keepalive-ms', '300', '--timeout-ms', '2000']);
      resync = ws.track(new RequestPeer(`tcp://127.0.0.1:${epPort}`));
    });

    it('answers RESYNCSTATE with the host’s count and sends its endpoints with the resync id', async () => {
      const reply = await resync.request({ type: 'RESYNCSTATE', resync_id: 'r-1', hostname: 'Instance-1.example.com', issued: Date.now() / 1000 });
      expect(reply).to.deep.equal({ type: 'RESYNCSTATE', rc: 'SUCCESS', message: '', endpoint_count: 2, interface_prefix: 'tap' });
      const ids: string[] = [];
      for (let i = 0; i < 2; i++) {
        const m = await felix.inbox.take((m) => m['type'] === 'ENDPOINTCREATED' && m['resync_id'] === 'r-1', 'resync create');
        ids.push(m['endpoint_id'] as string);
        expect(m['state']).to.equal('enabled');
        expect(m['addrs']).to.deep.equal([{ addr: `192.168.1.${(m['endpoint_id'] as string).slice(2)}`, properties: { gr: false } }]);
        expect(m['issued']).to.be.a('number');
      }
      expect(ids.sort()).to.deep.equal(['ep1', 'ep2']);
      await felix.inbox.none((m) => m['type'] === 'ENDPOINTCREATED', 300);
    });

    it('refuses a resync from a host it has no [felix] section for', async () => {
      const reply = await resync.request({ type: 'RESYNCSTATE', resync_id: 'r-2', hostname: 'nowhere', issued: Date.now() });
      expect(reply['rc']).to.equal('FAILURE');
      expect(reply['message']).to.match(/nowhere/);
    });

    it('pushes created, updated and destroyed endpoints to the right Felix as the data changes', async () => {
      const base = fs.readFileSync(data, 'utf8');
      fs.writeFileSync(data, base + endpointSection(3, 'instance-1', 'group1'));
      const created = await felix.inbox.take((m) => m['type'] === 'ENDPOINTCREATED', 'pushed create', 3000);
      expect(created).to.include({ endpoint_id: 'ep3', mac: 'ee:ee:ee:ee:ee:03', resync_id: null, state: 'enabled' });

      writeFileAtomic(data, base + endpointSection(3, 'instance-1', 'group1', 'ee:ee:ee:ee:ee:33'));
      const updated = await felix.inbox.take((m) => m['type'] === 'ENDPOINTUPDATED', 'pushed update', 3000);
      expect(updated).to.include({ endpoint_id: 'ep3', mac: 'ee:ee:ee:ee:ee:33' });

      writeFileAtomic(data, base);
      const destroyed = await felix.inbox.take((m) => m['type'] === 'ENDPOINTDESTROYED', 'pushed destroy', 3000);
      expect(destroyed['endpoint_id']).to.equal('ep3');
      // Nothing reached this Felix about the other host's endpoint.
      expect(felix.inbox.messages.filter((m) => m['endpoint_id'] === 'ep4')).to.deep.equal([]);
    });

    it('keeps the last good state when the data file breaks', async () => {
      const base = fs.readFileSync(data, 'utf8');
      // A line that is not INI: the whole file is unusable, nothing may be destroyed.
      writeFileAtomic(data, base.replace('[endpoint 192_168_1_2]', '[endpoint 192_168_1_2\nthis is not ini'));
      await waitFor('syntax error logged', () => /data\.txt:\d+: expected '\[section\]'/.test(plugin.output()), 3000);
      // A bad MAC in one entry: that entry keeps its last good version.
      writeFileAtomic(data, base.replace('mac=ee:ee:ee:ee:ee:01', 'mac=ee:ee:zz'));
      await waitFor(
        'bad entry logged',
        () => /data\.txt:\d+: \[endpoint\] mac: not a MAC address \(keeping its last good version\)/.test(plugin.output()),
        3000,
      );
      expect(plugin.output()).not.to.include('ee:ee:zz');
      expect(felix.inbox.messages.filter((m) => m['type'] !== 'HEARTBEAT')).to.deep.equal([]);
      const reply = await resync.request({ type: 'RESYNCSTATE', resync_id: 'r-3', hostname: 'instance-1', issued: Date.now() });
      expect(reply['endpoint_count']).to.equal(2);
      const m = await felix.inbox.take((m) => m['endpoint_id'] === 'ep1', 'ep1 create');
      expect(m['mac']).to.equal('ee:ee:ee:ee:ee:01');
    });

    it('accepts a new RESYNCSTATE once the previous resync’s creates have gone out (the 2014 Felix resyncs every 5 s)', async () => {
      for (const id of ['r-a', 'r-b', 'r-c']) {
        const reply = await resync.request({ type: 'RESYNCSTATE', resync_id: id, hostname: 'instance-1', issued: Date.now() });
        expect(reply, id).to.include({ rc: 'SUCCESS', endpoint_count: 2 });
        for (let i = 0; i < 2; i++) await felix.inbox.take((m) => m['resync_id'] === id, `${id} create`);
      }
    });

    it('refuses a resync while one is being sent; after a lost push, the resync asked meanwhile still reaches the Felix that answers', async function () {
      this.timeout(15000);
      // instance-2 has two endpoints and its Felix does not answer: the push of ep5 waits for a reply.
      writeFileAtomic(data, fs.readFileSync(data, 'utf8') + endpointSection(5, 'instance-2', 'group1'));
      await waitFor('ep5 loaded', () => plugin.output().includes('"endpoint":"ep5"'), 3000);
      const ask = (id: string) => resync.request({ type: 'RESYNCSTATE', resync_id: id, hostname: 'instance-2', issued: Date.now() });
      expect(await ask('r-5')).to.include({ rc: 'SUCCESS', endpoint_count: 2 });
      expect(await ask('r-6')).to.deep.equal({ type: 'RESYNCSTATE', rc: 'FAILURE', message: 'resync in progress', endpoint_count: 0 });
      await waitFor('the plugin giving up on that Felix', () => plugin.output().includes('Felix did not answer'), 5000);
      const other = ws.track(await new ReplyPeer().bind(`tcp://127.0.0.1:${otherFelixPort}`));
      // What was lost was the push, not a create of r-5: a 2014 Felix waits for r-5 to complete before it asks again.
      for (let i = 0; i < 2; i++) await other.inbox.take((m) => m['resync_id'] === 'r-5', 'r-5 create', 5000);
      expect(await ask('r-7')).to.include({ rc: 'SUCCESS', endpoint_count: 2 });
      for (let i = 0; i < 2; i++) await other.inbox.take((m) => m['resync_id'] === 'r-7', 'r-7 create', 5000);
      expect(plugin.output().match(/RESYNCSTATE refused/g)).to.have.length(1);
    });

    it('sends HEARTBEAT to an idle Felix', async () => {
      await felix.inbox.take((m) => m['type'] === 'HEARTBEAT', 'heartbeat', 3000);
    });

    it('keeps pushing to a live Felix while another one is dead', async () => {
      // instance-2's Felix never answers; instance-1's must not wait for it.
      const base = fs.readFileSync(data, 'utf8');
      fs.writeFileSync(data, base + endpointSection(5, 'instance-2', 'group1') + endpointSection(6, 'instance-1', 'group1'));
      const m = await felix.inbox.take((m) => m['type'] === 'ENDPOINTCREATED', 'create for the live Felix', 3000);
      expect(m['endpoint_id']).to.equal('ep6');
    });

    it('answers every malformed request with an error rc and keeps serving', async () => {
      const cases: Array<[string, Array<string | Buffer>, Record<string, unknown>]> = [
        ['not JSON', ['{nope'], { type: 'ERROR', rc: 'INVALID' }],
        ['not an object', ['[1,2]'], { type: 'ERROR', rc: 'INVALID' }],
        ['no type', ['{"resync_id":"x"}'], { type: 'ERROR', rc: 'INVALID' }],
        ['unknown type', ['{"type":"BOGUS"}'], { type: 'BOGUS', rc: 'FAILURE' }],
        ['missing field', ['{"type":"RESYNCSTATE","hostname":"instance-1"}'], { type: 'RESYNCSTATE', rc: 'INVALID' }],
        ['wrong field type', ['{"type":"RESYNCSTATE","resync_id":"x","hostname":7}'], { type: 'RESYNCSTATE', rc: 'INVALID' }],
        ['two frames', ['{"type":"HEARTBEAT"}', 'extra'], { type: 'ERROR', rc: 'INVALID' }],
        ['empty frame', [''], { type: 'ERROR', rc: 'INVALID' }],
        ['huge string', [JSON.stringify({ type: 'RESYNCSTATE', resync_id: 'x'.repeat(1 << 20), hostname: [] })], { type: 'RESYNCSTATE', rc: 'INVALID' }],
      ];
      for (const [name, frames, expected] of cases) {
        const reply = await resync.raw(...frames);
        expect(reply, name).to.include(expected);
        expect(reply['message'], name).to.be.a('string').and.not.equal('');
      }
      expect(await resync.request({ type: 'HEARTBEAT' })).to.deep.equal({ type: 'HEARTBEAT', rc: 'SUCCESS', message: '' });
      const ok = await resync.request({ type: 'RESYNCSTATE', resync_id: 'r-4', hostname: 'instance-2', issued: '1700000000.5' });
      expect(ok).to.include({ rc: 'SUCCESS', endpoint_count: 1 });
    });
  });

  describe('network', () => {
    let groupsPort: number;
    let pubPort: number;
    let data: string;
    let acl: RequestPeer;
    let sub: SubscribePeer;

    beforeEach(async () => {
      [groupsPort, pubPort] = await freePorts(2);
      // Directory form: every *.txt is merged, as network-container writes them.
      data = path.join(ws.dir, 'data');
      fs.mkdirSync(data);
      fs.writeFileSync(path.join(data, 'felix.txt'), felixSection('instance-1', 1));
      fs.writeFileSync(path.join(data, '192_168_1_1.txt'), endpointSection(1, 'instance-1', 'group1'));
      fs.writeFileSync(path.join(data, '192_168_1_2.txt'), endpointSection(2, 'instance-1', 'group2'));
      fs.writeFileSync(path.join(data, '192_168_1_4.txt'), endpointSection(4, 'instance-2', 'group1'));
      fs.writeFileSync(path.join(data, 'ignored.md'), 'not data');
      await startPlugin('network', data, ['--groups-port', String(groupsPort), '--publish-port', String(pubPort), '--heartbeat-ms', '200']);
      sub = ws.track(new SubscribePeer(`tcp://127.0.0.1:${pubPort}`, ['groups', 'networkheartbeat']));
      acl = ws.track(new RequestPeer(`tcp://127.0.0.1:${groupsPort}`));
      // The subscription is in place once heartbeats arrive; it brought every group already (SPEC §4 v2).
      await sub.inbox.take((m) => m['topic'] === 'networkheartbeat', 'network heartbeat', 3000);
      for (const g of ['group1', 'group2']) await sub.inbox.take((m) => m['group'] === g, `${g} on subscription`, 3000);
    });

    it('publishes every group to a subscriber that never asks GETGROUPS, and again when it reconnects to a restarted plugin network', async () => {
      // The 2014 ACL manager asks GETGROUPS only at its own start; its SUB socket reconnects and re-subscribes.
      const once = ws.track(new SubscribePeer(`tcp://127.0.0.1:${pubPort}`, ['groups']));
      await once.inbox.take((m) => m['group'] === 'group1', 'group1 on subscription', 3000);
      await once.inbox.take((m) => m['group'] === 'group2', 'group2 on subscription', 3000);
      await stopAll();
      fs.rmSync(path.join(data, '192_168_1_2.txt'));
      await startPlugin('network', data, ['--groups-port', String(groupsPort), '--publish-port', String(pubPort), '--heartbeat-ms', '200']);
      const again = await once.inbox.take((m) => m['group'] === 'group1', 'group1 after the restart', 5000);
      expect(again['members']).to.deep.equal({ ep1: ['192.168.1.1'], ep4: ['192.168.1.4'] });
    });

    it('republishes deleted groups as tombstones (members {}) with the periodic republication', async () => {
      await stopAll();
      await startPlugin('network', data, [
        '--groups-port',
        String(groupsPort),
        '--publish-port',
        String(pubPort),
        '--heartbeat-ms',
        '200',
        '--republish-secs',
        '1',
      ]);
      const fresh = ws.track(new SubscribePeer(`tcp://127.0.0.1:${pubPort}`, ['groups']));
      await fresh.inbox.take((m) => m['group'] === 'group2', 'group2', 3000);
      fs.rmSync(path.join(data, '192_168_1_2.txt'));
      const emptied = (m: Record<string, unknown>) => m['group'] === 'group2' && Object.keys(m['members'] as object).length === 0;
      await fresh.inbox.take(emptied, 'group2 deletion', 3000);
      // The periodic republication (every second here) repeats it: a deletion the ACL manager missed heals.
      await fresh.inbox.take(emptied, 'group2 tombstone, republished', 4000);
      await fresh.inbox.take(emptied, 'group2 tombstone, republished again', 4000);
    });

    it('publishes every group after GETGROUPS, in the prototype’s shape', async () => {
      expect(await acl.request({ type: 'GETGROUPS', issued: Date.now() })).to.deep.equal({ type: 'GETGROUPS', rc: 'SUCCESS', message: '' });
      const g1 = await sub.inbox.take((m) => m['group'] === 'group1', 'group1');
      const g2 = await sub.inbox.take((m) => m['group'] === 'group2', 'group2');
      expect(g1).to.deep.include({
        topic: 'groups',
        type: 'GROUPUPDATE',
        members: { ep1: ['192.168.1.1'], ep4: ['192.168.1.4'] },
        rules: {
          inbound: [{ group: 'group1', cidr: null, protocol: null, port: null }],
          outbound: [
            { group: 'group1', cidr: null, protocol: null, port: null },
            { group: null, cidr: '0.0.0.0/0', protocol: null, port: null },
          ],
          inbound_default: 'deny',
          outbound_default: 'deny',
        },
      });
      expect(g2['members']).to.deep.equal({ ep2: ['192.168.1.2'] });
    });

    it('publishes a group when its members change, and members {} when it empties', async () => {
      fs.writeFileSync(path.join(data, '192_168_1_3.txt'), endpointSection(3, 'instance-1', 'group1'));
      const grown = await sub.inbox.take((m) => m['group'] === 'group1', 'group1 update', 3000);
      expect(Object.keys(grown['members'] as object).sort()).to.deep.equal(['ep1', 'ep3', 'ep4']);
      fs.rmSync(path.join(data, '192_168_1_2.txt'));
      const gone = await sub.inbox.take((m) => m['group'] === 'group2', 'group2 deletion', 3000);
      expect(gone['members']).to.deep.equal({});
      // group1 did not change this time, so it was not republished.
      await sub.inbox.none((m) => m['group'] === 'group1', 300);
    });

    it('answers malformed requests with an error rc and keeps serving', async () => {
      expect(await acl.raw('garbage')).to.include({ type: 'ERROR', rc: 'INVALID' });
      expect(await acl.raw('{"type":"GETACLSTATE"}')).to.include({ type: 'GETACLSTATE', rc: 'FAILURE' });
      expect(await acl.raw('{"type":"HEARTBEAT"}', '')).to.include({ type: 'ERROR', rc: 'INVALID' });
      expect(await acl.request({ type: 'HEARTBEAT' })).to.deep.equal({ type: 'HEARTBEAT', rc: 'SUCCESS', message: '' });
      expect(await acl.request({ type: 'GETGROUPS' })).to.include({ rc: 'SUCCESS' });
      await sub.inbox.take((m) => m['group'] === 'group2', 'group2 after bad input');
    });
  });

  describe('what it reads from its data directory, and what it logs (issue #11)', () => {
    let groupsPort: number;
    let pubPort: number;
    let metricsPort: number;
    let data: string;
    let logDir: string;
    const logFile = () => path.join(logDir, 'plugin-network.log');

    beforeEach(async () => {
      [groupsPort, pubPort, metricsPort] = await freePorts(3);
      data = path.join(ws.dir, 'data');
      logDir = path.join(ws.dir, 'log');
      fs.mkdirSync(data);
      fs.writeFileSync(path.join(data, 'felix.txt'), felixSection('instance-1', 1));
      fs.writeFileSync(path.join(data, '192_168_1_1.txt'), endpointSection(1, 'instance-1', 'group1'));
    });

    /** plugin network with a log file in `logDir` and /livez on `metricsPort`, once it says it is ready. */
    const start = () =>
      startPlugin('network', data, [
        '--log-dir',
        logDir,
        '--groups-port',
        String(groupsPort),
        '--publish-port',
        String(pubPort),
        '--metrics-port',
        String(metricsPort),
      ]);

    async function answersPromptly(): Promise<void> {
      const acl = ws.track(new RequestPeer(`tcp://127.0.0.1:${groupsPort}`, 2000));
      expect(await acl.request({ type: 'GETGROUPS', issued: Date.now() })).to.include({ rc: 'SUCCESS' });
      const live = await fetch(`http://127.0.0.1:${metricsPort}/livez`, { signal: AbortSignal.timeout(2000) });
      expect(live.status).to.equal(200);
    }

    it('reads only the file that changed, not the whole directory (an orchestrator under churn; issue #13)', async () => {
      for (let n = 2; n <= 200; n++)
        fs.writeFileSync(path.join(data, `ep${n}.txt`), endpointSection(n, 'instance-1', 'group1', `ee:ee:ee:ee:ee:${n.toString(16).padStart(2, '0')}`));
      const sub = ws.track(new SubscribePeer(`tcp://127.0.0.1:${pubPort}`, ['groups']));
      const reads = () =>
        fs
          .readFileSync(logFile(), 'utf8')
          .split('\n')
          .filter((l) => l.includes('"data files read"'))
          .map((l) => JSON.parse(l) as Json);
      await startPlugin('network', data, [
        '--log-dir',
        logDir,
        '--groups-port',
        String(groupsPort),
        '--publish-port',
        String(pubPort),
        '--log-severity-file',
        'DEBUG',
      ]);
      expect(reads().map((r) => [r['files'], r['all']])).to.deep.equal([[201, true]]);
      writeFileAtomic(path.join(data, 'ep7.txt'), endpointSection(7, 'instance-1', 'group2', 'ee:ee:ee:ee:ee:07'));
      const moved = await sub.inbox.take((m) => m['group'] === 'group2', 'group2 published', 5000);
      expect(Object.keys(moved['members'] as Json)).to.deep.equal(['ep7']);
      expect(
        reads()
          .slice(1)
          .map((r) => [r['files'], r['all']]),
      ).to.deep.equal([[1, false]]);
    });

    it('a FIFO named *.txt is skipped, at start and when it appears later: GETGROUPS and /livez answer promptly', async () => {
      execFileSync('mkfifo', [path.join(data, 'fifo.txt')]);
      const plugin = await start();
      await answersPromptly();
      // One that appears while running, with a real change beside it: the reload passes it by.
      const sub = ws.track(new SubscribePeer(`tcp://127.0.0.1:${pubPort}`, ['groups']));
      execFileSync('mkfifo', [path.join(data, 'later.txt')]);
      fs.writeFileSync(path.join(data, '192_168_1_3.txt'), endpointSection(3, 'instance-1', 'group1'));
      const grown = await sub.inbox.take((m) => m['group'] === 'group1' && Object.keys(m['members'] as object).includes('ep3'), 'group1 with ep3', 3000);
      expect(Object.keys(grown['members'] as object).sort()).to.deep.equal(['ep1', 'ep3']);
      await answersPromptly();
      expect(plugin.output()).to.match(/fifo\.txt: skipped: a FIFO, not a regular file/);
      expect(plugin.output()).to.match(/later\.txt: skipped: a FIFO, not a regular file/);
    });

    it('a symlink to a secret file is skipped and the secret never reaches the log, which is created 0640', async () => {
      const secret = path.join(ws.dir, 'secret');
      fs.writeFileSync(secret, 'api_token s3cr3t-line\napi_token = s3cr3t-value\n[s3cr3t-section]\n', { mode: 0o600 });
      fs.symlinkSync(secret, path.join(data, 'zz-link.txt'));
      fs.mkdirSync(path.join(data, 'dir.txt'));
      const plugin = await start();
      await answersPromptly();
      const log = fs.readFileSync(logFile(), 'utf8');
      expect(log + plugin.output()).not.to.include('s3cr3t');
      expect(log).to.match(/zz-link\.txt: skipped: a symbolic link, not a regular file/);
      expect(log).to.match(/dir\.txt: skipped: a directory, not a regular file/);
      // 0640, or tighter if the umask says so.
      const mode = fs.statSync(logFile()).mode & 0o777;
      expect(mode & ~0o640, mode.toString(8)).to.equal(0);
      expect(mode & 0o600, mode.toString(8)).to.equal(0o600);
    });

    it('a malformed line or value is reported by file, line and key, never by its value', async () => {
      fs.writeFileSync(path.join(data, 'a.txt'), '[felix h]\nip=1.2.3.4\napi_token s3cr3t-line\n');
      fs.writeFileSync(path.join(data, 'b.txt'), '[endpoint x]\nid=s3cr3t id\nip=s3cr3t-ip\nmac=s3cr3t-mac\nhost=h\n');
      fs.writeFileSync(path.join(data, 'c.txt'), '[endpoint y]\nid=y\nip=192.168.1.9,s3cr3t-ip2\nmac=ee:ee:ee:ee:ee:09\nhost=h\n');
      fs.writeFileSync(path.join(data, 'd.txt'), '[felix h]\nip=s3cr3t-felix\n\n[felix h2]\nip=1.2.3.4\nport=s3cr3t-port\n\n[s3cr3t-kind z]\nip=1.2.3.4\n');
      fs.writeFileSync(path.join(data, 'e.txt'), 's3cr3t-key = outside\n');
      const plugin = await start();
      await answersPromptly();
      const log = fs.readFileSync(logFile(), 'utf8');
      expect(log + plugin.output()).not.to.include('s3cr3t');
      for (const where of [
        /a\.txt:3: /,
        /b\.txt:2: \[endpoint\] id: /,
        /c\.txt:3: \[endpoint\] ip: /,
        /d\.txt:2: \[felix\] ip: /,
        /d\.txt:6: \[felix\] port: /,
        /d\.txt:8: /,
        /e\.txt:1: /,
      ])
        expect(log).to.match(where);
    });

    it('tightens an existing world-readable log file to 0640', async () => {
      fs.mkdirSync(logDir);
      fs.writeFileSync(logFile(), '', { mode: 0o644 });
      fs.chmodSync(logFile(), 0o644);
      await start();
      expect((fs.statSync(logFile()).mode & 0o777).toString(8)).to.equal('640');
    });
  });

  it('exits with a one-line reason on bad arguments', async () => {
    const r = await runCommand(PLUGIN, ['sideways']);
    expect(r.code).to.equal(2);
    expect(r.output.trim().split('\n')).to.have.length(1);
    expect(r.output).to.match(/^plugin: /);
    const r2 = await runCommand(PLUGIN, ['ep', '--ep-port', '70000']);
    expect(r2.code).to.equal(2);
    expect(r2.output.trim()).to.equal('plugin: --ep-port: bad value "70000": expected a number from 1 to 65535 (see --help)');
  });
});
