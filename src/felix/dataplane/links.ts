/**
 * The host's links, as the dataplane needs them: which endpoint interfaces
 * exist and are up, kept current from rtnetlink link events, with re-reads
 * (of the names waited for, or of everything) as the fallback for events
 * that were missed.
 */
import type { LinkEvent, LinkState, Netlink } from './drivers/netlink.js';

export class LinkTracker {
  private links = new Map<string, LinkState>();
  /** ifindex → name, for the address checks every endpoint request makes. */
  private names = new Map<number, string>();

  /** `onChange` hears every interface whose existence, index or up state changed, with how it was before. */
  constructor(
    private readonly netlink: Netlink,
    private readonly onChange: (name: string, before: LinkState | undefined) => void,
  ) {}

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

  byIndex(index: number): LinkState | undefined {
    const name = this.names.get(index);
    return name === undefined ? undefined : this.links.get(name);
  }

  all(): LinkState[] {
    return [...this.links.values()];
  }

  /** Lists every link again; reports the ones that changed. */
  async refresh(): Promise<void> {
    const before = this.links;
    this.links = new Map((await this.netlink.links()).map((l) => [l.name, l]));
    this.names = new Map([...this.links.values()].map((l) => [l.index, l.name]));
    for (const [name, link] of this.links) if (!sameLink(before.get(name), link)) this.onChange(name, before.get(name));
    for (const [name, link] of before) if (!this.links.has(name)) this.onChange(name, link);
  }

  /** Asks for a few links by name (cheaper than listing thousands); reports the ones that changed. */
  async refreshNames(names: string[]): Promise<void> {
    for (const name of names) this.update(name, await this.netlink.link(name));
  }

  private onEvent(ev: LinkEvent): void {
    if (ev.kind === 'removed') this.update(ev.name, null);
    else this.update(ev.link.name, ev.link);
  }

  private update(name: string, link: LinkState | null): void {
    const before = this.links.get(name);
    if (before && this.names.get(before.index) === name) this.names.delete(before.index);
    if (link === null) {
      if (this.links.delete(name)) this.onChange(name, before);
      return;
    }
    this.links.set(name, link);
    this.names.set(link.index, name);
    if (!sameLink(before, link)) this.onChange(name, before);
  }
}

const sameLink = (a: LinkState | undefined, b: LinkState): boolean => a !== undefined && a.index === b.index && a.up === b.up;
