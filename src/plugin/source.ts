/**
 * Watches the plugin's data (one file, or a directory of `*.txt` files),
 * reloads within a debounce interval of any change — written in place or
 * replaced by rename — and hands the merged model on when it changed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { watch, FSWatcher } from 'chokidar';
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

export class DataSource {
  private readonly merger = new DataMerger();
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private poller: NodeJS.Timeout | undefined;
  private lastJson = '';
  private lastProblems = '';
  current: PluginData = { felixes: new Map(), endpoints: new Map() };

  constructor(private readonly opts: DataSourceOptions) {}

  /** Loads the data once (without calling onChange) and starts watching. */
  async start(): Promise<PluginData> {
    this.load();
    const dir = this.isDirectory() ? this.opts.path : path.dirname(this.opts.path);
    this.watcher = watch(dir, { depth: 0, ignoreInitial: true });
    this.watcher.on('all', (_event, file) => {
      if (this.relevant(file)) this.schedule();
    });
    this.watcher.on('error', (err) => this.opts.log.warn({ err, path: dir }, 'watching data failed; relying on periodic re-reads'));
    await new Promise<void>((resolve) => this.watcher!.once('ready', () => resolve()));
    this.poller = setInterval(() => this.reload(), this.opts.pollMs ?? 30000);
    this.poller.unref();
    return this.current;
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    clearInterval(this.poller);
    await this.watcher?.close();
  }

  /** Re-reads everything; calls onChange if the merged model differs. */
  reload(): void {
    if (this.load()) this.opts.onChange(this.current);
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.reload(), this.opts.debounceMs ?? 50);
  }

  private isDirectory(): boolean {
    try {
      return fs.statSync(this.opts.path).isDirectory();
    } catch {
      return false;
    }
  }

  private relevant(file: string): boolean {
    return this.isDirectory() ? file.endsWith('.txt') : path.resolve(file) === path.resolve(this.opts.path);
  }

  private files(): string[] {
    if (!this.isDirectory()) return [this.opts.path];
    return fs
      .readdirSync(this.opts.path)
      .filter((f) => f.endsWith('.txt'))
      .map((f) => path.join(this.opts.path, f));
  }

  /** Returns true when the merged model changed. */
  private load(): boolean {
    const problems: string[] = [];
    const seen = new Set<string>();
    for (const file of this.files()) {
      seen.add(file);
      let text: string | null;
      try {
        text = fs.readFileSync(file, 'utf8');
      } catch {
        text = null;
      }
      problems.push(...this.merger.update(file, text));
    }
    for (const gone of this.merger.knownFiles().filter((f) => !seen.has(f))) this.merger.update(gone, null);
    const { data, conflicts } = this.merger.merged();
    problems.push(...conflicts);
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
