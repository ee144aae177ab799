/**
 * Desired changes as text for `iptables-restore --noflush` and
 * `ipset restore`, and the parsers for what `iptables-save` and
 * `ipset save` print. Pure.
 */
import type { Chain, IpSet, Jump, Table } from './chains.js';
import { Family, tempSetName } from './names.js';

/**
 * A rule changed in place, by rule number (from 1, as the chain is after the
 * edits listed before it): `-R chain N rule`, `-D chain N`, `-I chain N rule`.
 * The chain's other rules stay as they are, with their packet counters.
 */
export type RuleEdit = { op: 'replace' | 'insert'; chain: string; index: number; rule: string } | { op: 'delete'; chain: string; index: number };

/** What to change in one table; everything not named is left alone. */
export interface TableChanges {
  table: Table;
  /** Chains created or replaced whole (declaring a chain flushes it, and its rules' counters). */
  write: Chain[];
  /**
   * Rules edited in place, in order, in chains the kernel already has: a
   * chain keeps its common prefix and suffix with the kernel (its final
   * DROP among them, so the DROP's counter keeps growing), and only the
   * middle is replaced, deleted or inserted. A group change alters one rule
   * in each member's chains, and rewriting only that rule costs the kernel
   * about half as much as the whole chain.
   */
  edit: RuleEdit[];
  /** Chains flushed and deleted (after the writes, so references to them are gone first). */
  remove: string[];
  insertJumps: Jump[];
  deleteJumps: Jump[];
}

export const isEmptyChange = (c: TableChanges): boolean => c.write.length + c.edit.length + c.remove.length + c.insertJumps.length + c.deleteJumps.length === 0;

/** The `iptables-restore` line of one edit. */
export function ruleEditLine(e: RuleEdit): string {
  if (e.op === 'delete') return `-D ${e.chain} ${e.index}`;
  return `${e.op === 'replace' ? '-R' : '-I'} ${e.chain} ${e.index} ${e.rule}`;
}

/**
 * The edits that turn a chain's rules `have` into `want` in place, keeping
 * their longest common prefix and suffix (and those rules' counters): the
 * differing middle is replaced rule by rule as far as both middles reach,
 * then the kernel's extra rules are deleted or the desired extra ones
 * inserted (each last first). Null when the two share no first or last rule: the
 * chain is then written whole. `[]` when they are equal.
 */
export function chainEdits(chain: string, have: readonly string[], want: readonly string[]): RuleEdit[] | null {
  const max = Math.min(have.length, want.length);
  let prefix = 0;
  while (prefix < max && have[prefix] === want[prefix]) prefix++;
  if (prefix === have.length && prefix === want.length) return [];
  let suffix = 0;
  while (suffix < max - prefix && have[have.length - 1 - suffix] === want[want.length - 1 - suffix]) suffix++;
  if (prefix + suffix === 0) return null;
  const haveMid = have.length - prefix - suffix;
  const wantMid = want.length - prefix - suffix;
  const both = Math.min(haveMid, wantMid);
  const edits: RuleEdit[] = [];
  for (let i = 0; i < both; i++) {
    if (have[prefix + i] !== want[prefix + i]) edits.push({ op: 'replace', chain, index: prefix + i + 1, rule: want[prefix + i]! });
  }
  // Last first, so each number is the rule's own in the chain as it was.
  for (let i = haveMid - 1; i >= both; i--) edits.push({ op: 'delete', chain, index: prefix + i + 1 });
  // Last first, each at the same number: `-I chain 1` needs no look at the chain's rules (iptables-nft).
  for (let i = wantMid - 1; i >= both; i--) edits.push({ op: 'insert', chain, index: prefix + both + 1, rule: want[prefix + i]! });
  return edits;
}

/** One `*table … COMMIT` block per non-empty table; each block is one atomic transaction. */
export function renderIptablesRestore(changes: TableChanges[]): string {
  const out: string[] = [];
  for (const c of changes) {
    if (isEmptyChange(c)) continue;
    out.push(`*${c.table}`);
    // In --noflush mode a chain declaration flushes the chain (or creates it).
    for (const chain of c.write) out.push(`:${chain.name} - [0:0]`);
    for (const name of c.remove) out.push(`:${name} - [0:0]`);
    for (const chain of c.write) for (const rule of chain.rules) out.push(`-A ${chain.name} ${rule}`);
    for (const e of c.edit) out.push(ruleEditLine(e));
    for (const j of c.deleteJumps) out.push(`-D ${j.from} ${j.rule}`);
    for (const j of c.insertJumps) out.push(`-I ${j.from} 1 ${j.rule}`);
    for (const name of c.remove) out.push(`-X ${name}`);
    out.push('COMMIT');
  }
  return out.length ? out.join('\n') + '\n' : '';
}

/** table → chain → rules (each without its `-A chain` prefix). */
export type IptablesState = Map<string, Map<string, string[]>>;

/** Parses `iptables-save` (with or without `-c`): the rules alone. */
export function parseIptablesSave(text: string): IptablesState {
  const state: IptablesState = new Map();
  for (const [table, chains] of parseIptablesCounters(text)) state.set(table, new Map([...chains].map(([chain, rules]) => [chain, rules.map((r) => r.rule)])));
  return state;
}

/** A rule with the kernel's counters for it, as `iptables-save -c` prints them. */
export interface CountedRule {
  /** Without `-A chain`, as {@link parseIptablesSave} gives it. */
  rule: string;
  packets: number;
  bytes: number;
}

/** table → chain → its rules with their counters, in order. */
export type IptablesCounters = Map<string, Map<string, CountedRule[]>>;

/** Parses `iptables-save -c` (`[packets:bytes] -A chain rule`); a rule printed without counters counts 0. */
export function parseIptablesCounters(text: string): IptablesCounters {
  const state: IptablesCounters = new Map();
  let table: Map<string, CountedRule[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('*')) {
      table = new Map();
      state.set(line.slice(1), table);
      continue;
    }
    if (!table) continue;
    if (line.startsWith(':')) {
      table.set(line.slice(1).split(' ')[0]!, []);
      continue;
    }
    const m = /^(?:\[(\d+):(\d+)\]\s+)?-A (\S+)(?: (.*))?$/.exec(line);
    if (!m) continue;
    const rules = table.get(m[3]!) ?? [];
    rules.push({ rule: m[4] ?? '', packets: Number(m[1] ?? 0), bytes: Number(m[2] ?? 0) });
    table.set(m[3]!, rules);
  }
  return state;
}

/** A rule whose verdict is DROP (`… -j DROP`): what Felix counts as a denied packet. */
export const isDropRule = (rule: string): boolean => rule === '-j DROP' || rule.endsWith(' -j DROP');

/** The sets a rule matches on (`-m set --match-set NAME …`). */
export function setsReferenced(rule: string): string[] {
  const out: string[] = [];
  const re = /--match-set (\S+)/g;
  for (let m = re.exec(rule); m !== null; m = re.exec(rule)) out.push(m[1]!);
  return out;
}

export const MAXELEM = 1048576;
const familyWord = (f: Family): string => (f === 4 ? 'inet' : 'inet6');

/** How one set is brought to its content: filled under a temporary name, then renamed (or swapped with a stale set of that name). */
export interface SetWrite {
  set: IpSet;
  /** A set of that name exists but its content cannot be trusted: swap it with the filled temporary. */
  replace: boolean;
}

/**
 * `ipset -exist restore` text for set writes and destroys, with the index
 * of the line that completes each set (ipset restore stops at the first
 * failing line, so a failure's line number tells which sets were made).
 */
export function renderIpsetRestore(writes: SetWrite[], destroy: string[] = []): { text: string; lastLine: Map<string, number> } {
  const out: string[] = [];
  const lastLine = new Map<string, number>();
  for (const { set, replace } of writes) {
    const tmp = tempSetName(set.name);
    // -exist keeps a temporary a crash left behind: flush it.
    out.push(`create ${tmp} ${set.type} family ${familyWord(set.family)} maxelem ${MAXELEM}`, `flush ${tmp}`);
    for (const m of set.members) out.push(`add ${tmp} ${m}`);
    if (replace) out.push(`swap ${tmp} ${set.name}`, `destroy ${tmp}`);
    else out.push(`rename ${tmp} ${set.name}`);
    lastLine.set(set.name, out.length);
  }
  for (const name of destroy) {
    out.push(`destroy ${name}`);
    lastLine.set(name, out.length);
  }
  return { text: out.length ? out.join('\n') + '\n' : '', lastLine };
}

export interface IpSetContent {
  type: string;
  family: Family;
  members: string[];
}

/** Parses `ipset save`: every set's type, family and members (as the kernel prints them). */
export function parseIpsetSave(text: string): Map<string, IpSetContent> {
  const sets = new Map<string, IpSetContent>();
  for (const line of text.split('\n')) {
    if (line.startsWith('create ')) {
      const [, name, type, ...rest] = line.split(' ');
      const i = rest.indexOf('family');
      sets.set(name!, { type: type!, family: rest[i + 1] === 'inet6' ? 6 : 4, members: [] });
    } else if (line.startsWith('add ')) {
      const space = line.indexOf(' ', 4);
      sets.get(line.slice(4, space))?.members.push(line.slice(space + 1).trim());
    }
  }
  return sets;
}

/** The line number an `ipset restore` error names (`Error in line 3: …`), or null. */
export function ipsetErrorLine(message: string): number | null {
  const m = /Error in line (\d+)/.exec(message);
  return m ? Number(m[1]) : null;
}
