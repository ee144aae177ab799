/**
 * End to end: the seed's scenario in a two-host lab of namespaces, with every
 * real component (plugin, ACL manager, Felix, BIRD) running as in the demo.
 */
import { expect } from 'chai';
import type { Lab, LabContainer } from '../../src/lab/lab.js';
import { formatMatrix, measureMatrix, probeOk } from '../../src/lab/matrix.js';
import { waitFor } from '../../src/common/poll.js';
import { useLab } from '../support/lab.js';
import { errorMessage } from '../../src/common/errors.js';

describe('lab end to end (two hosts, BIRD, all components)', function () {
  this.timeout(120000);
  const fixture = useLab('cle');
  let lab: Lab;
  let c1: LabContainer, c2: LabContainer, c4: LabContainer;

  before(async () => {
    lab = fixture.lab;
    c1 = await lab.addContainer('192.168.1.1', 'group1', 'instance-1');
    c2 = await lab.addContainer('192.168.1.2', 'group2', 'instance-1');
    c4 = await lab.addContainer('192.168.1.4', 'group1', 'instance-2');
  });

  async function matrixMatches(): Promise<boolean> {
    return (await measureMatrix(lab)).every(probeOk);
  }

  it('programs a route per local endpoint and learns remote ones through BIRD', async () => {
    const [h1, h2] = lab.hosts;
    await waitFor(
      'routes on both hosts',
      async () => {
        const r1 = await lab.routes(h1!);
        const r2 = await lab.routes(h2!);
        return (
          /^192\.168\.1\.1 dev tap\S+ scope link/m.test(r1) &&
          /^192\.168\.1\.2 dev tap/m.test(r1) &&
          /^192\.168\.1\.4 via 198\.18\.0\.2 dev fab0 proto bird/m.test(r1) &&
          /^192\.168\.1\.4 dev tap/m.test(r2) &&
          /^192\.168\.1\.1 via 198\.18\.0\.1 dev fab0 proto bird/m.test(r2)
        );
      },
      20000,
      100,
    );
  });

  it('lets containers of one group talk, across hosts too, and keeps groups apart', async () => {
    await waitFor('the seed’s connectivity rule', matrixMatches, 30000, 200).catch(async (err: unknown) => {
      throw new Error(`${errorMessage(err)}\n${formatMatrix(await measureMatrix(lab))}`);
    });
    expect(await lab.ping(c1, c4.ip)).to.equal(true);
    expect(await lab.tcp(c4, c1.ip)).to.equal(true);
    expect(await lab.ping(c2, c1.ip)).to.equal(false);
    expect(await lab.tcp(c2, c4.ip)).to.equal(false);
  });

  it('moves a container to another group: it changes sides', async () => {
    lab.setGroup(c2.ip, 'group1');
    await waitFor('192.168.1.2 to reach group1', async () => (await lab.ping(c2, c4.ip)) && (await lab.tcp(c1, c2.ip)), 20000, 100);
    lab.setGroup(c2.ip, 'group2');
    await waitFor('192.168.1.2 to be cut off from group1 again', async () => !(await lab.ping(c2, c4.ip)) && !(await lab.ping(c1, c2.ip)), 20000, 100);
  });

  it('makes an endpoint removed from the data unreachable', async () => {
    const c3 = await lab.addContainer('192.168.1.3', 'group1', 'instance-1');
    await waitFor('192.168.1.3 reachable from 192.168.1.4', () => lab.ping(c4, c3.ip), 20000, 100);
    lab.removeData(c3.ip);
    await waitFor('192.168.1.3 unreachable', async () => !(await lab.ping(c4, c3.ip)) && !(await lab.ping(c1, c3.ip)), 20000, 100);
    const routes = await lab.routes(lab.hosts[1]!);
    expect(routes).to.not.match(/^192\.168\.1\.3 /m);
  });
});
