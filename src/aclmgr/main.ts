#!/usr/bin/env node
/**
 * `calico-acl-manager --config-file FILE` (SPEC §8): turns security groups
 * into each endpoint's ACLs and publishes them to every Felix.
 */
import { commandLine, runDaemon } from '../common/cli.js';
import { createLogger } from '../common/logging.js';
import { loadAclManagerConfig } from './config.js';
import { AclManager } from './manager.js';
import { Observability, serveMetrics } from '../common/metrics.js';

const NAME = 'calico-acl-manager';

const argv = commandLine(NAME, '$0 --config-file FILE')
  .options({
    'config-file': { type: 'string', demandOption: true, describe: 'acl_manager.cfg' },
  })
  .parseSync();

runDaemon(NAME, async () => {
  const { config, warnings } = loadAclManagerConfig(argv['config-file']);
  const log = createLogger({
    name: NAME,
    file: config.log.LogFilePath,
    fileLevel: config.log.LogSeverityFile,
    screenLevel: config.log.LogSeverityScreen,
  }).child({ component: 'aclmgr' });
  for (const w of warnings) log.warn(w);
  log.info({ config: argv['config-file'], plugin: config.global.PluginAddress }, 'starting');
  const manager = await AclManager.start(config, log);
  const stopMetrics = await serveMetrics(new Observability(manager.probe(config)), config.metrics.MetricsAddress, config.metrics.MetricsPort, log);
  log.info('ready');
  return async () => {
    log.info('stopping');
    await stopMetrics();
    await manager.stop();
  };
});
