#!/usr/bin/env node
/**
 * `plugin network|ep`: the orchestrator's stand-in (SPEC §1, §8).
 */
import path from 'node:path';
import { commandLine, runDaemon } from '../common/cli.js';
import { zmqAddress } from '../common/config.js';
import { createLogger, parseSeverity } from '../common/logging.js';
import { readKeyFile, readKeyListFile, readSecretKeyFile, resolveCurve } from '../common/curve.js';
import { CurveAuthorizer } from '../common/zmq/zap.js';
import { DEFAULT_MAX_MESSAGE_BYTES } from '../common/security.js';
import { DataSource } from './source.js';
import { EndpointRole } from './ep-role.js';
import { NetworkRole } from './network-role.js';
import { Observability, serveMetrics } from '../common/metrics.js';
import { isIp } from '../common/wire/codec.js';
import { pluginProbe } from './probe.js';
import type { CurveKeyPair, SocketOptions } from '../common/zmq/options.js';

const argv = commandLine('plugin', '$0 <network|ep> [options]')
  .command('network', 'serve the Network API to the ACL manager (REP 9903, PUB 9904)')
  .command('ep', 'serve the Endpoint API to every Felix (REP 9901, REQ to each Felix 9902)')
  .demandCommand(1, 1, 'name a role: network or ep')
  .options({
    data: { type: 'string', default: '/opt/plugin/data.txt', describe: 'data file, or a directory whose *.txt files are merged' },
    'log-dir': { type: 'string', default: '/var/log/calico', describe: "log folder ('none' for no log file)" },
    'log-severity-file': { type: 'string', default: 'INFO', coerce: parseSeverity },
    'log-severity-screen': { type: 'string', default: 'INFO', coerce: parseSeverity },
    bind: { type: 'string', default: '*', describe: 'address the sockets bind to' },
    'ep-port': { type: 'number', default: 9901, describe: 'ep: RESYNCSTATE port' },
    'felix-port': { type: 'number', default: 9902, describe: "ep: each Felix's endpoint port (unless its [felix] section has port=)" },
    'groups-port': { type: 'number', default: 9903, describe: 'network: GETGROUPS port' },
    'publish-port': { type: 'number', default: 9904, describe: 'network: GROUPUPDATE publication port' },
    'timeout-ms': { type: 'number', default: 40000, describe: 'ep: a Felix that does not answer within this is reconnected' },
    'keepalive-ms': { type: 'number', default: 5000, describe: 'ep: HEARTBEAT to an idle Felix after this' },
    'heartbeat-ms': { type: 'number', default: 10000, describe: 'network: networkheartbeat interval' },
    'republish-secs': { type: 'number', default: 300, describe: 'network: full republication interval (safety net)' },
    'interface-prefix': { type: 'string', default: 'tap', describe: 'ep: interface prefix told to Felix' },
    'metrics-port': { type: 'number', default: 0, describe: 'serve /livez, /readyz, /metrics, /status on this HTTP port (0 = off)' },
    'metrics-address': { type: 'string', default: '127.0.0.1', describe: 'address of the metrics HTTP server' },
    'max-message-bytes': { type: 'number', default: DEFAULT_MAX_MESSAGE_BYTES, describe: 'a peer sending a larger message is disconnected' },
    'curve-secret-key': { type: 'string', coerce: readSecretKeyFile, describe: "CurveZMQ: the plugin's secret key file (turns security on)" },
    'curve-public-key': { type: 'string', coerce: readKeyFile, describe: "CurveZMQ: the plugin's public key file (checked against the secret key)" },
    'felix-public-key': { type: 'string', coerce: readKeyFile, describe: "ep, CurveZMQ: the Felixes' public key file" },
    'curve-client-keys': { type: 'string', coerce: readKeyListFile, describe: 'CurveZMQ: file of the client public keys to admit, one per line (default: any client)' },
  })
  .check((a) => {
    const role = String(a._[0]);
    if (role !== 'network' && role !== 'ep') throw new Error(`unknown role '${role}' (expected network or ep)`);
    for (const k of ['ep-port', 'felix-port', 'groups-port', 'publish-port'] as const)
      if (!Number.isInteger(a[k]) || a[k] < 1 || a[k] > 65535) throw new Error(`--${k} must be a port number`);
    for (const k of ['timeout-ms', 'keepalive-ms', 'heartbeat-ms', 'republish-secs'] as const)
      if (!Number.isFinite(a[k]) || a[k] <= 0) throw new Error(`--${k} must be a positive number`);
    if (!/^[A-Za-z0-9_-]{1,4}$/.test(a['interface-prefix'])) throw new Error('--interface-prefix must be 1-4 letters or digits');
    if (!Number.isInteger(a['metrics-port']) || a['metrics-port'] < 0 || a['metrics-port'] > 65535) throw new Error('--metrics-port must be a port number, or 0 for none');
    if (!isIp(a['metrics-address']) && a['metrics-address'] !== 'localhost') throw new Error('--metrics-address must be an IP address (or localhost)');
    if (!Number.isInteger(a['max-message-bytes']) || a['max-message-bytes'] < 1024) throw new Error('--max-message-bytes must be a whole number of at least 1024');
    curveOf(a);
    return true;
  })
  .parseSync();

const role = String(argv._[0]) as 'network' | 'ep';
const socketOptions: SocketOptions = { maxMessageSize: argv['max-message-bytes'] };
const curve = curveOf(argv);
if (curve) socketOptions.curve = curve;

/** The plugin's key pair, or null; throws when the key flags are incomplete (the ep role needs --felix-public-key too). */
function curveOf(a: { _: Array<string | number>; 'curve-secret-key'?: string; 'curve-public-key'?: string; 'felix-public-key'?: string; 'curve-client-keys'?: string[] }): CurveKeyPair | null {
  const flag = (name: 'curve-secret-key' | 'curve-public-key' | 'felix-public-key') => ({ name: `--${name}`, key: a[name] ?? null });
  return resolveCurve(flag('curve-secret-key'), flag('curve-public-key'), String(a._[0]) === 'ep' ? [flag('felix-public-key')] : [], [
    { name: '--curve-client-keys', set: a['curve-client-keys'] !== undefined },
  ]);
}

runDaemon('plugin', async () => {
  const logDir = argv['log-dir'];
  const log = createLogger({
    name: `plugin-${role}`,
    file: logDir.toLowerCase() === 'none' ? null : path.join(logDir, `plugin-${role}.log`),
    fileLevel: argv['log-severity-file'],
    screenLevel: argv['log-severity-screen'],
  }).child({ component: `plugin-${role}` });

  const clientKeys = argv['curve-client-keys'];
  const authorizer = clientKeys ? await CurveAuthorizer.start(new Set(clientKeys), log) : undefined;
  let onChange: (data: import('./data.js').PluginData) => void = () => {};
  const source = new DataSource({ path: argv.data, log, onChange: (d) => onChange(d) });
  const data = await source.start();
  log.info({ data: argv.data, felixes: data.felixes.size, endpoints: data.endpoints.size }, 'starting');
  let server: EndpointRole | NetworkRole | undefined;
  const obs = new Observability(pluginProbe(role, () => source.current, () => server));
  const stopMetrics = await serveMetrics(obs, argv['metrics-address'], argv['metrics-port'], log);

  server =
    role === 'ep'
      ? await EndpointRole.start(
          {
            log,
            bindAddress: zmqAddress(argv.bind, argv['ep-port']),
            felixPort: argv['felix-port'],
            timeoutMs: argv['timeout-ms'],
            keepaliveMs: argv['keepalive-ms'],
            interfacePrefix: argv['interface-prefix'],
            socketOptions,
            felixServerKey: argv['felix-public-key'] ?? null,
          },
          data,
        )
      : await NetworkRole.start(
          {
            log,
            repAddress: zmqAddress(argv.bind, argv['groups-port']),
            pubAddress: zmqAddress(argv.bind, argv['publish-port']),
            heartbeatMs: argv['heartbeat-ms'],
            republishMs: argv['republish-secs'] * 1000,
            socketOptions,
          },
          data,
        );
  onChange = (d) => server!.update(d);
  log.info('ready');
  return async () => {
    log.info('stopping');
    authorizer?.close();
    await source.stop();
    await server!.stop();
    await stopMetrics();
  };
});
