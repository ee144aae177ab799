import { expect } from 'chai';
import type { Acls } from '../../../src/common/wire/acl-api.js';
import { AclInterner } from '../../../src/felix/acl-interner.js';

const acls = (cidr: string): Acls => ({
  v4: { inbound: [{ group: null, cidr, protocol: null, port: null }], outbound: [], inbound_default: 'deny', outbound_default: 'deny' },
  v6: { inbound: [], outbound: [], inbound_default: 'deny', outbound_default: 'deny' },
});

describe('AclInterner (equal ACLs held once)', () => {
  it('gives equal ACLs, decoded apart, one shared object; different ones stay apart', () => {
    const i = new AclInterner();
    const a = i.intern(acls('10.0.0.1/32'));
    expect(i.intern(acls('10.0.0.1/32'))).to.equal(a);
    expect(i.intern(acls('10.0.0.2/32'))).not.to.equal(a);
    expect(i.size).to.equal(2);
  });

  it('forgets ACLs once their last user released them', () => {
    const i = new AclInterner();
    const a = i.intern(acls('10.0.0.1/32'));
    i.intern(acls('10.0.0.1/32'));
    i.release(a);
    expect(i.size).to.equal(1);
    i.release(a);
    expect(i.size).to.equal(0);
    i.release(a);
    expect(i.size, 'a release too many changes nothing').to.equal(0);
    expect(i.intern(acls('10.0.0.1/32'))).not.to.equal(a);
  });

  it('the same object interned again is one more user of its entry, and gives the entry back', () => {
    const i = new AclInterner();
    const decoded = acls('10.0.0.1/32');
    const a = i.intern(acls('10.0.0.1/32'));
    expect(i.intern(decoded)).to.equal(a);
    expect(i.intern(decoded)).to.equal(a);
    for (let n = 0; n < 3; n++) i.release(a);
    expect(i.size).to.equal(0);
    expect(i.intern(decoded), 'after its entry went, the object starts a new one').to.equal(decoded);
  });
});
