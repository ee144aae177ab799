/**
 * Fault tests (issue 7): in a two-host lab with every real component, kill -9
 * and restart each component in turn and in combinations while containers
 * exchange traffic; the group matrix must come back with no manual step, a
 * Felix restart must lose no packet of an established allowed flow, and the
 * worst outage per fault is reported. Then the 2014 prototype's known
 * failures, one test each. The lab runs with short connection timings
 * (3 s timeout, 1 s keepalive) so that hangs are noticed within seconds.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import type { Lab, LabContainer } from '../../src/lab/lab.js';
import { formatMatrix, measureMatrix, probeOk } from '../../src/lab/matrix.js';
import { OutageProber, OutageReport } from '../../src/lab/prober.js';
import { waitFor } from '../../src/common/poll.js';
import { writeFileAtomic } from '../../src/common/files.js';
import { useLab } from '../support/lab.js';
import { errorMessage } from '../../src/common/errors.js';

const TIMINGS = { connectionTimeoutMs: 3000, keepaliveMs: 1000, resyncIntervalSecs: 5 };
/** Long enough for any peer's request to time out: a hung process is noticed. */
const HANG_MS = 2 * TIMINGS.connectionTimeoutMs;
const RECOVERY_MS = 30000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface LogLine {
  time: number;
  msg: string;
  [key: string]: unknown;
}

interface FaultRow {
  fault: string;
  report: OutageReport;
  matrixMs: number;
  establishedLost?: string;
}

describe('faults in the lab (kill -9, restart, hangs)', function () {
  this.timeout(60000);
  const fixture = useLab('cfl', { timings: TIMINGS });
  const rows: FaultRow[] = [];
  let lab: Lab;
  let c1: LabContainer, c2: LabContainer, c4: LabContainer;
  let prober: OutageProber;
  /** One full matrix round on a healthy lab (denied pairs wait out their 1 s timeout): the floor of the "full matrix" column. */
  let matrixRoundMs = 0;

  before(async function () {
    this.timeout(90000);
    lab = fixture.lab;
    c1 = await lab.addContainer('192.168.1.1', 'group1', 'instance-1');
    c2 = await lab.addContainer('192.168.1.2', 'group2', 'instance-1');
    c4 = await lab.addContainer('192.168.1.4', 'group1', 'instance-2');
    await matrixBack('the first matrix');
    const t = Date.now();
    await matrixBack('one more matrix round');
    matrixRoundMs = Date.now() - t;
    // Same group across hosts must stay reachable; different groups must stay apart.
    prober = new OutageProber({ from: c1, to: c4 }, { from: c2, to: c4 });
  });

  after(() => {
    if (rows.length > 0) {
      const lines = rows.map(
        (r) =>
          `  ${r.fault.padEnd(62)} ${String(r.report.worstOutageMs).padStart(7)} ${String(r.matrixMs).padStart(8)}   ${`${r.report.failures}/${r.report.probes}`.padStart(7)}  ${`${r.report.leaks}/${r.report.deniedProbes}`.padStart(7)}` +
          (r.establishedLost !== undefined ? `   ${r.establishedLost}` : ''),
      );
      process.stdout.write(
        `\n  ${'fault'.padEnd(62)} ${'worst'.padStart(7)} ${'full'.padStart(8)}   ${'allowed'.padStart(7)}  ${'denied'.padStart(7)}   established flow\n` +
          `  ${''.padEnd(62)} ${'outage'.padStart(7)} ${'matrix'.padStart(8)}   ${'failed'.padStart(7)}  ${'leaked'.padStart(7)}   (ping -i 0.1)\n` +
          `  ${''.padEnd(62)} ${'ms'.padStart(7)} ${'ms'.padStart(8)}   ${'/probes'.padStart(7)}  ${'/probes'.padStart(7)}   lost/sent\n${lines.join('\n')}\n` +
          `  (worst outage: longest run of failed new flows 192.168.1.1 -> 192.168.1.4, one fresh ping every ~30 ms; full matrix: from the first\n` +
          `   kill until every pair (ping and TCP) is as the groups say, floor = one matrix round on a healthy lab = ${matrixRoundMs} ms)\n\n`,
      );
    }
  });

  /** Waits (bounded) until every pair of containers is as the groups say; returns how long it took. */
  async function matrixBack(what: string, since = Date.now()): Promise<number> {
    await waitFor(what, async () => (await measureMatrix(lab)).every(probeOk), RECOVERY_MS, 100).catch(async (err: unknown) => {
      throw new Error(`${errorMessage(err)}\n${formatMatrix(await measureMatrix(lab))}`);
    });
    return Date.now() - since;
  }

  function logLines(file: string, since: number): LogLine[] {
    const text = fs.readFileSync(path.join(lab.logDir, file), 'utf8');
    return text
      .split('\n')
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as LogLine];
        } catch {
          return []; // a torn last line
        }
      })
      .filter((l) => l.time >= since);
  }

  const felixLog = (host: string) => `felix-instance-${host}.log`;

  /** A group change still goes plugin network → ACL manager → both Felixes: 192.168.1.2 joins group1, then leaves. */
  async function groupChangePropagates(): Promise<void> {
    lab.setGroup(c2.ip, 'group1');
    await waitFor(
      '192.168.1.2 to reach group1 across hosts',
      async () => (await lab.ping(c2, c4.ip, 0.3)) && (await lab.ping(c4, c2.ip, 0.3)),
      RECOVERY_MS,
      100,
    );
    lab.setGroup(c2.ip, 'group2');
    await waitFor(
      '192.168.1.2 to be cut off from group1 again',
      async () => !(await lab.ping(c2, c4.ip, 0.3)) && !(await lab.ping(c4, c2.ip, 0.3)),
      RECOVERY_MS,
      100,
    );
  }

  /** A long-lived allowed flow: one ping process (one conntrack entry), `count` packets 100 ms apart. */
  function establishedPing(count: number) {
    const child = execa('ip', ['netns', 'exec', c1.ns, 'ping', '-n', '-i', '0.1', '-W', '1', '-c', String(count), c4.ip], {
      reject: false,
      timeout: count * 100 + 10000,
    });
    const done = child.then((r) => {
      const m = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
      if (!m) throw new Error(`no ping statistics: ${r.stdout} ${r.stderr}`);
      return { sent: Number(m[1]), received: Number(m[2]), endedAt: Date.now() };
    });
    // A test that fails before awaiting it must not leave an unhandled rejection behind.
    done.catch(() => {});
    return { done };
  }

  /** A new container on instance-2 goes plugin ep → Felix: reachable from group1 across hosts, not from group2; then removed. */
  async function newContainerReachable(ip: string): Promise<void> {
    const c = await lab.addContainer(ip, 'group1', 'instance-2');
    try {
      await waitFor(`${ip} reachable from 192.168.1.1`, () => lab.ping(c1, c.ip, 0.3), RECOVERY_MS, 100);
      expect(await lab.ping(c2, c.ip), `group2 reaches the new group1 endpoint ${ip}`).to.equal(false);
    } finally {
      await lab.removeContainer(c.ip);
    }
  }

  /**
   * Runs one fault while the prober runs: `apply` kills and restarts; then
   * the matrix must come back, every process must be running and a group
   * change must still propagate (plus `check`, for paths a group change does not use).
   */
  async function fault(name: string, apply: () => Promise<void>, opts: { established?: boolean; check?: () => Promise<void> } = {}): Promise<void> {
    const flow = opts.established ? establishedPing(100) : undefined;
    prober.start();
    let report: OutageReport;
    let matrixMs: number;
    let recoveredAt: number;
    try {
      await sleep(1000);
      const t0 = Date.now();
      await apply();
      matrixMs = await matrixBack(`the matrix after: ${name}`, t0);
      recoveredAt = Date.now();
      await sleep(1000);
    } finally {
      report = await prober.stop();
    }
    const row: FaultRow = { fault: name, report, matrixMs };
    rows.push(row);
    if (flow) {
      const { sent, received, endedAt } = await flow.done;
      row.establishedLost = `${sent - received}/${sent}`;
      // The flow must have spanned the restart and the recovery, or it proves nothing.
      expect(endedAt, 'the established ping ended before the matrix came back').to.be.greaterThan(recoveredAt);
      expect(sent - received, `packets of the established ping lost across "${name}"`).to.equal(0);
    }
    expect(report.leaks, `denied pair got through during "${name}"`).to.equal(0);
    expect(report.endedDown, `allowed pair still down after "${name}"`).to.equal(false);
    expect(
      lab
        .processes()
        .filter((p) => !p.alive)
        .map((p) => p.name),
      'processes not running',
    ).to.deep.equal([]);
    await groupChangePropagates();
    await opts.check?.();
  }

  const killRestart = async (...names: string[]) => {
    for (const n of names) await lab.kill(n);
    for (const n of names) await lab.restart(n);
  };

  describe('kill -9 and restart, while containers exchange traffic', () => {
    it('plugin ep', () => fault('kill -9 + restart plugin ep', () => killRestart('plugin-ep'), { check: () => newContainerReachable('192.168.1.7') }));
    it('plugin network', () => fault('kill -9 + restart plugin network', () => killRestart('plugin-network')));
    it('ACL manager', () => fault('kill -9 + restart ACL manager', () => killRestart('acl-manager')));
    it('Felix on host one, losing no packet of an established flow', () =>
      fault('kill -9 + restart Felix instance-1', () => killRestart('felix-instance-1'), { established: true }));
    it('Felix on host two, losing no packet of an established flow', () =>
      fault('kill -9 + restart Felix instance-2', () => killRestart('felix-instance-2'), { established: true }));
    it('BIRD on host two', () => fault('kill -9 + restart BIRD instance-2', () => killRestart('bird-instance-2')));
    it('ACL manager and plugin network together, manager back first', () =>
      fault('kill both; restart ACL manager, 1 s later plugin network', async () => {
        await lab.kill('plugin-network');
        await lab.kill('acl-manager');
        await lab.restart('acl-manager');
        await sleep(1000);
        await lab.restart('plugin-network');
      }));
    it('plugin ep and Felix on host two, Felix back first', () =>
      fault(
        'kill both; restart Felix instance-2, 2 s later plugin ep',
        async () => {
          await lab.kill('plugin-ep');
          await lab.kill('felix-instance-2');
          await lab.restart('felix-instance-2');
          await sleep(2000);
          await lab.restart('plugin-ep');
        },
        { established: true, check: () => newContainerReachable('192.168.1.9') },
      ));
    it('everything on host one, restarted in reverse order', () =>
      fault(
        'kill all of host one; restart BIRD, Felix, ACL mgr, network, ep',
        async () => {
          const all = ['plugin-ep', 'plugin-network', 'acl-manager', 'felix-instance-1', 'bird-instance-1'];
          for (const n of all) await lab.kill(n);
          for (const n of [...all].reverse()) await lab.restart(n);
        },
        { check: () => newContainerReachable('192.168.1.8') },
      ));
  });

  describe('the 2014 prototype’s known failures', () => {
    // A failed test must not leave 192.168.1.2 in the wrong group for the next one.
    afterEach(() => {
      if (c2.group !== 'group2') lab.setGroup(c2.ip, 'group2');
    });

    it('after a plugin network restart the ACL manager rebuilds its request socket and resyncs', async () => {
      await lab.kill('plugin-network');
      // Only a GETGROUPS can tell the manager: a fresh plugin publishes its groups when asked.
      lab.setGroup(c2.ip, 'group1');
      await lab.restart('plugin-network');
      await waitFor(
        '192.168.1.2 in group1 after the plugin restart',
        async () => (await lab.ping(c2, c4.ip, 0.3)) && (await lab.ping(c1, c2.ip, 0.3)),
        RECOVERY_MS,
        100,
      );
      lab.setGroup(c2.ip, 'group2');
      await matrixBack('the matrix with 192.168.1.2 back in group2');
    });

    it('Felix keeps its ACL subscriptions across an ACL manager restart', async () => {
      await lab.kill('acl-manager');
      lab.setGroup(c2.ip, 'group1');
      await sleep(500);
      await lab.restart('acl-manager');
      await waitFor(
        '192.168.1.2 in group1 after the ACL manager restart',
        async () => (await lab.ping(c2, c4.ip, 0.3)) && (await lab.ping(c4, c2.ip, 0.3)),
        RECOVERY_MS,
        100,
      );
      // A change after the reconnection reaches both Felixes' subscriptions too.
      lab.setGroup(c2.ip, 'group2');
      await matrixBack('the matrix after a change following the ACL manager restart');
    });

    it('resyncs go on after a resync of 0 endpoints, and a later endpoint still works', async () => {
      const file = lab.dataFile(c4);
      const saved = fs.readFileSync(file, 'utf8');
      lab.removeData(c4.ip);
      await waitFor('192.168.1.4 gone from instance-2', async () => !/^192\.168\.1\.4 /m.test(await lab.routes(lab.hosts[1]!)), RECOVERY_MS, 100);
      const t0 = Date.now();
      await killRestart('felix-instance-2');
      await waitFor(
        'a resync of 0 endpoints on instance-2',
        () => logLines(felixLog('2'), t0).some((l) => l.msg === 'resync complete' && l.endpoints === 0),
        RECOVERY_MS,
        100,
      );
      const t1 = Date.now();
      writeFileAtomic(file, saved);
      await matrixBack('the matrix with 192.168.1.4 back');
      await waitFor(
        'a later periodic resync on instance-2 that includes 192.168.1.4',
        () => logLines(felixLog('2'), t1).some((l) => l.msg === 'resync complete' && l.endpoints === 1),
        RECOVERY_MS,
        200,
      );
    });

    it('Felix resyncs after a keepalive to a hung plugin was lost', async () => {
      const t0 = Date.now();
      await lab.pause('plugin-ep');
      try {
        await sleep(HANG_MS);
      } finally {
        await lab.resume('plugin-ep');
      }
      for (const host of ['1', '2']) {
        await waitFor(
          `Felix instance-${host} to resync after its request to the plugin timed out`,
          () => {
            const lines = logLines(felixLog(host), t0);
            const lost = lines.find((l) => l.peer === 'plugin' && l.msg === 'request socket timed out; recreating it');
            return lost !== undefined && lines.some((l) => l.msg === 'resync complete' && l.time > lost.time);
          },
          RECOVERY_MS,
          200,
        );
      }
      await matrixBack('the matrix after the plugin hang');
    });

    it('a GETACLSTATE lost to a dead ACL manager is asked again: the new endpoint gets its ACLs', async () => {
      await lab.kill('acl-manager');
      const t0 = Date.now();
      const c5 = await lab.addContainer('192.168.1.5', 'group1', 'instance-2');
      try {
        await waitFor(
          'instance-2 to hear of 192.168.1.5',
          () => logLines(felixLog('2'), t0).some((l) => l.msg === 'endpoint created' && l.endpoint === c5.id),
          RECOVERY_MS,
          100,
        );
        await sleep(500);
        await lab.restart('acl-manager');
        await waitFor(
          '192.168.1.5 reachable from group1 on both hosts',
          async () => (await lab.ping(c1, c5.ip, 0.3)) && (await lab.ping(c4, c5.ip, 0.3)),
          RECOVERY_MS,
          100,
        );
        expect(await lab.ping(c2, c5.ip), 'group2 reaches the new group1 endpoint').to.equal(false);
      } finally {
        await lab.removeContainer(c5.ip);
      }
    });

    it('Felix rebinds its endpoint socket after the plugin went silent: a new container still reaches it', async () => {
      const t0 = Date.now();
      await lab.pause('plugin-ep');
      try {
        await sleep(HANG_MS);
      } finally {
        await lab.resume('plugin-ep');
      }
      await waitFor('Felix instance-2 to rebind its endpoint socket', () => logLines(felixLog('2'), t0).some((l) => /rebinding/.test(l.msg)), RECOVERY_MS, 100);
      await newContainerReachable('192.168.1.6');
    });
  });
});
