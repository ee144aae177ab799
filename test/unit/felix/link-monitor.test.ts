import { expect } from 'chai';
import { parseMonitorLine } from '../../../src/felix/dataplane/drivers/link-monitor.js';

describe('parseMonitorLine (`ip -o monitor link`, iproute2 6.x)', () => {
  it('reads a new or changed link: index, name without its @peer, and whether it is up', () => {
    expect(
      parseMonitorLine(
        '603: tapburst0001@peer1: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default \\    link/ether 8e:fb:8f:e4:aa:d9 brd ff:ff:ff:ff:ff:ff',
      ),
    ).to.deep.equal({ kind: 'up-or-changed', link: { index: 603, name: 'tapburst0001', up: true } });
    expect(
      parseMonitorLine('602: zz1@NONE: <BROADCAST,MULTICAST> mtu 1500 qdisc noop state DOWN group default \\    link/ether 0a:24:b1:6c:e8:53'),
    ).to.deep.equal({ kind: 'up-or-changed', link: { index: 602, name: 'zz1', up: false } });
    expect(parseMonitorLine('7: tap1: <NO-CARRIER,BROADCAST,MULTICAST,UP> mtu 1500 qdisc noqueue state LOWERLAYERDOWN')).to.deep.equal({
      kind: 'up-or-changed',
      link: { index: 7, name: 'tap1', up: true },
    });
  });

  it('reads a removal, and ignores what is not a link line', () => {
    expect(parseMonitorLine('Deleted 4: peer1@NONE: <BROADCAST,MULTICAST> mtu 1500 qdisc noop state DOWN group default')).to.deep.equal({
      kind: 'removed',
      index: 4,
      name: 'peer1',
    });
    expect(parseMonitorLine('')).to.equal(null);
    expect(parseMonitorLine('netlink receive error No buffer space available (105)')).to.equal(null);
    expect(parseMonitorLine('    link/ether 8e:fb:8f:e4:aa:d9 brd ff:ff:ff:ff:ff:ff')).to.equal(null);
  });
});
