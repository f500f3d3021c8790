/** `tsgather kernel install|uninstall`: the kernelspec that lets Jupyter start our kernel. */
import { Command } from 'commander';
import { installKernelSpec, kernelSpecDir, uninstallKernelSpec, type KernelSpecOptions } from '../kernel/install.js';

interface SpecFlags {
  prefix?: string;
  name?: string;
  system?: boolean;
}

const specOptions = (flags: SpecFlags): KernelSpecOptions => ({ prefix: flags.prefix, name: flags.name, user: !flags.system });

function withSpecFlags(command: Command): Command {
  return command
    .option('--prefix <dir>', 'use <dir>/share/jupyter/kernels (as jupyter kernelspec --prefix), e.g. a virtualenv')
    .option('--name <name>', 'kernelspec name', undefined)
    .option('--system', 'system-wide (/usr/local/share/jupyter) instead of the user data directory');
}

export function kernelCommand(): Command {
  const kernel = new Command('kernel').description('install or remove the Jupyter kernelspec');
  kernel.addCommand(
    withSpecFlags(new Command('install').description('write the kernelspec so Jupyter, VS Code and nbconvert can start the kernel')).action(async (flags: SpecFlags) => {
      const dir = await installKernelSpec(specOptions(flags));
      process.stdout.write(`installed kernelspec in ${dir}\n`);
    }),
  );
  kernel.addCommand(
    withSpecFlags(new Command('uninstall').description('remove the kernelspec')).action(async (flags: SpecFlags) => {
      const options = specOptions(flags);
      if (await uninstallKernelSpec(options)) {
        process.stdout.write(`removed ${kernelSpecDir(options)}\n`);
      } else {
        process.stderr.write(`no kernelspec at ${kernelSpecDir(options)}\n`);
        process.exitCode = 1;
      }
    }),
  );
  return kernel;
}
