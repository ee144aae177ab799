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
    (current as IniSection).entries.set(key.toLowerCase(), { key, value, line });
  });
  return doc;
}
