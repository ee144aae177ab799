/**
 * Watches the plugin's data (one file, or a directory of `*.txt` files),
 * reloads within a debounce interval of any change — written in place or
 * replaced by rename — and hands the merged model on when it changed.
 *
 * Watched with the kernel's own notification (`fs.watch`, inotify), which
 * names the file that changed: a watcher that re-lists the directory on each
 * event (chokidar does, with an lstat per file) cost each plugin process a
 * third of a core at 1000 files and 20 edits a second, and learnt of a new
 * file up to a second late.
 *
 * Only regular files are data. The plugin runs as root and its data
 * directory is written by other tools, so a symlink (which could name any
 * file root can read), a FIFO (a read blocks until someone writes), a device
 * or a directory is skipped with a warning; reads are asynchronous and never
 * wait on such a file, so the sockets keep answering.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../common/logging.js';
import { DataMerger, PluginData } from './data.js';

export interface DataSourceOptions {
  path: string;
  log: Logger;
  onChange: (data: PluginData) => void;
  debounceMs?: number;
  /** Safety-net re-read interval, in case a watch event is lost. */
  pollMs?: number;
}

/** Larger files are not plugin data (10 000 endpoints take about 1.2 MB) and are skipped rather than read into memory. */
const MAX_FILE_BYTES = 16 * 1024 * 1024;

/** Opened so that a path swapped after the lstat for a symlink fails (ELOOP) and one swapped for a FIFO does not block. */
const OPEN_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;

/** What a path is, in words, when it is not a regular file. */
function notRegular(st: fs.Stats): string | null {
  if (st.isFile()) return null;
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isDirectory()) return 'a directory';
  if (st.isSocket()) return 'a socket';
  return 'a device';
}

/** One data file read: its text, `gone`, or why it was not read (`skipped`: not data; `failed`: keep what it held). */
type ReadResult = { kind: 'text'; text: string } | { kind: 'gone' } | { kind: 'skipped' | 'failed'; why: string };

async function readDataFile(file: string): Promise<ReadResult> {
  const code = (err: unknown) => (err as NodeJS.ErrnoException).code ?? String(err);
  let handle: fsp.FileHandle;
  try {
    const what = notRegular(await fsp.lstat(file));
    if (what) return { kind: 'skipped', why: `${what}, not a regular file` };
    handle = await fsp.open(file, OPEN_FLAGS);
  } catch (err) {
    if (code(err) === 'ENOENT') return { kind: 'gone' };
    if (code(err) === 'ELOOP') return { kind: 'skipped', why: 'a symbolic link, not a regular file' };
    return { kind: 'failed', why: `cannot read: ${code(err)}` };
  }
  try {
    const st = await handle.stat();
    const what = notRegular(st);
    if (what) return { kind: 'skipped', why: `${what}, not a regular file` };
    if (st.size > MAX_FILE_BYTES) return { kind: 'skipped', why: `larger than ${MAX_FILE_BYTES} bytes` };
    return { kind: 'text', text: await handle.readFile('utf8') };
  } catch (err) {
    return { kind: 'failed', why: `cannot read: ${code(err)}` };
  } finally {
    await handle.close();
  }
}

/**
 * The plugin's data, kept current: {@link start} loads it and watches for
 * changes, calling `onChange` with each new merged model; a file that goes
 * bad keeps its last good content. Not for reading arbitrary files: only
 * regular `*.txt` files are read (see the module comment).
 */
export class DataSource {
  private readonly merger = new DataMerger();
  private watcher: fs.FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private poller: NodeJS.Timeout | undefined;
  private lastJson = '';
  private lastProblems = '';
  /** Each file's problems as last read (a partial reload replaces only its files' entries). */
  private readonly fileProblems = new Map<string, string[]>();
  /** Files of the data directory already reported as ignored. */
  private readonly ignoredLogged = new Set<string>();
  /** The reload in progress, if any; work arriving meanwhile runs after it. */
  private loading: Promise<void> | undefined;
  /** What the next reload reads: the files the watcher named, or (`full`) everything. */
  private readonly changedFiles = new Set<string>();
  private full = false;
  /** Whether `path` was a directory when watching began (else the file's folder is watched). */
  private watchingDirectory = false;
  current: PluginData = { felixes: new Map(), endpoints: new Map() };

  constructor(private readonly opts: DataSourceOptions) {}

  /** Loads the data once (without calling onChange) and starts watching. */
  async start(): Promise<PluginData> {
    this.watchingDirectory = await this.isDirectory();
    await this.load(null);
    this.watch();
    this.poller = setInterval(() => {
      if (!this.watcher) this.watch();
      this.reload();
    }, this.opts.pollMs ?? 30000);
    this.poller.unref();
    return this.current;
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    clearInterval(this.poller);
    this.watcher?.close();
    this.watcher = undefined;
    this.changedFiles.clear();
    this.full = false;
    await this.loading;
  }

  /** Re-reads everything (after the reload in progress, if any); calls onChange if the merged model differs. */
  reload(): void {
    this.full = true;
    this.run();
  }

  /** One reload at a time, each taking all the work queued when it starts. */
  private run(): void {
    if (this.loading) return;
    this.loading = (async () => {
      while (this.full || this.changedFiles.size > 0) {
        const files = this.full ? null : [...this.changedFiles];
        this.full = false;
        this.changedFiles.clear();
        try {
          if (await this.load(files)) this.opts.onChange(this.current);
        } catch (err) {
          this.opts.log.error({ err, path: this.opts.path }, 'reloading data failed; keeping the current data');
        }
      }
    })().finally(() => (this.loading = undefined));
  }

  /**
   * Reads the changed files at most `debounceMs` after the first change of a
   * burst: a steady stream of edits (an orchestrator under churn) must not
   * postpone the reload for as long as it lasts.
   */
  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.run();
    }, this.opts.debounceMs ?? 50);
  }

  /**
   * Watches the data directory (or the data file's folder, so that a file
   * replaced by rename is seen). When the watch fails (the folder went), the
   * periodic re-read carries on and tries to watch again.
   */
  private watch(): void {
    const dir = this.watchingDirectory ? this.opts.path : path.dirname(this.opts.path);
    const lost = (err: unknown) => {
      this.opts.log.warn({ err, path: dir }, 'watching data failed; relying on periodic re-reads');
      this.watcher?.close();
      this.watcher = undefined;
    };
    try {
      this.watcher = fs.watch(dir, (_event, name) => {
        // Without a name (an overflowed event queue), everything is read again.
        if (name === null) this.full = true;
        else if (this.relevant(path.join(dir, name))) this.changedFiles.add(path.resolve(dir, name));
        else return;
        this.schedule();
      });
      this.watcher.on('error', lost);
    } catch (err) {
      lost(err);
    }
  }

  /** The `--data` path itself may be a link to a directory: the operator named it. */
  private async isDirectory(): Promise<boolean> {
    try {
      return (await fsp.stat(this.opts.path)).isDirectory();
    } catch {
      return false;
    }
  }

  private relevant(file: string): boolean {
    return this.watchingDirectory ? file.endsWith('.txt') : path.resolve(file) === path.resolve(this.opts.path);
  }

  private async allFiles(): Promise<string[]> {
    if (!this.watchingDirectory) return [path.resolve(this.opts.path)];
    const names = await fsp.readdir(this.opts.path);
    // The 2014 plugin read every file of its directory; say once which ones this one does not.
    for (const f of names) {
      if (f.endsWith('.txt') || this.ignoredLogged.has(f)) continue;
      this.ignoredLogged.add(f);
      this.opts.log.info({ path: this.opts.path, file: f }, 'not a *.txt file: ignored');
    }
    return names.filter((f) => f.endsWith('.txt')).map((f) => path.resolve(this.opts.path, f));
  }

  /** Reads `files` (null: every file, and forgets those gone); returns true when the merged model changed. */
  private async load(files: string[] | null): Promise<boolean> {
    const started = performance.now();
    const reading = files ?? (await this.allFiles());
    for (const file of reading) {
      const read = await readDataFile(file);
      if (read.kind === 'text') {
        this.fileProblems.set(file, this.merger.update(file, read.text));
      } else if (read.kind === 'failed') {
        // A file that cannot be read this time keeps what it held.
        this.fileProblems.set(file, [`${file}: ${read.why} (keeping its last good content)`]);
      } else {
        this.merger.update(file, null);
        if (read.kind === 'skipped') this.fileProblems.set(file, [`${file}: skipped: ${read.why}`]);
        else this.fileProblems.delete(file);
      }
    }
    if (files === null) {
      const seen = new Set(reading);
      for (const gone of this.merger.knownFiles().filter((f) => !seen.has(f))) this.merger.update(gone, null);
      for (const f of [...this.fileProblems.keys()]) if (!seen.has(f)) this.fileProblems.delete(f);
    }
    this.opts.log.debug({ files: reading.length, all: files === null, ms: Math.round(performance.now() - started) }, 'data files read');
    const { data, conflicts } = this.merger.merged();
    const problems = [...[...this.fileProblems.values()].flat(), ...conflicts];
    // Repeat a problem only when the set of problems changes, not on every poll.
    const problemKey = problems.join('\n');
    if (problemKey !== this.lastProblems) for (const p of problems) this.opts.log.warn({ path: this.opts.path }, p);
    this.lastProblems = problemKey;
    const json = JSON.stringify([[...data.felixes.values()], [...data.endpoints.values()]]);
    if (json === this.lastJson) return false;
    this.lastJson = json;
    this.current = data;
    this.opts.log.info({ felixes: data.felixes.size, endpoints: data.endpoints.size }, 'data loaded');
    return true;
  }
}
