/**
 * Reads the INI dialect of the 2014 files (Python ConfigParser's subset:
 * `[section]`, `key = value` or `key: value`, `;`/`#` comment lines), keeping
 * the line of every section and key so errors can name them. Errors never
 * quote the text: the file may not be what it claims (a secret, a token),
 * and messages end up in logs.
 *
 * Written here rather than taken from npm's `ini`: that package nests
 * sections on dots (host names have dots), keeps no line numbers, and turns a
 * malformed line silently into a key.
 *
 * {@link formatIni}, its writer, is the one place INI text is made: config
 * files for the lab and the tests, the plugin's data sections.
 */

export interface IniEntry {
  /** The key as written. */
  key: string;
  value: string;
  line: number;
}

export interface IniSection {
  /** The text between the brackets, trimmed. */
  name: string;
  line: number;
  /** Entries by lower-cased key (keys are case-insensitive); a repeated key keeps the last. */
  entries: Map<string, IniEntry>;
}

export interface IniSyntaxError {
  line: number;
  message: string;
}

export interface IniDocument {
  sections: IniSection[];
  errors: IniSyntaxError[];
}

const SECTION_RE = /^\[([^\]]+)\]\s*(?:[;#].*)?$/;
const ENTRY_RE = /^([^=:\s][^=:]*?)\s*[=:]\s*(.*)$/;

export function parseIni(text: string): IniDocument {
  const doc: IniDocument = { sections: [], errors: [] };
  let current: IniSection | null = null;
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith(';') || trimmed.startsWith('#')) return;
    const section = SECTION_RE.exec(trimmed);
    if (section) {
      current = { name: section[1]!.trim(), line, entries: new Map() };
      doc.sections.push(current);
      return;
    }
    const entry = ENTRY_RE.exec(trimmed);
    if (!entry) {
      doc.errors.push({ line, message: "expected '[section]' or 'key = value'" });
      return;
    }
    if (!current) {
      doc.errors.push({ line, message: 'a key outside any section' });
      return;
    }
    const key = entry[1]!.trim();
    // An inline comment needs white space before it, as in ConfigParser; a
    // value that is only a comment (`key = ; none`) is empty.
    const value = entry[2]!.replace(/(^|\s)[;#].*$/, '').trim();
    current.entries.set(key.toLowerCase(), { key, value, line });
  });
  return doc;
}

/** A value {@link formatIni} writes: numbers and booleans as JavaScript prints them; `undefined` leaves the key out. */
export type IniValue = string | number | boolean | undefined;

/** Sections by name, each its keys in order (names that look like array indexes come first, as in any object). */
export type IniSections = Record<string, Record<string, IniValue>>;

export interface IniFormatOptions {
  /** Between key and value: `' = '` (the default, as the config files) or `'='` (as the 2014 data files). */
  separator?: ' = ' | '=';
}

// A line break or other control character (a tab is kept) would end the line and start another.
const CONTROL_RE = /[\u0000-\u0008\u000a-\u001f\u007f]/;
const KEY_RE = /^[^=:\s;#[][^=:]*$/;

/**
 * INI text for `sections`, a blank line between sections, that
 * {@link parseIni} reads back exactly as given. Throws an Error naming the
 * section and key (never the value) for anything it would read otherwise: a
 * control character, white space at either end, a `;` or `#` that would
 * start a comment, `=` or `:` in a key, `]` in a section name, or a key
 * given twice in different case.
 */
export function formatIni(sections: IniSections, options: IniFormatOptions = {}): string {
  const separator = options.separator ?? ' = ';
  const out: string[] = [];
  for (const [name, entries] of Object.entries(sections)) {
    const refuse = (key: string | null, why: string) =>
      new Error(`cannot write [${JSON.stringify(name).slice(1, -1)}]${key === null ? '' : ` ${JSON.stringify(key).slice(1, -1)}`}: ${why}`);
    if (name === '' || name !== name.trim() || name.includes(']') || CONTROL_RE.test(name))
      throw refuse(null, "a section name is text without ']' or line breaks, and without white space at either end");
    const lines = [`[${name}]`];
    const seen = new Set<string>();
    for (const [key, raw] of Object.entries(entries)) {
      if (raw === undefined) continue;
      if (!KEY_RE.test(key) || key !== key.trim() || CONTROL_RE.test(key))
        throw refuse(key, "a key is text without '=', ':' or line breaks, not starting with ';', '#' or '[', without white space at either end");
      if (seen.has(key.toLowerCase())) throw refuse(key, 'given twice (keys are case-insensitive)');
      seen.add(key.toLowerCase());
      const value = String(raw);
      if (CONTROL_RE.test(value)) throw refuse(key, 'the value holds a line break or control character');
      if (value !== value.trim()) throw refuse(key, 'the value starts or ends with white space');
      if (/(^|\s)[;#]/.test(value)) throw refuse(key, "the value holds ';' or '#' at its start or after white space (read as a comment)");
      lines.push(`${key}${separator}${value}`);
    }
    out.push(`${lines.join('\n')}\n`);
  }
  return out.join('\n');
}
