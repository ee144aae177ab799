/**
 * Drives a Dataplane from JSON lines on stdin, one answer line per command on
 * stdout. Run it inside a network namespace (`ip netns exec NS node
 * dist/bench/felix/dataplane-driver.js`): the Dataplane acts on the namespace
 * of its process. Used by the integration tests and the benchmark.
 *
 * Commands: {op:'start', interfacePrefix?, metadata?, retryMs?, refreshMs?} | {op:'upsert', ep} |
 * {op:'acls', id, acls} | {op:'remove', id} | {op:'cleanup'} | {op:'status', id} |
 * {op:'stats'} (commands run so far, by tool) | {op:'stop'}.
 * Any command may carry `items` (a list of commands run in order) and
 * `wait: true` (answer after the dataplane is idle, with the elapsed `ms`).
 */
import readline from 'node:readline';
import { createLogger } from '../../src/common/logging.js';
import type { Severity } from '../../src/common/logging.js';
import { Dataplane, CommandRunner, RtNetlink, execaRunner, readProtocolNames } from '../../src/felix/dataplane/index.js';

interface Command {
  op: string;
  seq?: number;
  wait?: boolean;
  items?: Command[];
  [k: string]: unknown;
}

const log = createLogger({ name: 'felix-dataplane-driver', file: null, fileLevel: 'NONE', screenLevel: (process.env['LOG_LEVEL'] ?? 'WARNING') as Severity });
const counts: Record<string, number> = {};
const runner: CommandRunner = {
  run(cmd, args, input) {
    const key = [cmd, ...args].join(' ');
    counts[key] = (counts[key] ?? 0) + 1;
    return execaRunner.run(cmd, args, input);
  },
};
let dp: Dataplane | null = null;

function dataplane(): Dataplane {
  if (!dp) throw new Error('not started');
  return dp;
}

async function perform(c: Command): Promise<unknown> {
  switch (c.op) {
    case 'start':
      dp = new Dataplane({
        log,
        interfacePrefix: (c['interfacePrefix'] as string | undefined) ?? 'tap',
        metadata: (c['metadata'] as { addr: string; port: number } | null) ?? null,
        retryMs: (c['retryMs'] as number | undefined) ?? 500,
        ...(c['refreshMs'] !== undefined ? { refreshMs: c['refreshMs'] as number } : {}),
        ...(c['endpointToHost'] !== undefined ? { endpointToHost: c['endpointToHost'] as 'DROP' | 'ACCEPT' } : {}),
        protocols: readProtocolNames(),
        commands: runner,
        // A small link-event buffer overflows in a burst (the ENOBUFS test).
        ...(c['eventBufferBytes'] !== undefined ? { netlink: new RtNetlink({ eventBufferBytes: c['eventBufferBytes'] as number }) } : {}),
      });
      await dp.start();
      return null;
    case 'batch':
      for (const item of c.items ?? []) await perform(item);
      return null;
    case 'upsert': {
      dataplane().upsertEndpoint(c['ep'] as never);
      return;
    }
    case 'acls': {
      dataplane().setAcls(c['id'] as string, c['acls'] as never);
      return;
    }
    case 'remove': {
      dataplane().removeEndpoint(c['id'] as string);
      return;
    }
    case 'cleanup': {
      dataplane().cleanupStale();
      return;
    }
    case 'status':
      return dataplane().status(c['id'] as string) ?? null;
    case 'stats':
      return { ...counts };
    case 'stop':
      await dp?.stop();
      setImmediate(() => process.exit(0));
      return null;
    default:
      throw new Error(`unknown op ${c.op}`);
  }
}

const lines = readline.createInterface({ input: process.stdin });
let queue = Promise.resolve();
lines.on('line', (line) => {
  queue = queue.then(async () => {
    let c: Command = { op: '?' };
    try {
      c = JSON.parse(line) as Command;
      const started = performance.now();
      const result = await perform(c);
      if (c.wait) await dataplane().idle();
      process.stdout.write(JSON.stringify({ seq: c.seq, ok: true, result, ms: performance.now() - started }) + '\n');
    } catch (err) {
      process.stdout.write(JSON.stringify({ seq: c.seq, ok: false, error: (err as Error).message }) + '\n');
    }
  });
});
lines.on('close', () => void queue.then(() => dp?.stop()).then(() => process.exit(0)));
