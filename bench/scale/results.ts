/** What one `--scale` run found, as written to bench/scale-results.json and rendered by report.ts. */
import type { FairnessFigures } from './fairness.js';
import type { LossFigures } from './loss.js';
import type { MemoryFigures } from './memory.js';
import type { RawFloor } from './raw-floor.js';
import type { RefreshFigures } from './refresh.js';
import type { SizeFigures } from './size-run.js';

export interface Labelled<T> {
  label: string;
  figures: T;
}

export interface ScaleResults {
  /** The baseline (one real server of `workers` real workers) first, then the simulated sizes. */
  sizes: SizeFigures[];
  memory: Labelled<MemoryFigures>[];
  floor: RawFloor[];
  loss: LossFigures[];
  refresh: Labelled<RefreshFigures>[];
  fairness: FairnessFigures[];
  /** 32 real servers of 1 real worker beside 32 simulated ones: the same measures, to tie the simulation to reality. */
  real: {
    sizes: SizeFigures[];
    loss: LossFigures[];
    refresh: Labelled<RefreshFigures>[];
    fairness: FairnessFigures[];
  };
  notes: string[];
}

export function emptyResults(): ScaleResults {
  return { sizes: [], memory: [], floor: [], loss: [], refresh: [], fairness: [], real: { sizes: [], loss: [], refresh: [], fairness: [] }, notes: [] };
}
