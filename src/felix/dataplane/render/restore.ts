/**
 * Desired changes as text for `iptables-restore --noflush` and
 * `ipset restore`, and the parsers for what `iptables-save` and
 * `ipset list -t` print. Pure.
 */
import type { Chain, IpSet, Jump, Table } from './chains.js';
import { Family, IpSetType, tempSetName } from './names.js';

/** What to change in one table; everything not named is left alone. */
export interface TableChanges {
  table: Table;
  /** Chains created or replaced whole. */
  write: Chain[];
  /** Chains flushed and deleted (after the writes, so references to them are gone first). */
  remove: string[];
  insertJumps: Jump[];
  deleteJumps: Jump[];
}

export const isEmptyChange = (c: TableChanges): boolean =>
  c.write.length + c.remove.length + c.insertJumps.length + c.deleteJumps.length === 0;

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

const MAXELEM = 1048576;
const familyWord = (f: Family): string => (f === 4 ? 'inet' : 'inet6');
const createLine = (name: string, type: IpSetType, family: Family): string =>
  `create ${name} ${type} family ${familyWord(family)} maxelem ${MAXELEM}`;

/** Changes to sets; run with `ipset -exist restore`. */
export interface IpsetChanges {
  /** Sets that do not exist yet: created and filled. */
  create: IpSet[];
  /** Sets that exist: their contents replaced atomically through a temporary set and `swap`. */
  replace: IpSet[];
  destroy: string[];
}

export function renderIpsetRestore(c: IpsetChanges): string {
  const out: string[] = [];
  for (const s of c.create) {
    out.push(createLine(s.name, s.type, s.family));
    for (const m of s.members) out.push(`add ${s.name} ${m}`);
  }
  const temps = new Set<string>();
  for (const s of c.replace) {
    const tmp = tempSetName(s.type, s.family);
    if (!temps.has(tmp)) out.push(createLine(tmp, s.type, s.family));
    temps.add(tmp);
    out.push(`flush ${tmp}`);
    for (const m of s.members) out.push(`add ${tmp} ${m}`);
    out.push(`swap ${tmp} ${s.name}`);
  }
  for (const tmp of temps) out.push(`destroy ${tmp}`);
  for (const name of c.destroy) out.push(`destroy ${name}`);
  return out.length ? out.join('\n') + '\n' : '';
}

export interface IpSetHeader {
  type: string;
  family: Family;
}

/** Parses `ipset list -t` (names, types and families; no members). */
export function parseIpsetList(text: string): Map<string, IpSetHeader> {
  const sets = new Map<string, IpSetHeader>();
  let name: string | null = null;
  let type = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('Name: ')) name = line.slice(6).trim();
    else if (line.startsWith('Type: ')) type = line.slice(6).trim();
    else if (line.startsWith('Header: ') && name !== null) {
      sets.set(name, { type, family: / family inet6\b/.test(` ${line.slice(8)}`) ? 6 : 4 });
      name = null;
    }
  }
  return sets;
}
