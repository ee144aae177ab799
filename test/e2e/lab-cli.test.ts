/**
 * The built `calico-lab` command as an operator uses it, with three hosts:
 * up, add containers on hosts one, two and three, status, down — and nothing
 * left behind.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { runCommand, waitFor } from '../support/process.js';

const LAB = 'src/lab/main.js';

describe('calico-lab (built command, three hosts)', function () {
  this.timeout(120000);
  let dir: string;
  let prefix = '';

  const lab = (...args: string[]) => runCommand(LAB, [...args, '--dir', dir], { timeoutMs: 60000 });
  const ourNamespaces = async () => (await execa('ip', ['netns', 'list'])).stdout.split('\n').filter((l) => prefix !== '' && l.startsWith(`${prefix}-`));

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'calico-lab-cli-'));
  });

  after(async () => {
    if (fs.existsSync(path.join(dir, 'lab.json'))) await lab('down');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('brings up three hosts with full-mesh BGP', async () => {
    const r = await lab('up', '--hosts', '3');
    expect(r.code, r.output).to.equal(0);
    expect(r.output).to.match(/all BGP sessions established/);
    prefix = (JSON.parse(fs.readFileSync(path.join(dir, 'lab.json'), 'utf8')) as { prefix: string }).prefix;
    expect(await ourNamespaces()).to.have.length(4); // three hosts and the fabric
  });

  it('networks containers on every host; the group rule holds across all three', async () => {
    for (const [ip, group, host] of [['192.168.50.1', 'g1', 'instance-1'], ['192.168.50.2', 'g2', 'instance-2'], ['192.168.50.3', 'g1', 'instance-3']]) {
      const r = await lab('add-container', ip!, group!, '--host', host!);
      expect(r.code, r.output).to.equal(0);
      expect(r.output).to.include(`container ${ip} (${group}) on ${host}`);
    }
    const status = await waitFor('a status with the matrix as expected', async () => {
      const r = await lab('status');
      return r.code === 0 && !/MISMATCH|DEAD/.test(r.output) && (r.output.match(/ ok$/gm) ?? []).length === 6 ? r.output : '';
    }, 40000, 500);
    expect(status).to.match(/192\.168\.50\.1 \(g1, instance-1\)\s+-> 192\.168\.50\.3 \(g1, instance-3\)\s+expected yes  ping yes  tcp yes  ok/);
    expect(status).to.match(/192\.168\.50\.2 \(g2, instance-2\)\s+-> 192\.168\.50\.1 \(g1, instance-1\)\s+expected no   ping no   tcp no   ok/);
    expect(status).to.match(/instance-2 .*routes:\n(.*\n)*\s+192\.168\.50\.3 via 198\.18\.0\.3 dev fab0 proto bird/);
  });

  it('removes a container, then tears everything down', async () => {
    expect((await lab('remove-container', '192.168.50.3')).code).to.equal(0);
    const down = await lab('down');
    expect(down.code, down.output).to.equal(0);
    expect(await ourNamespaces()).to.deep.equal([]);
    expect(fs.existsSync(path.join(dir, 'lab.json'))).to.equal(false);
  });

  it('refuses bad commands with one line', async () => {
    const r = await lab('add-container', '192.168.500.1', 'g1');
    expect(r.code).to.not.equal(0);
    expect(r.output.trim().split('\n')).to.have.length(1);
    expect(r.output).to.match(/^calico-lab: /);
  });
});
