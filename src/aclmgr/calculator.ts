/**
 * The ACL calculation of SPEC §5 as a pure, incremental state machine:
 * security groups (rules + members) in, each endpoint's complete ACLs out.
 * No sockets, no clock, no logging: invalid rules are returned to the caller.
 */
import { canonicalCidr, ipFamily } from '../common/wire/codec.js';
import { Rule, Rules, emptyRules, ruleKey } from '../common/wire/rules.js';
import type { Acls } from '../common/wire/acl-api.js';
import type { Members } from '../common/wire/network-api.js';
import type { AclEndpointView, RuleSource } from '../common/status-api.js';

/** The part of a GROUPUPDATE the calculation needs. */
export interface GroupState {
  group: string;
  /** endpoint id → addresses; `{}` = the group is deleted. */
  members: Members;
  rules: Rules;
}

/** An endpoint whose ACLs changed, with its new complete ACLs (empty = deny all). */
export interface AclChange {
  endpoint: string;
  acls: Acls;
}

export interface GroupUpdateResult {
  changes: AclChange[];
  /** One line per rule that was dropped as meaningless, naming group, direction and index. */
  invalidRules: string[];
}

type Direction = 'inbound' | 'outbound';
const DIRECTIONS: readonly Direction[] = ['inbound', 'outbound'];

/** A rule as stored: exactly one of `group` / `cidr` (canonical), other fields as given. */
interface SourceRule {
  group: string | null;
  cidr: string | null;
  rest: Omit<Rule, 'group' | 'cidr'>;
}

interface Group {
  /** endpoint id → addresses. A Map, not the wire's object: ids are wire data, and `ep in obj` finds `constructor`. */
  members: ReadonlyMap<string, readonly string[]>;
  rules: Record<Direction, SourceRule[]>;
  /** Groups named by this group's `group` rules. */
  references: Set<string>;
}

/** Expanded rules of one group (or one endpoint), per family and direction, keyed by {@link ruleKey}. */
type RuleSets = Record<'v4' | 'v6', Record<Direction, Map<string, Rule>>>;

const newRuleSets = (): RuleSets => ({
  v4: { inbound: new Map(), outbound: new Map() },
  v6: { inbound: new Map(), outbound: new Map() },
});

function concreteRule(cidr: string, rest: SourceRule['rest']): Rule {
  const rule: Rule = { group: null, cidr, protocol: rest.protocol, port: rest.port };
  if (rest.icmp_type !== undefined) rule.icmp_type = rest.icmp_type;
  if (rest.icmp_code !== undefined) rule.icmp_code = rest.icmp_code;
  return rule;
}

const familyOfCidr = (cidr: string): 'v4' | 'v6' => (ipFamily(cidr.split('/')[0]!) === 4 ? 'v4' : 'v6');

/** Checks and canonicalises a group's rules; the meaningless ones are reported and left out. */
function sourceRules(group: string, rules: Rules, invalid: string[]): Record<Direction, SourceRule[]> {
  const out: Record<Direction, SourceRule[]> = { inbound: [], outbound: [] };
  for (const dir of DIRECTIONS) {
    rules[dir].forEach((r, i) => {
      const { group: ref, cidr, ...rest } = r;
      const where = `group ${group} ${dir}[${i}]`;
      if ((ref === null) === (cidr === null)) {
        invalid.push(`${where}: exactly one of group and cidr must be set`);
        return;
      }
      if (cidr !== null) {
        const canonical = canonicalCidr(cidr);
        if (canonical === null) invalid.push(`${where}: bad cidr ${JSON.stringify(cidr.slice(0, 64))}`);
        else out[dir].push({ group: null, cidr: canonical, rest });
        return;
      }
      out[dir].push({ group: ref, cidr: null, rest });
    });
  }
  return out;
}

const NO_MEMBERS: ReadonlyMap<string, readonly string[]> = new Map();

function sameMembers(a: ReadonlyMap<string, readonly string[]>, b: ReadonlyMap<string, readonly string[]>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, x] of a) {
    const y = b.get(k);
    if (y === undefined || x.length !== y.length || !x.every((addr, i) => addr === y[i])) return false;
  }
  return true;
}

/** Deterministic ACLs from rule sets: sorted by key, so equal sets give equal output. */
function toAcls(sets: RuleSets): { acls: Acls; fingerprint: string } {
  const acls: Acls = { v4: emptyRules(), v6: emptyRules() };
  const keys: string[] = [];
  for (const fam of ['v4', 'v6'] as const) {
    for (const dir of DIRECTIONS) {
      const entries = [...sets[fam][dir]].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      acls[fam][dir] = entries.map(([, r]) => r);
      keys.push(`${fam}.${dir}:${entries.map(([k]) => k).join(';')}`);
    }
  }
  return { acls, fingerprint: keys.join('|') };
}

/**
 * Holds every known group and the ACLs last reported for every endpoint.
 * Feed it whole groups with {@link applyGroupUpdate}; it answers with the
 * endpoints whose ACLs changed, recomputing only the endpoints a change can
 * affect: members of the group (before and after) and, when its membership
 * changed, members of the groups whose rules name it. An endpoint that
 * leaves every group is reported once with empty ACLs (deny all) and then
 * forgotten. Not for anything that needs I/O: callers publish the result.
 */
export class AclCalculator {
  private readonly groups = new Map<string, Group>();
  /** endpoint → groups it is a member of */
  private readonly endpointGroups = new Map<string, Set<string>>();
  /** group → groups whose rules reference it (the referenced group need not exist yet) */
  private readonly referencedBy = new Map<string, Set<string>>();
  /** group → its expanded rules (and ACLs once built); dropped when the group or a group it references changes */
  private readonly expanded = new Map<string, { sets: RuleSets; acls?: { acls: Acls; fingerprint: string } }>();
  /** endpoint → ACLs last reported, and their fingerprint */
  private readonly current = new Map<string, { acls: Acls; fingerprint: string }>();

  /** Ids of the groups known (with at least one member). */
  groupIds(): string[] {
    return [...this.groups.keys()];
  }

  /** Ids of the endpoints with ACLs. */
  endpointIds(): string[] {
    return [...this.current.keys()];
  }

  /** The endpoint's complete ACLs, or undefined if it is in no group. */
  aclsFor(endpoint: string): Acls | undefined {
    return this.current.get(endpoint)?.acls;
  }

  /**
   * Why an endpoint has the ACLs it has (for `calico-status explain`): its
   * groups with their rules as given, and for each of its current rules the
   * group rules that produced it. Computed on request from the groups, so the
   * calculation itself carries no bookkeeping for it.
   */
  explain(endpoint: string): AclEndpointView | undefined {
    const groups = [...(this.endpointGroups.get(endpoint) ?? [])].sort();
    const acls = this.current.get(endpoint)?.acls;
    if (groups.length === 0 || !acls) return undefined;
    const sources = new Map<string, RuleSource[]>();
    for (const g of groups) {
      const group = this.groups.get(g)!;
      for (const dir of DIRECTIONS) {
        group.rules[dir].forEach((rule, index) => {
          const cidrs = rule.cidr !== null ? [rule.cidr] : this.memberCidrs(rule.group!);
          for (const cidr of cidrs) {
            const key = `${familyOfCidr(cidr)} ${dir} ${ruleKey(concreteRule(cidr, rule.rest))}`;
            const list = sources.get(key) ?? [];
            list.push({ group: g, direction: dir, index, via: rule.group });
            sources.set(key, list);
          }
        });
      }
    }
    const addrs = this.groups.get(groups[0]!)!.members.get(endpoint) ?? [];
    const from = (fam: 'v4' | 'v6', dir: Direction) => acls[fam][dir].map((r) => sources.get(`${fam} ${dir} ${ruleKey(r)}`) ?? []);
    return {
      endpoint,
      addrs: [...addrs],
      groups: groups.map((g) => ({ group: g, members: this.groups.get(g)!.members.size, rules: this.sourceRulesOf(g) })),
      acls,
      sources: {
        v4: { inbound: from('v4', 'inbound'), outbound: from('v4', 'outbound') },
        v6: { inbound: from('v6', 'inbound'), outbound: from('v6', 'outbound') },
      },
    };
  }

  private memberCidrs(group: string): string[] {
    return [...(this.groups.get(group)?.members.values() ?? [])].flatMap((addrs) => addrs.map((a) => `${a}/${ipFamily(a) === 4 ? 32 : 128}`));
  }

  /** A group's rules in wire form (cidrs canonical, invalid ones left out). */
  private sourceRulesOf(id: string): Record<Direction, Rule[]> {
    const rules = this.groups.get(id)!.rules;
    const wire = (r: SourceRule): Rule => ({ ...r.rest, group: r.group, cidr: r.cidr });
    return { inbound: rules.inbound.map(wire), outbound: rules.outbound.map(wire) };
  }

  applyGroupUpdate(update: GroupState): GroupUpdateResult {
    const { group: id } = update;
    const invalidRules: string[] = [];
    const old = this.groups.get(id);
    const oldMembers = old?.members ?? NO_MEMBERS;
    // Object.entries lists own properties only, so an id such as `__proto__` is a member like any other.
    const members: ReadonlyMap<string, readonly string[]> = new Map(Object.entries(update.members));
    const deleted = members.size === 0;
    const membersChanged = !sameMembers(oldMembers, members);

    for (const ref of old?.references ?? []) this.referencedBy.get(ref)?.delete(id);
    if (deleted) {
      this.groups.delete(id);
    } else {
      const rules = sourceRules(id, update.rules, invalidRules);
      const references = new Set(DIRECTIONS.flatMap((d) => rules[d].flatMap((r) => (r.group === null ? [] : [r.group]))));
      this.groups.set(id, { members, rules, references });
      for (const ref of references) {
        let by = this.referencedBy.get(ref);
        if (!by) this.referencedBy.set(ref, (by = new Set()));
        by.add(id);
      }
    }
    for (const ref of old?.references ?? []) if (this.referencedBy.get(ref)?.size === 0) this.referencedBy.delete(ref);

    for (const ep of oldMembers.keys()) if (!members.has(ep)) this.endpointGroups.get(ep)?.delete(id);
    for (const ep of members.keys()) {
      let gs = this.endpointGroups.get(ep);
      if (!gs) this.endpointGroups.set(ep, (gs = new Set()));
      gs.add(id);
    }

    const affected = new Set([...oldMembers.keys(), ...members.keys()]);
    this.expanded.delete(id);
    if (membersChanged) {
      for (const referrer of this.referencedBy.get(id) ?? []) {
        this.expanded.delete(referrer);
        for (const ep of this.groups.get(referrer)?.members.keys() ?? []) affected.add(ep);
      }
    }
    return { changes: this.recompute(affected), invalidRules };
  }

  /**
   * Deletes every group not in `keep` (the end of a full resynchronisation)
   * and reports the resulting changes.
   */
  retainGroups(keep: ReadonlySet<string>): { dropped: string[]; changes: AclChange[] } {
    const dropped = this.groupIds().filter((g) => !keep.has(g));
    const changes = new Map<string, AclChange>();
    for (const g of dropped) for (const c of this.applyGroupUpdate({ group: g, members: {}, rules: emptyRules() }).changes) changes.set(c.endpoint, c);
    return { dropped, changes: [...changes.values()] };
  }

  private recompute(endpoints: Iterable<string>): AclChange[] {
    const changes: AclChange[] = [];
    for (const ep of endpoints) {
      const groups = this.endpointGroups.get(ep);
      if (!groups || groups.size === 0) {
        this.endpointGroups.delete(ep);
        if (this.current.delete(ep)) changes.push({ endpoint: ep, acls: { v4: emptyRules(), v6: emptyRules() } });
        continue;
      }
      const next = groups.size === 1 ? this.groupAcls([...groups][0]!) : toAcls(this.endpointRuleSets(groups));
      if (this.current.get(ep)?.fingerprint === next.fingerprint) continue;
      this.current.set(ep, next);
      changes.push({ endpoint: ep, acls: next.acls });
    }
    return changes;
  }

  /** ACLs of an endpoint in this group only: the same for every such member, so built once (and shared, never mutated). */
  private groupAcls(id: string): { acls: Acls; fingerprint: string } {
    this.expand(id);
    const entry = this.expanded.get(id)!;
    return (entry.acls ??= toAcls(entry.sets));
  }

  /** The union of the groups' expanded rules; duplicates fall together by key. */
  private endpointRuleSets(groups: Set<string>): RuleSets {
    const union = newRuleSets();
    for (const g of groups) {
      const sets = this.expand(g);
      for (const fam of ['v4', 'v6'] as const) for (const dir of DIRECTIONS) for (const [k, r] of sets[fam][dir]) union[fam][dir].set(k, r);
    }
    return union;
  }

  private expand(id: string): RuleSets {
    const cached = this.expanded.get(id);
    if (cached) return cached.sets;
    const sets = newRuleSets();
    const group = this.groups.get(id);
    for (const dir of DIRECTIONS) {
      for (const rule of group?.rules[dir] ?? []) {
        const cidrs = rule.cidr !== null ? [rule.cidr] : this.memberCidrs(rule.group!);
        for (const cidr of cidrs) {
          const concrete = concreteRule(cidr, rule.rest);
          sets[familyOfCidr(cidr)][dir].set(ruleKey(concrete), concrete);
        }
      }
    }
    this.expanded.set(id, { sets });
    return sets;
  }
}
