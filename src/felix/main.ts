#!/usr/bin/env node
/**
 * `calico-felix --config-file FILE`: the per-host agent (SPEC §3, §5, §6).
 */
import os from 'node:os';
import { commandLine, runDaemon } from '../common/cli.js';
import { createLogger } from '../common/logging.js';
import { CurveAuthorizer } from '../common/zmq/zap.js';
import { loadFelixConfig } from './config.js';
import { FelixAgent } from './agent.js';
import { Dataplane, RtNetlink, readProtocolNames } from './dataplane/index.js';
import { ProcKernelTables } from './dataplane/drivers/kernel-tables.js';
import { procSysctl } from './dataplane/drivers/sysctl.js';
import { IpRouteLookup } from './dataplane/drivers/route-lookup.js';
import { execaRunner } from './dataplane/drivers/commands.js';
import { KernelTableMonitor, countAddresses } from './kernel-tables.js';
import { Observability, serveMetrics } from '../common/metrics.js';
import { felixProbe } from './probe.js';

const argv = commandLine('calico-felix', '$0 --config-file FILE')
  .options({ 'config-file': { type: 'string', default: '/etc/calico/felix.cfg', describe: 'felix.cfg' } })
  .parseSync();

runDaemon('calico-felix', async () => {
  const { config, warnings, socketOptions } = loadFelixConfig(argv['config-file']);
  const root = createLogger({
    name: 'felix',
    file: config.log.LogFilePath,
    fileLevel: config.log.LogSeverityFile,
    screenLevel: config.log.LogSeverityScreen,
  }).child({ host: config.global.FelixHostname });
  // Each part names itself once: pino repeats, rather than replaces, a key bound twice.
  const log = root.child({ component: 'felix' });
  for (const w of warnings) log.warn(w);
  const clientKeys = config.security.CurveClientKeysFile;
  const authorizer = clientKeys ? await CurveAuthorizer.start(new Set(clientKeys), log) : undefined;
  const g = config.global;
  const netlink = new RtNetlink();
  // Read (by the probes) before it is started: undefined until then.
  let agent: FelixAgent | undefined = undefined;
  const tables = new KernelTableMonitor({
    reader: new ProcKernelTables(procSysctl, netlink),
    sysctl: procSysctl,
    log: root.child({ component: 'kernel-tables' }),
    raiseLimits: g.RaiseKernelLimits,
    cpus: os.cpus().length,
    addresses: () => countAddresses(agent?.manager.endpoints.values() ?? []),
  });
  // The probe reads the dataplane only when scraped, after serveMetrics below.
  const obs = new Observability(felixProbe(() => ({ agent, dataplane, tables }), g.FelixHostname, new IpRouteLookup(execaRunner)));
  const applySeconds = obs.histogram(
    'calico_felix_dataplane_apply_seconds',
    'Time to apply chains and sets, or routes',
    ['part'],
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  );
  const dataplane = new Dataplane({
    log: root,
    interfacePrefix: g.InterfacePrefix,
    metadata: g.MetadataAddr ? { addr: g.MetadataAddr, port: g.MetadataPort } : null,
    endpointToHost: g.EndpointToHostAction,
    protocols: readProtocolNames(),
    retryMs: g.EndpointRetryTimeMillis,
    netlink,
    onApplied: (part, seconds) => {
      applySeconds.observe({ part }, seconds);
      // New endpoints are programmed: their addresses may need bigger neighbour tables.
      if (part === 'routes') tables.endpointsChanged();
    },
  });
  const stopMetrics = await serveMetrics(obs, config.metrics.MetricsAddress, config.metrics.MetricsPort, log);
  await dataplane.start();
  await tables.start();
  agent = await FelixAgent.start({ config, log, dataplane, socketOptions });
  log.info({ plugin: g.PluginAddress, aclmgr: g.ACLAddress }, 'ready');
  return async () => {
    log.info('stopping');
    authorizer?.close();
    await agent.stop();
    await tables.stop();
    await dataplane.stop();
    await stopMetrics();
  };
});
