/**
 * One pino root logger per process: JSON lines to a file (for operators and
 * tools), readable text on a terminal, each with its own level.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pino, destination, multistream, Logger, StreamEntry, Level } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

/** The severities of the 2014 config files (SPEC §7) and their pino levels. */
export const SEVERITIES = {
  NONE: 'silent',
  DEBUG: 'debug',
  INFO: 'info',
  WARNING: 'warn',
  ERROR: 'error',
  CRITICAL: 'fatal',
} as const;
export type Severity = keyof typeof SEVERITIES;

export function parseSeverity(raw: string): Severity {
  const s = raw.trim().toUpperCase();
  if (s === 'WARN') return 'WARNING';
  if (!Object.hasOwn(SEVERITIES, s)) throw new Error(`must be one of ${Object.keys(SEVERITIES).join(', ')}`);
  return s as Severity;
}

export interface LogOptions {
  name: string;
  /** JSON log file; null for none. Its folder is created. */
  file: string | null;
  fileLevel: Severity;
  screenLevel: Severity;
}

const ORDER: Level[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];

/** Log files are not for everyone: owner read-write, group read. */
const LOG_FILE_MODE = 0o640;

/**
 * Opens a log file for appending, created {@link LOG_FILE_MODE}; an existing
 * one with wider permissions (as earlier versions made them) is narrowed to
 * it, since it may hold what should not be world-readable. Throws (stopping
 * start-up with one line) if that is not possible.
 */
function openLogFile(file: string): number {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const fd = fs.openSync(file, 'a', LOG_FILE_MODE);
  try {
    const mode = fs.fstatSync(fd).mode & 0o777;
    if (mode & ~LOG_FILE_MODE) fs.fchmodSync(fd, mode & LOG_FILE_MODE);
    return fd;
  } catch (err) {
    fs.closeSync(fd);
    throw new Error(`${file}: cannot restrict the log file to mode 0640: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

export function createLogger(opts: LogOptions): Logger {
  const streams: StreamEntry[] = [];
  if (opts.file && opts.fileLevel !== 'NONE') {
    streams.push({ level: SEVERITIES[opts.fileLevel], stream: destination({ dest: openLogFile(opts.file), sync: true }) });
  }
  if (opts.screenLevel !== 'NONE') {
    const stream = process.stderr.isTTY
      ? pretty({ destination: 2, sync: true, colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' })
      : destination({ dest: 2, sync: true });
    streams.push({ level: SEVERITIES[opts.screenLevel], stream });
  }
  if (streams.length === 0) return pino({ name: opts.name, level: 'silent' });
  const lowest = ORDER.find((l) => streams.some((s) => s.level === l)) ?? 'info';
  return pino({ name: opts.name, level: lowest }, multistream(streams));
}
