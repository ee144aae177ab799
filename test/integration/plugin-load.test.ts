/**
 * The built `plugin ep` under a RESYNCSTATE flood (SPEC §3 "Plugin ep under
 * load (v2)", issue #11 item 2): anybody reaching 9901 asks for the same
 * host's resync over and over while its Felix answers slowly. The resyncs
 * must not multiply, a real new endpoint must still reach the Felix within
 * seconds, and the plugin must stay small.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { perTestWorkspace } from '../support/workspace.js';
import { freePorts } from '../support/ports.js';
import { startCommand, waitFor } from '../support/process.js';
import { ReplyPeer, RequestPeer } from '../support/peers.js';
import { writeFileAtomic } from '../../src/common/files.js';
import { formatEndpointSection } from '../../src/plugin/data.js';

type Json = Record<string, unknown>;

const PLUGIN = 'src/plugin/main.js';
/** Endpoints on the attacked host: one resync is this many ENDPOINTCREATEDs. */
const ENDPOINTS = 2000;
const FLOOD = 200;
/** The Felix stand-in's delay per answer: one resync takes at least ENDPOINTS × this. */
const FELIX_DELAY_MS = 2;

function endpointSection(id: string, n: number): string {
  const ip = `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
  const mac = `ee:ee:ee:${((n >> 16) & 255).toString(16).padStart(2, '0')}:${((n >> 8) & 255).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`;
  return `${formatEndpointSection({ id, ip, mac, host: 'h1', group: 'g1' })}\n`;
}

/** A Felix (REP 9902) that records every request (its inbox) and answers each after `delayMs`. */
function slowFelix(delayMs: number): ReplyPeer {
  return new ReplyPeer(async (req) => {
    await new Promise((r) => setTimeout(r, delayMs));
    return { type: req['type'], rc: 'SUCCESS', message: '' };
  });
}

const count = (felix: ReplyPeer, type: string): number => felix.inbox.messages.filter((m) => m['type'] === type).length;

/** Resident set size of a process, in MiB. */
function rssMiB(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) / 1024;
}

describe('plugin ep under a RESYNCSTATE flood (built command, real sockets)', function () {
  this.timeout(60000);
  const ws = perTestWorkspace('plugin-load-test');

  it(`refuses ${FLOOD - 1} overlapping resyncs, delivers a new endpoint within seconds and stays small`, async () => {
    const [epPort, felixPort] = await freePorts(2);
    const data = path.join(ws.dir, 'data.txt');
    let text = `[felix h1]\nip=127.0.0.1\nport=${felixPort}\nhost=h1\n\n`;
    for (let n = 0; n < ENDPOINTS; n++) text += endpointSection(`ep${n}`, n);
    fs.writeFileSync(data, text);
    const felix = ws.track(await slowFelix(FELIX_DELAY_MS).bind(`tcp://127.0.0.1:${felixPort}`));
    const plugin = startCommand(PLUGIN, [
      'ep',
      '--data',
      data,
      '--log-dir',
      'none',
      '--log-severity-screen',
      'INFO',
      '--bind',
      '127.0.0.1',
      '--ep-port',
      String(epPort),
      '--timeout-ms',
      '20000',
    ]);
    await waitFor('plugin ready', () => plugin.output().includes('"ready"'), 15000);

    // A real container is networked halfway through the flood.
    const attacker = ws.track(new RequestPeer(`tcp://127.0.0.1:${epPort}`));
    const replies: Json[] = [];
    let written = 0;
    for (let i = 0; i < FLOOD; i++) {
      replies.push(await attacker.request({ type: 'RESYNCSTATE', resync_id: `flood-${i}`, hostname: 'h1', issued: Date.now() }));
      if (i === FLOOD / 2) {
        writeFileAtomic(data, text + endpointSection('fresh', ENDPOINTS));
        written = Date.now();
      }
    }
    await waitFor('the new endpoint at its Felix', () => felix.inbox.messages.some((m) => m['endpoint_id'] === 'fresh'), 5000, 10);
    const deliveredMs = Date.now() - written;
    const rss = rssMiB(plugin.child.pid!);
    const creates = count(felix, 'ENDPOINTCREATED');
    console.log(`      new endpoint at Felix after ${deliveredMs} ms; plugin RSS ${rss.toFixed(0)} MiB; ${creates} ENDPOINTCREATEDs received`);

    expect(rss, 'plugin RSS (MiB)').to.be.below(200);
    expect(creates, 'ENDPOINTCREATEDs at Felix').to.be.at.most(2 * (ENDPOINTS + 1));
    expect(replies[0]).to.deep.include({ rc: 'SUCCESS', endpoint_count: ENDPOINTS });
    for (const r of replies.slice(1)) expect(r).to.deep.include({ type: 'RESYNCSTATE', rc: 'FAILURE', message: 'resync in progress', endpoint_count: 0 });
  });
});
