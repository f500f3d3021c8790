/**
 * One Slurm cluster of compute servers, as both the notebook's launcher and `tsgather cluster up
 * --slurm` make it: its folder (mode 0700) with the servers' key pair, the batch script and the
 * state file, checked against Slurm before anything is submitted.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { keyToHex, readKeyPairFile } from '../protocol/keys.js';
import { checkAgainstSlurm } from './slurm-checks.js';
import { SlurmCommands } from './slurm-commands.js';
import { SlurmJobs } from './slurm-jobs.js';
import { resolveSlurmOptions, type ResolvedSlurmOptions, type SlurmOptions } from './slurm-options.js';
import { batchScript, shellQuote, type ServerLink } from './slurm-script.js';
import { makeFolder, readState, scriptFile, serverKeyPair, writeState } from './slurm-state.js';

/** This Node and this tsgather, by absolute path: right where the nodes share this file system (most clusters' home and software folders). */
export function defaultCommand(): string {
  const cli = fileURLToPath(new URL('../cli/main.js', import.meta.url));
  return `${shellQuote(process.execPath)} ${shellQuote(cli)}`;
}

export function resolveOptions(options: SlurmOptions): ResolvedSlurmOptions {
  return resolveSlurmOptions(options, defaultCommand());
}

/** A link with placeholders, for checking a script with Slurm before the controller's address is known. */
const PLACEHOLDER_KEY = '0'.repeat(64);

export interface PreparedCluster {
  slurm: SlurmCommands;
  keyFile: string;
  publicFile: string;
  serverPublicKey: string;
}

/**
 * Makes the folder and the servers' keys (or reads `keyFile`, a key pair the caller made), and
 * checks a script with these options against Slurm.
 */
export async function prepareCluster(options: ResolvedSlurmOptions, connect = 'tcp://127.0.0.1:1', keyFile?: string): Promise<PreparedCluster> {
  const slurm = new SlurmCommands(options.env);
  slurm.requireSbatch();
  makeFolder(options.folder);
  makeFolder(options.logDir);
  const keys = keyFile ? { keyFile: path.resolve(keyFile), publicFile: `${keyFile.replace(/\.key$/, '')}.pub`, pair: readKeyPairFile(keyFile) } : serverKeyPair(options.folder);
  const trial = path.join(options.folder, 'trial-job.sh');
  writeFileSync(trial, batchScript(options, { connect, controllerKey: PLACEHOLDER_KEY, keyFile: keys.keyFile }), { mode: 0o600 });
  try {
    await checkAgainstSlurm(options, slurm, trial);
  } finally {
    rmSync(trial, { force: true });
  }
  return { slurm, keyFile: keys.keyFile, publicFile: keys.publicFile, serverPublicKey: keys.pair.publicKey };
}

/** Writes the batch script the jobs run, and the state file (with the jobs it had, when `keepJobs`); returns the jobs. */
export function openCluster(options: ResolvedSlurmOptions, prepared: PreparedCluster, link: Omit<ServerLink, 'keyFile'>, keepJobs: boolean): SlurmJobs {
  const full: ServerLink = { ...link, controllerKey: link.controllerKey.length === 64 ? link.controllerKey : keyToHex(link.controllerKey), keyFile: prepared.keyFile };
  const script = batchScript(options, full);
  writeFileSync(scriptFile(options.folder), script, { mode: 0o600 });
  const earlier = readState(options.folder);
  const jobs = keepJobs ? (earlier?.jobs ?? []) : [];
  const state = { version: 1 as const, name: options.name, createdAt: earlier?.createdAt ?? Date.now(), connect: link.connect, script: scriptFile(options.folder), logDir: options.logDir, jobs };
  writeState(options.folder, state);
  return new SlurmJobs(prepared.slurm, options.folder, state);
}
