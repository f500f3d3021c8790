/**
 * What is checked before any job is submitted, so that a job Slurm would refuse, or leave pending
 * for ever, is an error now that says why: sbatch on the PATH, the partition, the wall-time against
 * its MaxTime, cores and memory against its largest node, and then Slurm's own verdict on the
 * whole script (`sbatch --test-only`: account, qos, constraint, extra directives).
 */
import { SlurmCommandError, type SlurmCommands, type SlurmPartition } from './slurm-commands.js';
import { formatWalltime, type ResolvedSlurmOptions } from './slurm-options.js';

export class SlurmConfigError extends Error {
  override name = 'SlurmConfigError';
}

function describePartitions(partitions: SlurmPartition[]): string {
  return partitions.map((p) => `${p.name}${p.isDefault ? ' (default)' : ''}`).join(', ') || 'none';
}

/** Throws a SlurmConfigError (or SlurmUnavailableError) naming what Slurm would not accept. */
export async function checkAgainstSlurm(options: ResolvedSlurmOptions, slurm: SlurmCommands, script: string): Promise<void> {
  slurm.requireSbatch();
  const partitions = await slurm.partitions();
  const partition = options.partition === undefined ? partitions.find((p) => p.isDefault) : partitions.find((p) => p.name === options.partition);
  if (!partition) {
    throw new SlurmConfigError(
      options.partition === undefined
        ? `this Slurm cluster has no default partition: give one (partitions: ${describePartitions(partitions)})`
        : `partition '${options.partition}' does not exist (partitions: ${describePartitions(partitions)})`,
    );
  }
  if (options.walltimeSeconds !== undefined && partition.maxTimeSeconds !== undefined && options.walltimeSeconds > partition.maxTimeSeconds) {
    throw new SlurmConfigError(
      `walltime ${options.walltime} is over partition ${partition.name}'s MaxTime of ${formatWalltime(partition.maxTimeSeconds)}: Slurm would leave the jobs pending for ever (reason PartitionTimeLimit)`,
    );
  }
  const nodes = await slurm.nodes(partition.name);
  if (nodes.length === 0) throw new SlurmConfigError(`partition ${partition.name} has no nodes`);
  const mostCpus = Math.max(...nodes.map((node) => node.cpus));
  if (options.cores > mostCpus) throw new SlurmConfigError(`cores ${options.cores} is more than any node of partition ${partition.name} has (at most ${mostCpus} CPUs)`);
  const mostMemory = Math.max(...nodes.map((node) => node.memoryMb));
  if (options.memoryMb !== undefined && options.memoryMb > mostMemory) {
    throw new SlurmConfigError(`memory ${options.memoryMb}M is more than any node of partition ${partition.name} has (at most ${mostMemory}M)`);
  }
  try {
    await slurm.testOnly(script);
  } catch (error) {
    if (!(error instanceof SlurmCommandError)) throw error;
    throw new SlurmConfigError(`Slurm would refuse the job (sbatch --test-only): ${error.stderr.trim().replace(/^sbatch: error: /gm, '')}`);
  }
}
