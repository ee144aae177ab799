import { expect } from 'chai';
import { labNeighbourEntries, neighbourLimitProblem, readNeighbourLimits } from '../../../src/lab/neighbour-budget.js';

describe('the lab and the kernel neighbour table (issue #15)', () => {
  it('estimates the entries per family: fabric peers, IPv4 containers every peer, IPv6 containers their gateway', () => {
    expect(labNeighbourEntries({ hosts: 2, ipv4Containers: 0, ipv6Containers: 0 })).to.deep.equal({ 4: 2, 6: 2 });
    // The lab: 30 hosts, one IPv4 container each.
    expect(labNeighbourEntries({ hosts: 30, ipv4Containers: 30, ipv6Containers: 0 })).to.deep.equal({ 4: 870 + 870 + 30, 6: 870 });
    expect(labNeighbourEntries({ hosts: 2, ipv4Containers: 5, ipv6Containers: 4 })).to.deep.equal({ 4: 2 + 20 + 5, 6: 2 + 8 });
  });

  it('refuses the 30-host lab at the default limit of 1024, in one line ending in the sysctl -w that makes it fit', () => {
    const problem = neighbourLimitProblem({ hosts: 30, ipv4Containers: 30, ipv6Containers: 0 }, { 4: 1024, 6: 1024 });
    expect(problem).to.not.equal(null);
    expect(problem!.split('\n')).to.have.length(1);
    expect(problem).to.match(/needs about 1770 IPv4 neighbour entries \(net\.ipv4\.neigh\.default\.gc_thresh3 = 1024\)/);
    expect(problem).to.match(/run {2}sysctl -w net\.ipv4\.neigh\.default\.gc_thresh2=2048 net\.ipv4\.neigh\.default\.gc_thresh3=4096$/);
    expect(problem, 'the IPv6 table holds 870').to.not.include('ipv6');
  });

  it('says nothing when the lab fits, or when the limits are not visible (the lab itself in a namespace)', () => {
    expect(neighbourLimitProblem({ hosts: 2, ipv4Containers: 8, ipv6Containers: 4 }, { 4: 1024, 6: 1024 })).to.equal(null);
    expect(neighbourLimitProblem({ hosts: 30, ipv4Containers: 30, ipv6Containers: 0 }, { 4: null, 6: null })).to.equal(null);
    expect(neighbourLimitProblem({ hosts: 30, ipv4Containers: 30, ipv6Containers: 0 }, { 4: 4096, 6: 4096 })).to.equal(null);
  });

  it('reads gc_thresh3 of each family; unreadable or nonsense is null', async () => {
    const values: Record<string, string> = { 'net/ipv4/neigh/default/gc_thresh3': '1024', 'net/ipv6/neigh/default/gc_thresh3': 'x' };
    expect(await readNeighbourLimits({ read: (key) => Promise.resolve(values[key] ?? null) })).to.deep.equal({ 4: 1024, 6: null });
    expect(await readNeighbourLimits({ read: () => Promise.reject(new Error('EACCES')) })).to.deep.equal({ 4: null, 6: null });
  });
});
