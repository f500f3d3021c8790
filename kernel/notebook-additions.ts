/** What a ScatterGather has in a notebook on top of the `tsgather` API (see scatter-gather.ts), as types for completion. */
import type { DurationsChart, TimedResult } from './views.js';

export interface NotebookAdditions {
  /**
   * Draws a Vega-Lite chart of job durations per worker, for a finished batch.
   * @param results the job results with timings: the array from `mapResults`, `waitForResult` or `poll` (not values from `map`)
   */
  plotDurations(results: readonly TimedResult[]): DurationsChart;
}
