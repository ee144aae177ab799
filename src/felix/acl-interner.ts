/**
 * Equal ACLs held once. In the prototype's group model every member of a
 * group gets the same ACLs, each in its own ACLUPDATE: interned, a group of
 * 250 holds one copy instead of 250, and the dataplane (which caches its
 * rendering by object) renders them once per change instead of per member.
 */
import type { Acls } from '../common/wire/acl-api.js';

export class AclInterner {
  private readonly byKey = new Map<string, { acls: Acls; users: number }>();
  private readonly keys = new WeakMap<Acls, string>();

  /** The shared object equal to `acls`, counted as used once more; give it back with {@link release}. */
  intern(acls: Acls): Acls {
    // An object seen before (a remembered decode: see rememberingDecoder) is not serialized again.
    let key = this.keys.get(acls);
    if (key === undefined) this.keys.set(acls, (key = JSON.stringify(acls)));
    let entry = this.byKey.get(key);
    if (!entry) {
      entry = { acls, users: 0 };
      this.byKey.set(key, entry);
    }
    entry.users++;
    return entry.acls;
  }

  release(acls: Acls): void {
    const key = this.keys.get(acls);
    const entry = key === undefined ? undefined : this.byKey.get(key);
    if (!entry) return;
    if (--entry.users === 0) this.byKey.delete(key!);
  }

  /** Distinct ACLs held. */
  get size(): number {
    return this.byKey.size;
  }
}
