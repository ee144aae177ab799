/**
 * Desired changes as text for `iptables-restore --noflush` and
 * `ipset restore`, and the parsers for what `iptables-save` and
 * `ipset save` print. Pure.
 */
import type { Chain, IpSet, Jump, Table } from './chains.js';
import { Family, tempSetName } from './names.js';

/** What to change in one table; everything not named is left alone. */
export interface TableChanges {
  table: Table;
  /** Chains created or replaced whole. */
  write: Chain[];
  /**
   * Rules replaced in place (`-R chain N`, N from 1) in chains that keep
   * their length: a group change alters one rule in each member's chains,
   * and rewriting only that rule costs the kernel about half as much.
   */
  replace: Array<{ chain: string; index: number; rule: string }>;
  /** Chains flushed and deleted (after the writes, so references to them are gone first). */
  remove: string[];
  insertJumps: Jump[];
  deleteJumps: Jump[];
}

export const isEmptyChange = (c: TableChanges): boolean =>
  c.write.length + c.replace.length + c.remove.length + c.insertJumps.length + c.deleteJumps.length === 0;

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
    for (const r of c.replace) out.push(`-R ${r.chain} ${r.index} ${r.rule}`);
    for (const j of c.deleteJumps) out.push(`-D ${j.from} ${j.rule}`);
    for (const j of c.insertJumps) out.push(`-I ${j.from} 1 ${j.rule}`);
    for (const name of c.remove) out.push(`-X ${name}`);
    out.push('COMMIT');
  }
  return out.length ? out.join('\n') + '\n' : '';
}

/** table → chain → rules (each without its `-A chain` prefix). */
export type IptablesState = Map<string, Map<string, string[]>>;

export function parseIptablesSave(text: string): IptablesState {
  const state: IptablesState = new Map();
  let table: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('*')) {
      table = new Map();
      state.set(line.slice(1), table);
    } else if (!table || line === '' || line.startsWith('#') || line === 'COMMIT') {
      continue;
    } else if (line.startsWith(':')) {
      table.set(line.slice(1).split(' ')[0]!, []);
    } else if (line.startsWith('-A ')) {
      const space = line.indexOf(' ', 3);
      const chain = line.slice(3, space);
      const rules = table.get(chain) ?? [];
      rules.push(line.slice(space + 1));
      table.set(chain, rules);
    }
  }
  return state;
}

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
