/**
 * V8 flags for the Node processes tsgather starts: the controller child, every worker, the kernel
 * (whose cell worker is a notebook's caller), and a server daemon (`tsgather server --daemon`).
 *
 * V8 starts a young generation of 1 MB and grows it only when much of it survives. These
 * processes allocate a few KB per message that die young, so with 1 MB they scavenged every couple
 * of hundred round trips, and those pauses were most of the slowest 1 % of round trips. Starting at
 * 16 MB cuts scavenges about fivefold, for about 30 MB more resident memory per process. A
 * `--max-semi-space-size` in NODE_OPTIONS caps it (V8 clamps the start to the ceiling).
 */
export const YOUNG_GENERATION_FLAGS: readonly string[] = ['--min-semi-space-size=16'];
