/**
 * New TCP connections per second, one container to another (bench/datapath).
 *
 *   node dist/bench/datapath/connect-rate.js server HOST PORT LIFETIME_S
 *     accepts and closes every connection; exits after LIFETIME_S at the latest.
 *   node dist/bench/datapath/connect-rate.js client HOST PORT SECONDS PARALLEL
 *     PARALLEL loops each open one connection after another for SECONDS (at
 *     most MAX_CONNECTIONS in all); prints {connections, errors, seconds, perSecond}
 *     as one JSON line and exits 1 if any connection failed.
 *
 * The client closes with RST (resetAndDestroy), so no TIME_WAIT is left and
 * conntrack entries go to CLOSE (10 s) instead of TIME_WAIT (120 s).
 */
import net from 'node:net';

const MAX_CONNECTIONS = 1_000_000;
/** Long enough for one SYN retransmission (1 s), which then counts as a slow connection, not an error. */
const CONNECT_TIMEOUT_MS = 3000;

function server(host: string, port: number, lifetimeS: number): void {
  net
    .createServer((socket) => {
      socket.on('error', () => {}); // the client's RST may arrive first
      socket.destroy();
    })
    .listen(port, host);
  setTimeout(() => process.exit(0), lifetimeS * 1000);
}

async function client(host: string, port: number, seconds: number, parallel: number): Promise<void> {
  let connections = 0;
  let errors = 0;
  let lastError = '';
  const connectOnce = () =>
    new Promise<void>((resolve) => {
      const socket = net.connect({ host, port, timeout: CONNECT_TIMEOUT_MS });
      socket.once('connect', () => {
        connections++;
        socket.removeAllListeners('error').on('error', () => {});
        socket.resetAndDestroy();
        resolve();
      });
      socket.once('timeout', () => socket.destroy(new Error('connect timeout')));
      socket.once('error', (err) => {
        errors++;
        lastError = err.message;
        resolve();
      });
    });
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const loop = async () => {
    while (performance.now() < deadline && connections + errors < MAX_CONNECTIONS) await connectOnce();
  };
  await Promise.all(Array.from({ length: parallel }, loop));
  const elapsed = (performance.now() - started) / 1000;
  console.log(JSON.stringify({ connections, errors, lastError, seconds: elapsed, perSecond: connections / elapsed }));
  if (errors) process.exitCode = 1;
}

const [role, host, port, seconds, parallel] = process.argv.slice(2);
if (role === 'server' && host && port && seconds) server(host, Number(port), Number(seconds));
else if (role === 'client' && host && port && seconds && parallel) await client(host, Number(port), Number(seconds), Number(parallel));
else {
  console.error('usage: connect-rate.js server HOST PORT LIFETIME_S | client HOST PORT SECONDS PARALLEL');
  process.exit(2);
}
