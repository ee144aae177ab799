/**
 * Kernel tables (issue #15) from the built `calico-felix` in a network
 * namespace of its own, with RaiseKernelLimits on: the neighbour counts are
 * the namespace's own (what `ip neigh show nud all` lists there), the
 * neighbour limits are not visible, conntrack is shown against the kernel's
 * nf_conntrack_max, and nothing is written: a child namespace only reports.
 * The root namespace's limits are only read, before and after.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Container, Netns, createNetns, deleteAllNetns, plugContainer } from '../support/netns.js';
import { FakeAclManager, FakePlugin, createMsg, ipc, tap, writeFelixConfig } from '../support/felix-peers.js';
import { Running, runCommand, startCommand, stopAll, waitFor } from '../support/process.js';
import { errorMessage } from '../../src/common/errors.js';

type Json = Record<string, unknown>;
const FELIX = 'src/felix/main.js';
const STATUS = 'src/status/main.js';
const METRICS_PORT = 9091;

const EP1 = { id: 'k1k1k1k1k1k1aa01', ip: '192.168.31.1' };
const EP2 = { id: 'k2k2k2k2k2k2aa02', ip: '192.168.31.2', ip6: 'fd00:31::2' };

/** The root namespace's limits, read only. */
const ROOT_LIMITS = [
  'net/ipv4/neigh/default/gc_thresh2',
  'net/ipv4/neigh/default/gc_thresh3',
  'net/ipv6/neigh/default/gc_thresh2',
  'net/ipv6/neigh/default/gc_thresh3',
  'net/netfilter/nf_conntrack_max',
];
const readRootLimits = () => ROOT_LIMITS.map((k) => [k, fs.existsSync(`/proc/sys/${k}`) ? fs.readFileSync(`/proc/sys/${k}`, 'utf8').trim() : null]);

describe('calico-felix kernel tables (built command, in a namespace)', function () {
  this.timeout(60000);
  let dir: string;
  let host: Netns;
  let c1: Container;
  let c2: Container;
  let plugin: FakePlugin;
  let aclmgr: FakeAclManager;
  let felix: Running;
  let cfg: string;
  let rootBefore: Array<Array<string | null>>;

  const log = () =>
    fs
      .readFileSync(path.join(dir, 'felix.log'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Json);

  async function metrics(): Promise<string> {
    return host.run(process.execPath, ['-e', `fetch('http://127.0.0.1:${METRICS_PORT}/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))`]);
  }

  const sample = (text: string, name: string): number | undefined => {
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    return line === undefined ? undefined : Number(line.slice(name.length + 1));
  };

  /** Entries in the namespace's neighbour table of one family, as ip(8) lists them. */
  async function neighbourEntries(family: 4 | 6): Promise<number> {
    return (await host.run('ip', [`-${family}`, 'neigh', 'show', 'nud', 'all'])).split('\n').filter((l) => l.trim() !== '').length;
  }

  before(async () => {
    rootBefore = readRootLimits();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'felix-ktables-'));
    host = await createNetns('kthost', 'cktb');
    c1 = await plugContainer(host, 'kc1', EP1.ip, tap(EP1.id));
    c2 = await plugContainer(host, 'kc2', `${EP2.ip},${EP2.ip6}`, tap(EP2.id));
    cfg = writeFelixConfig(dir, `[global]\nRaiseKernelLimits = true\n\n[metrics]\nMetricsPort = ${METRICS_PORT}\n`);
    plugin = new FakePlugin(ipc(dir, 'plugin.sock'), ipc(dir, 'felix.sock'));
    plugin.endpoints.set(EP1.id, createMsg(EP1, c1.mac));
    plugin.endpoints.set(EP2.id, { ...createMsg(EP2, c2.mac), addrs: [{ addr: EP2.ip }, { addr: EP2.ip6 }] });
    await plugin.listen();
    aclmgr = new FakeAclManager();
    await aclmgr.bind(ipc(dir, 'acl.sock'), ipc(dir, 'aclpub.sock'));
    felix = startCommand(FELIX, ['--config-file', cfg], { netns: host.name });
    await waitFor(
      'both endpoints routed',
      async () => {
        const r = await host.run('ip', ['-6', 'route', 'show']);
        return r.includes(`${EP2.ip6} dev ${tap(EP2.id)}`) && (await host.run('ip', ['route', 'show'])).includes(`${EP1.ip} dev ${tap(EP1.id)}`);
      },
      15000,
    ).catch((err: unknown) => {
      throw new Error(`${errorMessage(err)}\n${felix.output()}`);
    });
  });

  after(async () => {
    // Unset if the before hook failed.
    (plugin as FakePlugin | undefined)?.close();
    (aclmgr as FakeAclManager | undefined)?.close();
    await stopAll();
    await deleteAllNetns();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('exports the namespace’s own neighbour counts without a limit, and conntrack against nf_conntrack_max', async () => {
    const entries = (family: 4 | 6, text: string) => sample(text, `calico_felix_kernel_table_entries{table="ipv${family}-neighbours",scope="namespace"}`);
    // Felix reads every 10 s (and when endpoints are added): wait until its reading matches what ip(8) lists.
    const text = (await waitFor(
      'neighbour counts as ip neigh lists them',
      async () => {
        const t = await metrics();
        return entries(4, t) === (await neighbourEntries(4)) && entries(6, t) === (await neighbourEntries(6)) ? t : null;
      },
      25000,
    ))!;
    // Felix's permanent entries for the three endpoint addresses are among them.
    expect(entries(4, text)).to.be.at.least(2);
    expect(entries(6, text)).to.be.at.least(1);
    expect(text).not.to.match(/^calico_felix_kernel_table_entries\{[^}]*scope="kernel"/m);
    expect(text).not.to.match(/^calico_felix_kernel_table_limit\{table="ipv[46]-neighbours"\}/m);
    const max = Number((await host.run('cat', ['/proc/sys/net/netfilter/nf_conntrack_max'])).trim());
    expect(sample(text, 'calico_felix_kernel_table_limit{table="conntrack"}')).to.equal(max);
    expect(sample(text, 'calico_felix_kernel_table_entries{table="conntrack",scope="namespace"}')).to.be.a('number').and.at.least(0);
  });

  it('shows the tables on /status and in calico-status: limits not visible from a network namespace', async () => {
    const r = await runCommand(STATUS, ['--url', `http://127.0.0.1:${METRICS_PORT}`, '--json'], { netns: host.name });
    const status = (JSON.parse(r.output) as Json[])[0]!['status'] as Json;
    const tables = status['kernelTables'] as Json[];
    expect(tables.map((t) => [t['table'], t['scope'], t['limit'] === null ? null : typeof t['limit'], t['sysctl']])).to.deep.equal([
      ['ipv4-neighbours', 'namespace', null, 'net.ipv4.neigh.default.gc_thresh3'],
      ['ipv6-neighbours', 'namespace', null, 'net.ipv6.neigh.default.gc_thresh3'],
      ['conntrack', 'namespace', 'number', 'net.netfilter.nf_conntrack_max'],
    ]);
    expect(status['warnings']).to.deep.equal([]);
    // The existing fields are still there.
    expect(status['facts']).to.include({ endpoints: 2 });

    const text = await runCommand(STATUS, ['--url', `http://127.0.0.1:${METRICS_PORT}`], { netns: host.name });
    expect(text.code, text.output).to.equal(0);
    expect(text.output).to.match(/^ {2}kernel table\s+entries\s+limit\s+counted in$/m);
    expect(text.output).to.match(/^ {2}ipv4-neighbours\s+\d+\s+limit not visible from a network namespace\s+this namespace$/m);
    expect(text.output).to.match(/^ {2}ipv6-neighbours\s+\d+\s+limit not visible from a network namespace\s+this namespace$/m);
    expect(text.output).to.match(/^ {2}conntrack\s+\d+\s+\d+ \(\d+%\)\s+this namespace$/m);
    expect(text.output).not.to.include('WARNING');
  });

  it('says it only reports, raises nothing, and leaves the root namespace’s limits as they were', () => {
    const lines = log();
    const said = lines.filter((l) => String(l['msg']).startsWith('kernel tables: in a network namespace'));
    expect(said).to.have.length(1);
    expect(said[0]).to.include({ raiseLimits: true, component: 'kernel-tables' });
    expect(lines.filter((l) => /^(raised|cannot raise) /.test(String(l['msg'])))).to.deep.equal([]);
    expect(readRootLimits()).to.deep.equal(rootBefore);
  });

  it('stops with one line naming file, section and key on a bad RaiseKernelLimits', async () => {
    const bad = path.join(dir, 'bad.cfg');
    fs.writeFileSync(bad, '[global]\nPluginAddress = 10.0.0.1\nACLAddress = 10.0.0.1\nRaiseKernelLimits = sometimes\n');
    const r = await runCommand(FELIX, ['--config-file', bad], { netns: host.name });
    expect(r.code).to.equal(1);
    expect(r.output.trim()).to.equal(`calico-felix: ${bad}:4: [global] RaiseKernelLimits: bad value "sometimes": expected true or false`);
  });
});
