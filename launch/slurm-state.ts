/**
 * A cluster's folder (`<stateDir>/<name>/`, mode 0700): `state.json` with its job ids, so that
 * `tsgather cluster status|down --slurm` and a later session find them; the servers' key pair
 * (`server.key` mode 0600, `server.pub`); the batch script; the logs by default.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { readKeyPairFile, writeKeyPair, type KeyPair } from '../protocol/keys.js';

export interface JobRecord {
  id: string;
  submittedAt: number;
  /** When the launcher told its server to drain (SIGUSR1), if it did. */
  drainedAt?: number;
  /** When the launcher cancelled it (scancel). */
  cancelledAt?: number;
  /** When it was seen ended (or cancelled by the launcher). */
  endedAt?: number;
  /** Its last state as squeue said it. */
  state?: string;
}

export interface SlurmState {
  version: 1;
  name: string;
  createdAt: number;
  /** The controller's listen address the servers dial. */
  connect: string;
  /** The batch script every job of this cluster runs. */
  script: string;
  logDir: string;
  jobs: JobRecord[];
}

export const stateFile = (folder: string) => path.join(folder, 'state.json');
export const scriptFile = (folder: string) => path.join(folder, 'server-job.sh');

export function makeFolder(folder: string): void {
  mkdirSync(folder, { recursive: true, mode: 0o700 });
  chmodSync(folder, 0o700);
}

export function readState(folder: string): SlurmState | undefined {
  const file = stateFile(folder);
  if (!existsSync(file)) return undefined;
  const state = JSON.parse(readFileSync(file, 'utf8')) as SlurmState;
  if (state.version !== 1 || !Array.isArray(state.jobs)) throw new Error(`${file} is not a tsgather Slurm state file`);
  return state;
}

/** Written whole and renamed into place, so a reader never sees half of it. */
export function writeState(folder: string, state: SlurmState): void {
  const file = stateFile(folder);
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  renameSync(temporary, file);
}

/** The servers' key pair of this cluster: made on first use, read after. */
export function serverKeyPair(folder: string): { keyFile: string; publicFile: string; pair: KeyPair } {
  const keyFile = path.join(folder, 'server.key');
  const publicFile = path.join(folder, 'server.pub');
  if (existsSync(keyFile)) return { keyFile, publicFile, pair: readKeyPairFile(keyFile) };
  const made = writeKeyPair(folder, 'server');
  return { keyFile: made.secretFile, publicFile: made.publicFile, pair: made.pair };
}

/** Removes the servers' secret key once no job of the cluster can need it. */
export function removeServerKey(folder: string): void {
  rmSync(path.join(folder, 'server.key'), { force: true });
}
