import { expect } from 'chai';
import { summarise } from '../../../src/lab/prober.js';

const series = (...probes: Array<[number, boolean]>) => probes.map(([at, ok]) => ({ at, ok }));

describe('prober summarise (outage from probe series)', () => {
  const rows: {
    name: string;
    allowed: Array<[number, boolean]>;
    denied?: Array<[number, boolean]>;
    worst: number;
    failures: number;
    endedDown: boolean;
    leaks?: number;
  }[] = [
    { name: 'no probes', allowed: [], worst: 0, failures: 0, endedDown: false },
    {
      name: 'all good',
      allowed: [
        [0, true],
        [50, true],
        [100, true],
      ],
      worst: 0,
      failures: 0,
      endedDown: false,
    },
    {
      name: 'one failure: outage until the next success',
      allowed: [
        [0, true],
        [50, false],
        [300, true],
      ],
      worst: 250,
      failures: 1,
      endedDown: false,
    },
    {
      name: 'the longest of two outages',
      allowed: [
        [0, false],
        [250, true],
        [300, false],
        [550, false],
        [800, false],
        [1000, true],
      ],
      worst: 700,
      failures: 4,
      endedDown: false,
    },
    {
      name: 'still down at the end: counted up to the last probe',
      allowed: [
        [0, true],
        [100, false],
        [400, false],
      ],
      worst: 300,
      failures: 2,
      endedDown: true,
    },
    {
      name: 'denied successes are leaks',
      allowed: [[0, true]],
      denied: [
        [0, false],
        [250, true],
        [500, false],
      ],
      worst: 0,
      failures: 0,
      endedDown: false,
      leaks: 1,
    },
  ];
  for (const r of rows)
    it(r.name, () => {
      const report = summarise(series(...r.allowed), series(...(r.denied ?? [])));
      expect(report).to.deep.equal({
        probes: r.allowed.length,
        failures: r.failures,
        worstOutageMs: r.worst,
        endedDown: r.endedDown,
        deniedProbes: r.denied?.length ?? 0,
        leaks: r.leaks ?? 0,
      });
    });
});
