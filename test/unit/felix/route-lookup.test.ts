/**
 * Felix's `/status/route` (issue #16): `ip -j route get` and `ip -j route
 * show match` output → outgoing interface, next hop and who made the route.
 * The JSON below is what iproute2 prints on a lab host (one line each).
 */
import { expect } from 'chai';
import { CommandError, type CommandRunner } from '../../../src/felix/dataplane/drivers/commands.js';
import { IpRouteLookup, parseRouteLookup } from '../../../src/felix/dataplane/drivers/route-lookup.js';

/** `ip -j route get 192.168.1.4` on instance-1: via instance-2. */
const GET_REMOTE = '[{"dst":"192.168.1.4","gateway":"198.18.0.2","dev":"v0","prefsrc":"198.18.0.1","flags":[],"uid":0,"cache":[]}]\n';
/** `ip -j route show match 192.168.1.4`: the default, a static /16 and BIRD's /32, all containing it. */
const MATCH_REMOTE =
  '[{"dst":"default","gateway":"198.18.0.254","dev":"v0","protocol":"boot","flags":[]},' +
  '{"dst":"192.168.0.0/16","gateway":"198.18.0.2","dev":"v0","protocol":"static","flags":[]},' +
  '{"dst":"192.168.1.4","gateway":"198.18.0.2","dev":"v0","protocol":"bird","flags":[]}]\n';

/** A local container: Felix's `addr dev tapX scope link` route, no gateway, proto boot (which iproute2 leaves out). */
const GET_LOCAL = '[{"dst":"192.168.1.1","dev":"tapaaaaaaaaaaa","prefsrc":"198.18.0.1","flags":[],"uid":0,"cache":[]}]\n';
const MATCH_LOCAL =
  '[{"dst":"default","gateway":"198.18.0.254","dev":"v0","protocol":"boot","flags":[]},' +
  '{"dst":"192.168.1.1","dev":"tapaaaaaaaaaaa","scope":"link","flags":[]}]\n';

describe('parseRouteLookup: ip -j route get / show match → the route', () => {
  it('a remote container: via the gateway, protocol of the most specific route with the same dev and gateway (bird)', () => {
    expect(parseRouteLookup(GET_REMOTE, MATCH_REMOTE)).to.deep.equal({ dev: 'v0', gateway: '198.18.0.2', protocol: 'bird', error: null });
  });

  it('does not depend on the order ip lists the routes in', () => {
    const reversed = JSON.stringify((JSON.parse(MATCH_REMOTE) as unknown[]).reverse());
    expect(parseRouteLookup(GET_REMOTE, reversed).protocol).to.equal('bird');
  });

  it('ignores a more specific route with another gateway (not the one the kernel chose)', () => {
    const match = JSON.stringify([
      { dst: '192.168.1.4', gateway: '198.18.0.9', dev: 'v0', protocol: 'bird', flags: [] },
      { dst: '192.168.0.0/16', gateway: '198.18.0.2', dev: 'v0', protocol: 'static', flags: [] },
    ]);
    expect(parseRouteLookup(GET_REMOTE, match)).to.deep.equal({ dev: 'v0', gateway: '198.18.0.2', protocol: 'static', error: null });
  });

  it('takes the default route when it is the only one with that gateway', () => {
    const get = '[{"dst":"8.8.8.8","gateway":"198.18.0.254","dev":"v0","prefsrc":"198.18.0.1","flags":[],"uid":0,"cache":[]}]';
    expect(parseRouteLookup(get, MATCH_REMOTE)).to.deep.equal({ dev: 'v0', gateway: '198.18.0.254', protocol: 'boot', error: null });
  });

  it('a local container: dev tapX, no gateway, no protocol when ip prints none', () => {
    expect(parseRouteLookup(GET_LOCAL, MATCH_LOCAL)).to.deep.equal({ dev: 'tapaaaaaaaaaaa', gateway: null, protocol: null, error: null });
  });

  it('IPv6: the /128 BIRD learned beats the /64', () => {
    const get = '[{"dst":"fd00:1::4","gateway":"fe80::2","dev":"v0","metric":1024,"flags":[],"pref":"medium"}]';
    const match = JSON.stringify([
      { dst: 'fd00:1::/64', gateway: 'fe80::2', dev: 'v0', protocol: 'static', metric: 1024, flags: [], pref: 'medium' },
      { dst: 'fd00:1::4', gateway: 'fe80::2', dev: 'v0', protocol: 'bird', metric: 32, flags: [], pref: 'medium' },
    ]);
    expect(parseRouteLookup(get, match)).to.deep.equal({ dev: 'v0', gateway: 'fe80::2', protocol: 'bird', error: null });
  });

  it('route get found it but show match lists nothing: the route, protocol unknown', () => {
    expect(parseRouteLookup(GET_REMOTE, '[]')).to.deep.equal({ dev: 'v0', gateway: '198.18.0.2', protocol: null, error: null });
  });

  for (const empty of ['[]', '[]\n', '{}', 'null'])
    it(`empty route get output ${JSON.stringify(empty)} → error "no route"`, () => {
      expect(parseRouteLookup(empty, MATCH_REMOTE)).to.deep.equal({ dev: null, gateway: null, protocol: null, error: 'no route' });
    });
});

describe("IpRouteLookup: the commands it runs and the kernel's refusal", () => {
  /** Answers `ip` from a table keyed by its arguments; a CommandError where the value is one. */
  const runner = (answers: Record<string, string | CommandError>, asked: string[][] = []): CommandRunner => ({
    run(cmd, args) {
      asked.push([cmd, ...args]);
      const a = answers[args.join(' ')];
      if (a === undefined) return Promise.reject(new Error(`unexpected ${cmd} ${args.join(' ')}`));
      return a instanceof CommandError ? Promise.reject(a) : Promise.resolve(a);
    },
  });

  it("asks route get, then show match, in the address's family", async () => {
    const asked: string[][] = [];
    const r = await new IpRouteLookup(runner({ '-j -4 route get 192.168.1.4': GET_REMOTE, '-j -4 route show match 192.168.1.4': MATCH_REMOTE }, asked)).lookup(
      '192.168.1.4',
    );
    expect(r).to.deep.equal({ dev: 'v0', gateway: '198.18.0.2', protocol: 'bird', error: null });
    expect(asked).to.deep.equal([
      ['ip', '-j', '-4', 'route', 'get', '192.168.1.4'],
      ['ip', '-j', '-4', 'route', 'show', 'match', '192.168.1.4'],
    ]);
  });

  it('the kernel\'s words when it has no route, without "RTNETLINK answers:"', async () => {
    const refusal = new CommandError('ip -j -6 route get fd00:9::1', 'RTNETLINK answers: Network is unreachable\n');
    const r = await new IpRouteLookup(runner({ '-j -6 route get fd00:9::1': refusal })).lookup('fd00:9::1');
    expect(r).to.deep.equal({ dev: null, gateway: null, protocol: null, error: 'Network is unreachable' });
  });

  it('a failing show match costs only the protocol', async () => {
    const r = await new IpRouteLookup(runner({ '-j -4 route get 192.168.1.4': GET_REMOTE })).lookup('192.168.1.4');
    expect(r).to.deep.equal({ dev: 'v0', gateway: '198.18.0.2', protocol: null, error: null });
  });
});
