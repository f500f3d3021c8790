/**
 * Which of the caller's Node flags the controller child may inherit. fork() passes the caller's
 * execArgv on as it is, and some of those flags name the caller's own program: `node -e CODE`
 * would run CODE again in the child (which forks a child of its own, and so on without end),
 * `--test` or `--watch` would turn the child into a test run or a watcher, `--inspect` would
 * fight the caller for its debugger port, and `-r`/`--import` would load the caller's preloads
 * into a process that runs only tsgather's own compiled code. Everything else (heap limits,
 * `--enable-source-maps`, `--no-warnings`, V8 tuning) passes on.
 */

/** Flags that are dropped, and whose value, when not written `--flag=value`, is the next item. */
const DROPPED_WITH_VALUE = new Set([
  '-e',
  '--eval',
  '-p',
  '--print',
  '-r',
  '--require',
  '--import',
  '--loader',
  '--experimental-loader',
  '--input-type',
  '--watch-path',
  '--inspect-port',
  '--debug-port',
  '--env-file',
  '--env-file-if-exists',
  '--test-name-pattern',
  '--test-skip-pattern',
  '--test-reporter',
  '--test-reporter-destination',
  '--test-concurrency',
  '--test-timeout',
  '--test-shard',
  '--test-isolation',
  '--experimental-test-coverage',
]);

/** Dropped flags that take no separate value (a `=value` of their own, if any, goes with them). */
const DROPPED_PREFIXES = ['--test', '--experimental-test', '--watch', '--inspect', '--debug', '--interactive', '--check'];

/** Short flags that are dropped when they appear alone or combined (`-pe`): eval, print, require, interactive, check. */
const DROPPED_SHORT = /^-[a-zA-Z]*[epric][a-zA-Z]*$/;
/** Of those, the ones that take the next item as their value. */
const SHORT_WITH_VALUE = /[epr]/;

/** The caller's `execArgv` less the flags that belong to the caller's own program (see above). */
export function inheritableExecArgv(execArgv: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const arg = execArgv[i]!;
    const name = arg.split('=', 1)[0]!;
    const hasValue = arg.includes('=');
    if (DROPPED_WITH_VALUE.has(name)) {
      if (!hasValue) i++;
    } else if (!arg.startsWith('--') && DROPPED_SHORT.test(arg)) {
      if (SHORT_WITH_VALUE.test(arg)) i++;
    } else if (DROPPED_PREFIXES.some((prefix) => name === prefix || name.startsWith(`${prefix}-`))) {
      // A value written as a separate item is not a flag: it goes with the flag before it.
      if (!hasValue && i + 1 < execArgv.length && !execArgv[i + 1]!.startsWith('-')) i++;
    } else {
      kept.push(arg);
    }
  }
  return kept;
}
