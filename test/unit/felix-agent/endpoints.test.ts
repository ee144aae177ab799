/** State-sequence tests of Felix's endpoint protocol (SPEC §3) against recording sinks. */
import { expect } from 'chai';
import { pino } from 'pino';
import { EndpointManager, EndpointSpec } from '../../../src/felix/endpoints.js';
import { EndpointCreated, EndpointDestroyed, EndpointUpdated, ResyncResponse } from '../../../src/common/wire/endpoint-api.js';
import { emptyRules } from '../../../src/common/wire/rules.js';

class Recorder {
  readonly calls: string[] = [];
  readonly programmed = new Map<string, EndpointSpec>();
  addressProblem() {
    return Promise.resolve(null);
  }
  upsertEndpoint(ep: EndpointSpec) {
    this.programmed.set(ep.id, ep);
    this.calls.push(`upsert ${ep.id} ${ep.enabled ? 'on' : 'off'} ${ep.addrs.join(',')}`);
  }
  setAcls(id: string) {
    this.calls.push(`acls ${id}`);
  }
  removeEndpoint(id: string) {
    this.programmed.delete(id);
    this.calls.push(`remove ${id}`);
  }
  cleanupStale() {
    this.calls.push('cleanup');
  }
  watch(id: string) {
    this.calls.push(`watch ${id}`);
  }
  unwatch(id: string) {
    this.calls.push(`unwatch ${id}`);
  }
}

/** A distinct address per endpoint id (addresses have one owner). */
const addrOf = (id: string): string => {
  let h = 0;
  for (const ch of id) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return `192.168.${h % 250}.${((h >>> 8) % 250) + 1}`;
};

const create = (id: string, resync: string | null = null, over: Partial<EndpointCreated> = {}): EndpointCreated => ({
  type: 'ENDPOINTCREATED',
  endpoint_id: id,
  mac: 'ee:ee:ee:ee:ee:01',
  addrs: [{ addr: addrOf(id) }],
  state: 'enabled',
  resync_id: resync,
  issued: 1,
  ...over,
});
const update = (id: string, over: Partial<EndpointUpdated> = {}): EndpointUpdated => ({
  type: 'ENDPOINTUPDATED',
  endpoint_id: id,
  mac: 'ee:ee:ee:ee:ee:01',
  addrs: [{ addr: '192.168.1.9' }],
  state: 'enabled',
  issued: 1,
  ...over,
});
const destroy = (id: string): EndpointDestroyed => ({ type: 'ENDPOINTDESTROYED', endpoint_id: id, issued: 1 });
const resyncReply = (count: number, rc: ResyncResponse['rc'] = 'SUCCESS'): ResyncResponse => ({ type: 'RESYNCSTATE', rc, message: '', endpoint_count: count });

function setup() {
  const rec = new Recorder();
  const m = new EndpointManager({ log: pino({ level: 'silent' }), dataplane: rec, acls: rec, interfacePrefix: 'tap' });
  return { rec, m };
}

describe('EndpointManager', () => {
  it('creates, updates and destroys, answering at once', () => {
    const { rec, m } = setup();
    expect(m.handle(create('0123456789abcdef')).rc).to.equal('SUCCESS');
    expect(rec.programmed.get('0123456789abcdef')!.ifname).to.equal('tap0123456789a');
    expect(m.handle(update('0123456789abcdef', { state: 'disabled' })).rc).to.equal('SUCCESS');
    expect(m.handle(destroy('0123456789abcdef')).rc).to.equal('SUCCESS');
    expect(rec.calls).to.deep.equal([
      `upsert 0123456789abcdef on ${addrOf('0123456789abcdef')}`,
      'watch 0123456789abcdef',
      'upsert 0123456789abcdef off 192.168.1.9',
      'unwatch 0123456789abcdef',
      'remove 0123456789abcdef',
    ]);
  });

  it('answers NOTEXIST for an unknown endpoint, and treats a repeated create as an update', () => {
    const { rec, m } = setup();
    expect(m.handle(update('nope')).rc).to.equal('NOTEXIST');
    expect(m.handle(destroy('nope')).rc).to.equal('NOTEXIST');
    m.handle(create('a'));
    m.handle(create('a', null, { mac: 'ee:ee:ee:ee:ee:02', interface_name: 'tapother-a' }));
    expect(rec.calls.filter((c) => c.startsWith('watch'))).to.deep.equal(['watch a']);
    expect(rec.programmed.get('a')).to.include({ mac: 'ee:ee:ee:ee:ee:02', ifname: 'tapother-a' });
  });

  it('refuses an id whose first 11 characters clash with another endpoint', () => {
    const { m } = setup();
    m.handle(create('abcdefghijk-1'));
    const r = m.handle(create('abcdefghijk-2'));
    expect(r.rc).to.equal('INVALID');
    expect(r.message).to.match(/abcdefghijk-1/);
  });

  it('names an id with other characters by a hash (SPEC §3 v2); two such ids never clash, and the slot is free again after a destroy', () => {
    const { rec, m } = setup();
    expect(m.handle(create('host1:ctr/web')).rc).to.equal('SUCCESS');
    expect(m.handle(create('host1:ctr/api')).rc).to.equal('SUCCESS');
    const [web, api] = ['host1:ctr/web', 'host1:ctr/api'].map((id) => rec.programmed.get(id)!.ifname);
    expect(web).to.match(/^tapx[0-9a-f]{10}$/);
    expect(api)
      .to.match(/^tapx[0-9a-f]{10}$/)
      .and.not.equal(web);
    m.handle(create('abcdefghijk-1'));
    m.handle(destroy('abcdefghijk-1'));
    expect(m.handle(create('abcdefghijk-2')).rc).to.equal('SUCCESS');
  });

  it('keeps ACLs only for known endpoints', () => {
    const { rec, m } = setup();
    m.aclUpdate('ghost', { v4: emptyRules(), v6: emptyRules() });
    m.handle(create('a'));
    m.aclUpdate('a', { v4: emptyRules(), v6: emptyRules() });
    expect(rec.calls.filter((c) => c.startsWith('acls'))).to.deep.equal(['acls a']);
    expect(m.endpoints.get('a')!.acls).to.not.equal(null);
  });

  describe('what Felix trusts (SPEC §3 v2)', () => {
    it("refuses an interface without the prefix, or another endpoint's interface or address; nothing changes", () => {
      const { rec, m } = setup();
      m.handle(create('a'));
      const before = [...rec.calls];
      const rows: [EndpointCreated | EndpointUpdated, RegExp][] = [
        [create('b', null, { interface_name: 'uplink0' }), /must start with tap/],
        [create('b', null, { interface_name: 'tapa' }), /interface tapa belongs to endpoint a/],
        [create('b', null, { addrs: [{ addr: addrOf('a') }] }), /address .* belongs to endpoint a/],
        [create('b', null, { addrs: [{ addr: '192.168.200.1' }, { addr: addrOf('a') }] }), /belongs to endpoint a/],
      ];
      for (const [msg, why] of rows) {
        const r = m.handle(msg);
        expect(r.rc, JSON.stringify(msg)).to.equal('INVALID');
        expect(r.message).to.match(why);
      }
      m.handle(create('b'));
      expect(m.handle(update('b', { addrs: [{ addr: addrOf('a') }] })).rc, 'an update cannot take it either').to.equal('INVALID');
      expect(rec.calls.slice(before.length)).to.deep.equal(['upsert b on ' + addrOf('b'), 'watch b']);
      m.handle(destroy('a'));
      expect(m.handle(update('b', { addrs: [{ addr: addrOf('a') }] })).rc, 'free once a is gone').to.equal('SUCCESS');
    });

    it('refuses what the host forbids (its own address, the fabric), with the reason', () => {
      const { rec, m } = setup();
      const r = m.handle(create('a'), '198.18.0.2 is on the link of fab0, which is not an endpoint interface');
      expect(r).to.deep.include({ rc: 'INVALID', message: '198.18.0.2 is on the link of fab0, which is not an endpoint interface' });
      expect(rec.calls).to.deep.equal([]);
      expect(m.newAddresses(create('a', null, { addrs: [{ addr: 'FD00::1' }, { addr: 'fd00::1' }] }))).to.deep.equal(['fd00::1']);
    });

    it('a create of the current resync takes what a stale endpoint holds; a confirmed one keeps it', () => {
      const { rec, m } = setup();
      m.handle(create('old', null, { interface_name: 'tapshared' }));
      m.beginResync('r1');
      expect(m.handle(create('new', 'r1', { interface_name: 'tapshared' })).rc, 'old is stale: not confirmed by r1').to.equal('SUCCESS');
      expect([...m.endpoints.keys()]).to.deep.equal(['new']);
      expect(rec.calls).to.include('remove old');
      const r = m.handle(create('third', 'r1', { interface_name: 'tapshared' }));
      expect(r.rc, 'new is confirmed by r1').to.equal('INVALID');
      m.resyncReplied('r1', resyncReply(2));
      expect(m.resyncInProgress, 'the refused create counted: the resync is complete').to.equal(null);
      expect([...m.endpoints.keys()]).to.deep.equal(['new']);
    });

    it('outside a resync the first owner keeps what it holds', () => {
      const { m } = setup();
      m.handle(create('first', null, { interface_name: 'tapx' }));
      expect(m.handle(create('second', 'not-the-current-resync', { interface_name: 'tapx' })).rc).to.equal('INVALID');
      expect([...m.endpoints.keys()]).to.deep.equal(['first']);
    });
  });

  describe('resync', () => {
    const orders: Array<[string, (m: EndpointManager) => void]> = [
      [
        'reply first',
        (m) => {
          m.resyncReplied('r1', resyncReply(2));
          m.handle(create('b', 'r1'));
          m.handle(create('c', 'r1'));
        },
      ],
      [
        'creates first',
        (m) => {
          m.handle(create('b', 'r1'));
          m.handle(create('c', 'r1'));
          m.resyncReplied('r1', resyncReply(2));
        },
      ],
      [
        'interleaved, with a repeat',
        (m) => {
          m.handle(create('b', 'r1'));
          m.resyncReplied('r1', resyncReply(2));
          m.handle(create('b', 'r1'));
          m.handle(create('c', 'r1'));
        },
      ],
    ];
    for (const [name, run] of orders) {
      it(`removes endpoints not in it once complete (${name})`, () => {
        const { rec, m } = setup();
        m.handle(create('a'));
        m.handle(create('b'));
        m.beginResync('r1');
        run(m);
        expect(m.resyncInProgress).to.equal(null);
        expect([...m.endpoints.keys()].sort()).to.deep.equal(['b', 'c']);
        expect(rec.calls.slice(-3)).to.deep.equal(['unwatch a', 'remove a', 'cleanup']);
        expect(m.resyncsCompleted).to.equal(1);
      });
    }

    it('is not complete until every create arrived', () => {
      const { rec, m } = setup();
      m.handle(create('a'));
      m.beginResync('r1');
      m.resyncReplied('r1', resyncReply(2));
      m.handle(create('b', 'r1'));
      expect(m.resyncInProgress).to.equal('r1');
      expect(rec.calls).to.not.include('cleanup');
      expect(m.endpoints.has('a')).to.equal(true);
    });

    it('completes at once with zero endpoints, removing everything, and a later resync still works', () => {
      const { rec, m } = setup();
      m.handle(create('a'));
      m.beginResync('r1');
      m.resyncReplied('r1', resyncReply(0));
      expect(m.endpoints.size).to.equal(0);
      m.beginResync('r2');
      m.handle(create('x', 'r2'));
      m.resyncReplied('r2', resyncReply(1));
      expect([...m.endpoints.keys()]).to.deep.equal(['x']);
      expect(rec.calls.filter((c) => c === 'cleanup')).to.have.length(2);
    });

    it('keeps endpoints pushed while it runs, and ignores creates of an older resync for completion', () => {
      const { m } = setup();
      m.beginResync('r2');
      m.handle(create('old', 'r1'));
      m.handle(create('pushed', null));
      m.resyncReplied('r2', resyncReply(1));
      expect(m.resyncInProgress).to.equal('r2');
      m.handle(create('listed', 'r2'));
      expect([...m.endpoints.keys()].sort()).to.deep.equal(['listed', 'old', 'pushed']);
    });

    it('reports a refused resync so it can be retried, removing nothing', () => {
      const { m } = setup();
      m.handle(create('a'));
      m.beginResync('r1');
      expect(m.resyncReplied('r1', resyncReply(0, 'FAILURE'))).to.equal(false);
      expect(m.resyncInProgress).to.equal(null);
      expect(m.endpoints.has('a')).to.equal(true);
    });

    it('ignores a reply to an abandoned resync', () => {
      const { m } = setup();
      m.handle(create('a'));
      m.beginResync('r1');
      expect(m.abandonResync()).to.equal('r1');
      m.beginResync('r2');
      m.resyncReplied('r1', resyncReply(0));
      expect(m.endpoints.has('a')).to.equal(true);
      expect(m.resyncInProgress).to.equal('r2');
    });
  });
});
