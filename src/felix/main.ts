#!/usr/bin/env node
/**
 * `calico-felix --config-file FILE`: the per-host agent (SPEC §3, §5, §6).
 */
import { commandLine, runDaemon } from '../common/cli.js';
import { createLogger } from '../common/logging.js';
import { CurveAuthorizer } from '../common/zmq/zap.js';
import { loadFelixConfig } from './config.js';
import { FelixAgent } from './agent.js';
import { Dataplane } from './dataplane/index.js';

const argv = commandLine('calico-felix', '$0 --config-file FILE')
  .options({ 'config-file': { type: 'string', default: '/etc/calico/felix.cfg', describe: 'felix.cfg' } })
  .parseSync();

runDaemon('calico-felix', async () => {
  const { config, warnings, socketOptions } = loadFelixConfig(argv['config-file']);
  const log = createLogger({
    name: 'felix',
    file: config.log.LogFilePath,
    fileLevel: config.log.LogSeverityFile,
    screenLevel: config.log.LogSeverityScreen,
  }).child({ component: 'felix', host: config.global.FelixHostname });
  for (const w of warnings) log.warn(w);
  const clientKeys = config.security.CurveClientKeysFile;
  const authorizer = clientKeys ? await CurveAuthorizer.start(new Set(clientKeys), log) : undefined;
  const g = config.global;
  const dataplane = new Dataplane({
    log: log.child({ component: 'dataplane' }),
    interfacePrefix: g.InterfacePrefix,
    metadata: g.MetadataAddr ? { addr: g.MetadataAddr, port: g.MetadataPort } : null,
    retryMs: g.EndpointRetryTimeMillis,
  });
  await dataplane.start();
  const agent = await FelixAgent.start({ config, log, dataplane, socketOptions });
  log.info({ plugin: g.PluginAddress, aclmgr: g.ACLAddress }, 'ready');
  return async () => {
    log.info('stopping');
    authorizer?.close();
    await agent.stop();
    await dataplane.stop();
  };
});
