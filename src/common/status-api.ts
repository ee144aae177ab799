/**
 * The read-only documents under `/status/NAME` that `calico-status explain`
 * asks for (issue #16): what each daemon knows about one endpoint, and
 * Felix's route to an address. Served as JSON; these types are the contract
 * between the daemons and the command.
 */
import type { Acls } from './wire/acl-api.js';
import type { Rule } from './wire/rules.js';
import type { EndpointStatus } from './metrics.js';

export type RuleDirection = 'inbound' | 'outbound';

/** One group rule that produced a rule of an endpoint's ACLs. */
export interface RuleSource {
  group: string;
  direction: RuleDirection;
  /** Its index in the group's rules of that direction, as the plugin sent them. */
  index: number;
  /** The group it names (its members' addresses became cidrs); null for a cidr rule. */
  via: string | null;
}

/** ACL manager `/status/endpoint?id=ID`: the endpoint's groups, its ACLs and where each rule came from. */
export interface AclEndpointView {
  endpoint: string;
  addrs: string[];
  /** Its groups, sorted, with their rules as the plugin sent them (cidrs canonical, invalid rules left out). */
  groups: Array<{ group: string; members: number; rules: Record<RuleDirection, Rule[]> }>;
  acls: Acls;
  /** Parallel to `acls`' rule lists: the group rules behind each rule. */
  sources: Record<'v4' | 'v6', Record<RuleDirection, RuleSource[][]>>;
}

/** A rule of an endpoint's ACLs that Felix did not program, and why. */
export interface SkippedRule {
  family: 4 | 6;
  direction: RuleDirection;
  index: number;
  reason: string;
}

/** Felix `/status/endpoint?id=ID`: the endpoint as Felix programs it. */
export interface FelixEndpointView {
  host: string;
  endpoint: EndpointStatus;
  /** The ACLs Felix holds for it (the latest ACLUPDATE); null while none has arrived (denied). */
  acls: Acls | null;
  skipped: SkippedRule[];
  /** Its chains as the kernel has them (as Felix last read or wrote them). */
  chains: Array<{ family: 4 | 6; name: string; rules: string[] }>;
}

/** Felix `/status/route?dst=ADDR`: the kernel's route from Felix's host to an address. */
export interface RouteView {
  host: string;
  dst: string;
  /** Outgoing interface and next hop; null when the kernel has no route (`error` says why). */
  dev: string | null;
  gateway: string | null;
  /** Who made the most specific route (`bird`, `kernel`, `boot`…), if the kernel says. */
  protocol: string | null;
  /** The endpoint of this Felix whose interface `dev` is, if any. */
  endpoint: string | null;
  error: string | null;
}
