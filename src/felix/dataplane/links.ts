/**
 * The host's links, as the dataplane needs them: which endpoint interfaces
 * exist and are up, kept current from rtnetlink link events, with a full
 * re-read as the fallback for events that were missed.
 */
import type { LinkEvent, LinkState, Netlink } from './drivers/netlink.js';

export class LinkTracker {
  private links = new Map<string, LinkState>();

  /** `onChange` hears every interface whose existence, index or up state changed. */
  constructor(private readonly netlink: Netlink, private readonly onChange: (name: string) => void) {}

  async start(): Promise<void> {
    this.netlink.onLinkEvent((e) => this.onEvent(e));
    await this.refresh();
  }

  get(name: string): LinkState | undefined {
    return this.links.get(name);
  }

  /** The link if it exists and is up. */
  ready(name: string): LinkState | null {
    const link = this.links.get(name);
    return link && link.up ? link : null;
  }

  all(): LinkState[] {
    return [...this.links.values()];
  }

  /** Lists every link again; reports the ones that changed. */
  async refresh(): Promise<void> {
    const before = this.links;
    this.links = new Map((await this.netlink.links()).map((l) => [l.name, l]));
    for (const [name, link] of this.links) if (!sameLink(before.get(name), link)) this.onChange(name);
    for (const name of before.keys()) if (!this.links.has(name)) this.onChange(name);
  }

  private onEvent(ev: LinkEvent): void {
    if (ev.kind === 'removed') {
      if (this.links.delete(ev.name)) this.onChange(ev.name);
      return;
    }
    const before = this.links.get(ev.link.name);
    this.links.set(ev.link.name, ev.link);
    if (!sameLink(before, ev.link)) this.onChange(ev.link.name);
  }
}

const sameLink = (a: LinkState | undefined, b: LinkState): boolean => a !== undefined && a.index === b.index && a.up === b.up;
