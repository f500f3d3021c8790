/** What `npm run bench -- --scale [...]` measures, from its command line. */
import os from 'node:os';
import { flagsOf, onlySections, positive } from '../arguments.js';

export const SCALE_SECTIONS = ['sizes', 'memory', 'floor', 'loss', 'refresh', 'fairness', 'real'] as const;
export type ScaleSection = (typeof SCALE_SECTIONS)[number];

export interface ScaleConfig {
  /** Cores the bench may use: the baseline's real workers, and the load generator gets the cores the controller and caller leave. */
  workers: number;
  /** Servers of 8 simulated workers, one column each. */
  sizes: number[];
  workersPerServer: number;
  /** Processes the simulated servers are spread over. */
  simProcesses: number;
  realServers: number;
  tinyJobs: number;
  tinyRuns: number;
  idleSeconds: number;
  statusCalls: number;
  fairnessSeconds: number;
  /** Profile the controller at the largest size and print where its time went. */
  profile: boolean;
  sections: Set<ScaleSection>;
}

const FULL = { sizes: [1, 16, 128, 500], tinyJobs: 1_000_000, tinyRuns: 3, idleSeconds: 10, statusCalls: 20, fairnessSeconds: 6, realServers: 32 };
/** A fast pass for checking the bench itself; its figures are not for the record. */
const QUICK = { sizes: [1, 16, 128], tinyJobs: 200_000, tinyRuns: 1, idleSeconds: 3, statusCalls: 5, fairnessSeconds: 3, realServers: 8 };

export function parseScaleArguments(argv: string[]): ScaleConfig {
  const workers = os.availableParallelism();
  const config: ScaleConfig = { ...FULL, workers, workersPerServer: 8, simProcesses: 0, profile: false, sections: new Set(SCALE_SECTIONS) };
  for (const { flag, value } of flagsOf(argv)) {
    if (flag === '--quick') Object.assign(config, QUICK);
    else if (flag === '--workers') config.workers = positive(flag, value());
    else if (flag === '--runs') config.tinyRuns = positive(flag, value());
    else if (flag === '--sizes')
      config.sizes = value()
        .split(',')
        .map((n) => positive(flag, n));
    else if (flag === '--real-servers') config.realServers = positive(flag, value());
    else if (flag === '--sim-processes') config.simProcesses = positive(flag, value());
    else if (flag === '--profile') config.profile = true;
    else if (flag === '--only') config.sections = onlySections(value(), SCALE_SECTIONS);
    else if (flag === '--help' || flag === '-h') {
      process.stdout.write(
        `usage: npm run bench -- --scale [--quick] [--workers N] [--runs N] [--sizes 1,16,128,500] [--real-servers N] [--sim-processes N] [--profile] [--only ${SCALE_SECTIONS.join(',')}]\n`,
      );
      process.exit(0);
    } else throw new Error(`unknown argument ${flag}; try --scale --help`);
  }
  // One core for the controller, one for the caller; the load generator gets the rest (at least one process).
  if (config.simProcesses === 0) config.simProcesses = Math.max(1, config.workers - 2);
  return config;
}
