/**
 * What a lab is, as `DIR/lab.json` records it (SPEC §9): its hosts and their
 * namespaces, its containers, its processes, and where each host's daemons
 * serve /status. Types and pure reads only, without side effects on import:
 * `calico-status --lab-dir` reads a lab through this module and never loads
 * lab.ts, which runs commands and starts daemons.
 */
import path from 'node:path';
import { readTextFile } from '../common/files.js';
import { ipFamily } from '../common/wire/codec.js';

/** HTTP ports of /livez, /readyz, /metrics, /status on 127.0.0.1 inside each host's namespace. */
export const LAB_METRICS_PORTS = { felix: 9091, 'acl-manager': 9092, 'plugin-ep': 9093, 'plugin-network': 9094 } as const;

export interface LabHost {
  name: string;
  ns: string;
  ip: string;
  /** Its IPv6 fabric address (felix.txt `ip6=`): BIRD's IPv6 sessions run between these. */
  ip6: string;
}

export interface LabContainer {
  id: string;
  /** Its address, or for a dual-stack container its IPv4,IPv6 pair (network-container's IP, canonical). */
  ip: string;
  group: string;
  host: string;
  ns: string;
}

export interface LabCommand {
  ns: string;
  cmd: string;
  args: string[];
}

export interface LabState {
  prefix: string;
  dir: string;
  hosts: LabHost[];
  containers: LabContainer[];
  /** process name → pid */
  pids: Record<string, number>;
  /** process name → how it was started, so it can be restarted (absent in labs from older builds). */
  commands?: Record<string, LabCommand>;
  /** Folder of the CurveZMQ key pairs when every socket of the lab is authenticated (`up --curve`). */
  keysDir?: string;
}

/** The lab's record in its folder. */
export function labStateFile(dir: string): string {
  return path.join(dir, 'lab.json');
}

/** The lab recorded in `dir`; throws one line (`DIR/lab.json: cannot read: ENOENT` when no lab is up there). */
export function readLabState(dir: string): LabState {
  const file = labStateFile(dir);
  const text = readTextFile(file);
  try {
    return JSON.parse(text) as LabState;
  } catch (err) {
    throw new Error(`${file}: not a lab record (${(err as Error).message})`);
  }
}

/** The /status URLs of the daemons on host `h` (reachable only inside its namespace): all four on the first host, Felix on the others. */
export function labStatusUrls(state: LabState, h: LabHost): string[] {
  const names = h.name === state.hosts[0]!.name ? (['plugin-ep', 'plugin-network', 'acl-manager', 'felix'] as const) : (['felix'] as const);
  return names.map((n) => `http://127.0.0.1:${LAB_METRICS_PORTS[n]}/status`);
}

/** A container's addresses: one, or IPv4 and IPv6 for a dual-stack container. */
export function addressesOf(c: Pick<LabContainer, 'ip'>): string[] {
  return c.ip.split(',');
}

/** A container's address in `family`, if it has one. */
export function addressIn(c: Pick<LabContainer, 'ip'>, family: 4 | 6): string | undefined {
  return addressesOf(c).find((a) => ipFamily(a) === family);
}
