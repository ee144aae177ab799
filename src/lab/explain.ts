/**
 * `calico-lab explain SRC DST`: the explanation `calico-status explain`
 * gives, then a real probe of the same protocol and port between the two
 * containers, and whether the kernel agreed (issue #16). A disagreement is a
 * bug in the explanation or the dataplane.
 */
import { netnsGet } from '../status/daemons.js';
import { ExplainError, ExplainRequest, ExplainSession } from '../status/explain-session.js';
import { Explanation, describePacket, explain, formatExplanation } from '../status/explain.js';
import { probeFlow } from './flow-probe.js';
import type { Lab } from './lab.js';

export interface LabExplanation {
  explanation: Explanation;
  /** Whether the probe got through; null when the protocol cannot be probed. */
  probe: boolean | null;
}

/** A session asking every daemon of the lab, each from inside its host's namespace. */
export function labExplainSession(lab: Lab): ExplainSession {
  return new ExplainSession(lab.hosts.flatMap((h) => lab.statusUrls(h).map((url) => ({ url, get: netnsGet(h.ns) }))));
}

export async function explainInLab(lab: Lab, session: ExplainSession, req: ExplainRequest): Promise<LabExplanation> {
  const x = explain(await session.inputs(req));
  if ('error' in x) throw new ExplainError(x.error);
  const probe = await probeFlow(lab.container(x.src.addr), lab.container(x.dst.addr), x.dst.addr, x.packet);
  return { explanation: x, probe };
}

/** Does the kernel agree? null: no probe. */
export const agrees = (r: LabExplanation): boolean | null => (r.probe === null ? null : r.probe === (r.explanation.verdict === 'ALLOW'));

export function formatLabExplanation(r: LabExplanation): string {
  const x = r.explanation;
  const what = `${x.src.addr} → ${x.dst.addr} ${describePacket(x.packet)}`;
  const verdict =
    r.probe === null
      ? `probe: none (only tcp, udp and icmp are probed)`
      : `probe: ${what} ${r.probe ? 'got through' : 'was dropped'}; the kernel ${agrees(r) ? 'AGREES with' : 'DISAGREES with'} the explanation`;
  return `${formatExplanation(x)}\n${verdict}`;
}
