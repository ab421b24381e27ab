/**
 * Linux errno numbers (asm-generic/errno-base.h and errno.h; the same on x86_64 and arm64).
 * Outcomes use the names, which is what kernel developers read in reports.
 */
export const ERRNO_NAMES: Record<number, string> = {
  1: 'EPERM',
  2: 'ENOENT',
  3: 'ESRCH',
  4: 'EINTR',
  5: 'EIO',
  6: 'ENXIO',
  7: 'E2BIG',
  8: 'ENOEXEC',
  9: 'EBADF',
  10: 'ECHILD',
  11: 'EAGAIN',
  12: 'ENOMEM',
  13: 'EACCES',
  14: 'EFAULT',
  15: 'ENOTBLK',
  16: 'EBUSY',
  17: 'EEXIST',
  18: 'EXDEV',
  19: 'ENODEV',
  20: 'ENOTDIR',
  21: 'EISDIR',
  22: 'EINVAL',
  23: 'ENFILE',
  24: 'EMFILE',
  25: 'ENOTTY',
  26: 'ETXTBSY',
  27: 'EFBIG',
  28: 'ENOSPC',
  29: 'ESPIPE',
  30: 'EROFS',
  31: 'EMLINK',
  32: 'EPIPE',
  33: 'EDOM',
  34: 'ERANGE',
  35: 'EDEADLK',
  36: 'ENAMETOOLONG',
  38: 'ENOSYS',
  75: 'EOVERFLOW',
  77: 'EBADFD',
  95: 'EOPNOTSUPP',
  110: 'ETIMEDOUT',
};

const BY_NAME: Record<string, number> = Object.fromEntries(
  Object.entries(ERRNO_NAMES).map(([n, name]) => [name, Number(n)]),
);

export function errnoName(n: number): string {
  return ERRNO_NAMES[n] ?? `errno${n}`;
}

export function errnoNumber(name: string): number {
  const n = BY_NAME[name];
  if (n !== undefined) return n;
  const m = /^errno(\d+)$/.exec(name);
  if (m) return Number(m[1]);
  throw new Error(`unknown errno name ${name}`);
}

/** Signal numbers the agent reports (x86_64 and arm64 agree on these). */
export const SIGNAL_NAMES: Record<number, string> = {
  4: 'SIGILL',
  5: 'SIGTRAP',
  6: 'SIGABRT',
  7: 'SIGBUS',
  8: 'SIGFPE',
  9: 'SIGKILL',
  11: 'SIGSEGV',
  13: 'SIGPIPE',
  15: 'SIGTERM',
};

export function signalName(n: number): string {
  return SIGNAL_NAMES[n] ?? `SIG${n}`;
}
