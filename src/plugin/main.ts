#!/usr/bin/env node
/**
 * `plugin network|ep`: the orchestrator's stand-in (SPEC §1, §8).
 */
import path from 'node:path';
import { commandLine, flagParser, keyOption, runDaemon } from '../common/cli.js';
import { host, int, port, severity, zmqAddress } from '../common/config.js';
import { createLogger } from '../common/logging.js';
import { readKeyFile, readKeyListFile, readSecretKeyFile, resolveCurve } from '../common/curve.js';
import { interfacePrefix } from '../common/endpoint-names.js';
import { CurveAuthorizer } from '../common/zmq/zap.js';
import { maxMessageBytes } from '../common/security.js';
import { DataSource } from './source.js';
import { EndpointRole } from './ep-role.js';
import { NetworkRole } from './network-role.js';
import { Observability, metricsAddress, metricsSection, serveMetrics } from '../common/metrics.js';
import { pluginProbe } from './probe.js';
import type { CurveKeyPair, SocketOptions } from '../common/zmq/options.js';

// Each flag is checked by the parser of the config key it corresponds to in felix.cfg or
// acl_manager.cfg (ports, timings, metrics, size limit, key files): the same values pass.
const positive = (dflt: number) => int(dflt, 1);
const argv = commandLine('plugin', '$0 <network|ep> [options]')
  .command('network', 'serve the Network API to the ACL manager (REP 9903, PUB 9904)')
  .command('ep', 'serve the Endpoint API to every Felix (REP 9901, REQ to each Felix 9902)')
  .demandCommand(1, 1, 'name a role: network or ep')
  .options({
    data: { type: 'string', default: '/opt/plugin/data.txt', describe: 'data file, or a directory whose *.txt files are merged' },
    'log-dir': { type: 'string', default: '/var/log/calico', describe: "log folder ('none' for no log file)" },
    'log-severity-file': keyOption('log-severity-file', severity('INFO')),
    'log-severity-screen': keyOption('log-severity-screen', severity('INFO')),
    bind: keyOption('bind', host('*'), 'address the sockets bind to'),
    'ep-port': keyOption('ep-port', port(9901), 'ep: RESYNCSTATE port'),
    'felix-port': keyOption('felix-port', port(9902), "ep: each Felix's endpoint port (unless its [felix] section has port=)"),
    'groups-port': keyOption('groups-port', port(9903), 'network: GETGROUPS port'),
    'publish-port': keyOption('publish-port', port(9904), 'network: GROUPUPDATE publication port'),
    'timeout-ms': keyOption('timeout-ms', positive(40000), 'ep: a Felix that does not answer within this is reconnected'),
    'keepalive-ms': keyOption('keepalive-ms', positive(5000), 'ep: HEARTBEAT to an idle Felix after this'),
    'heartbeat-ms': keyOption('heartbeat-ms', positive(10000), 'network: networkheartbeat interval'),
    'republish-secs': keyOption('republish-secs', positive(300), 'network: full republication interval (safety net)'),
    'interface-prefix': keyOption('interface-prefix', interfacePrefix('tap'), 'ep: interface prefix told to Felix'),
    'metrics-port': keyOption('metrics-port', metricsSection().MetricsPort, 'serve /livez, /readyz, /metrics, /status on this HTTP port (0 = off)'),
    'metrics-address': keyOption('metrics-address', metricsAddress('127.0.0.1'), 'address of the metrics HTTP server'),
    'max-message-bytes': keyOption('max-message-bytes', maxMessageBytes(), 'a peer sending a larger message is disconnected'),
    'curve-secret-key': {
      type: 'string',
      coerce: flagParser('curve-secret-key', readSecretKeyFile),
      describe: "CurveZMQ: the plugin's secret key file (turns security on)",
    },
    'curve-public-key': {
      type: 'string',
      coerce: flagParser('curve-public-key', readKeyFile),
      describe: "CurveZMQ: the plugin's public key file (checked against the secret key)",
    },
    'felix-public-key': { type: 'string', coerce: flagParser('felix-public-key', readKeyFile), describe: "ep, CurveZMQ: the Felixes' public key file" },
    'curve-client-keys': {
      type: 'string',
      coerce: flagParser('curve-client-keys', readKeyListFile),
      describe: 'CurveZMQ: file of the client public keys to admit, one per line (default: any client)',
    },
  })
  .check((a) => {
    const role = String(a._[0]);
    if (role !== 'network' && role !== 'ep') throw new Error(`unknown role '${role}' (expected network or ep)`);
    curveOf(a);
    return true;
  })
  .parseSync();

const role = String(argv._[0]) as 'network' | 'ep';
const socketOptions: SocketOptions = { maxMessageSize: argv['max-message-bytes'] };
const curve = curveOf(argv);
if (curve) socketOptions.curve = curve;

/** The plugin's key pair, or null; throws when the key flags are incomplete (the ep role needs --felix-public-key too). */
function curveOf(a: {
  _: Array<string | number>;
  'curve-secret-key'?: string;
  'curve-public-key'?: string;
  'felix-public-key'?: string;
  'curve-client-keys'?: string[];
}): CurveKeyPair | null {
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
  // Read (by the probe) before it is started: undefined until then.
  let server: EndpointRole | NetworkRole | undefined = undefined;
  const obs = new Observability(
    pluginProbe(
      role,
      () => source.current,
      () => server,
    ),
  );
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
  onChange = (d) => server.update(d);
  log.info('ready');
  return async () => {
    log.info('stopping');
    authorizer?.close();
    await source.stop();
    await server.stop();
    await stopMetrics();
  };
});
