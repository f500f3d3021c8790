/**
 * glibc malloc settings for the Node processes tsgather starts: the same ones that get
 * YOUNG_GENERATION_FLAGS (controller child, workers and spares, kernel, server daemon).
 *
 * ZeroMQ allocates each received frame with malloc. By default glibc gives an allocation of over
 * 128 KB its own mapping (the bar rises to the largest size freed, but an equal size maps again)
 * and hands heap memory beyond 128 KB back to the kernel on free. So every large frame lands
 * on pages the process has never touched, and first touching a page costs a fault. On VMs whose
 * host reclaims the guest's freed memory (virtio-balloon free page reporting) that fault is about
 * 14 µs a page: 36 ms for a fresh 10 MB, against 0.9 ms to copy into pages already touched
 * (measured here). Serving allocations under 32 MB from the heap, and keeping up to 256 MB free
 * there, lets a freed frame's pages carry the next one.
 *
 * Tunables the environment already sets win; other C libraries ignore the variable.
 */
export const MALLOC_TUNABLES: Readonly<Record<string, number>> = {
  'glibc.malloc.mmap_threshold': 32 * 1024 * 1024, // glibc's ceiling for this tunable
  'glibc.malloc.trim_threshold': 256 * 1024 * 1024,
};

/** A copy of `env` whose GLIBC_TUNABLES also holds each of MALLOC_TUNABLES that it does not set itself. */
export function withMallocTunables(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const current = env.GLIBC_TUNABLES ? env.GLIBC_TUNABLES.split(':').filter(Boolean) : [];
  const named = new Set(current.map((tunable) => tunable.split('=')[0]));
  const added = Object.entries(MALLOC_TUNABLES)
    .filter(([name]) => !named.has(name))
    .map(([name, value]) => `${name}=${value}`);
  return { ...env, GLIBC_TUNABLES: [...current, ...added].join(':') };
}
