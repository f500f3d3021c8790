/**
 * `tsgather server --name`: placeholders expanded by the server itself, so that one command
 * starting many servers (a Slurm array, a container per node) gives each a name of its own without
 * the shell's help: `$VAR` and `${VAR}` from the server's environment (`$SLURM_JOB_ID`,
 * `$SLURM_PROCID`), `{host}` and `{pid}`.
 */
import os from 'node:os';

export function expandServerName(template: string, env: NodeJS.ProcessEnv = process.env, pid = process.pid): string {
  const name = template
    .replace(/\$\{(\w+)\}|\$(\w+)/g, (_, braced: string | undefined, bare: string | undefined) => {
      const variable = (braced ?? bare)!;
      const value = env[variable];
      if (value === undefined || value === '') throw new Error(`--name ${template}: $${variable} is not set in the server's environment`);
      return value;
    })
    .replaceAll('{host}', os.hostname())
    .replaceAll('{pid}', String(pid));
  if (name.trim() === '') throw new Error(`--name ${template}: the name is empty`);
  return name;
}
