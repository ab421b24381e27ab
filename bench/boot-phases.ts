/**
 * Where a boot's time goes, from its console: the host time each line arrived (QemuVm.
 * lineArrivalMs) and the kernel's own timestamps (printk.time=1). A pure function of the lines.
 *
 * - to_kernel: QEMU start to the kernel's time zero (firmware, the kernel's setup code,
 *   decompressing the image)
 * - firmware: QEMU start to the first line of the kernel's real-mode setup code ("Probing EDD",
 *   arch/x86/boot/edd.c), when the console shows it: under qboot it does, under SeaBIOS it does
 *   not (there to_kernel is all there is)
 * - kernel: time zero to "Run /init as init process" (start_kernel and every initcall)
 * - userspace: /init to the agent's hello at the host (bootMs): mounts, uacce's load, the
 *   agent's start (its console "ready" line can arrive after the hello, so it marks nothing)
 *
 * The kernel's time zero at the host is the smallest (arrival - timestamp) over its lines: the
 * console replays the lines printed before it registered, so only later lines are close.
 */
export interface BootPhases {
  to_kernel_s: number;
  firmware_s?: number;
  kernel_s: number;
  userspace_s: number;
}

const TS = /^\[\s*(\d+\.\d+)\]/;

export function bootPhases(lines: readonly string[], arrivalMs: readonly number[], bootMs: number): BootPhases | undefined {
  const n = Math.min(lines.length, arrivalMs.length);
  if (n === 0) return undefined;
  const setup = lines.slice(0, n).findIndex((l) => l.includes('Probing EDD'));
  let zeroMs = Infinity;
  let initTs: number | undefined;
  for (let i = 0; i < n; i++) {
    const m = TS.exec(lines[i]!);
    if (!m) continue;
    const ts = Number(m[1]) * 1000;
    zeroMs = Math.min(zeroMs, arrivalMs[i]! - ts);
    if (initTs === undefined && lines[i]!.includes('Run /init as init process')) initTs = ts;
  }
  if (!Number.isFinite(zeroMs) || initTs === undefined) return undefined;
  const s = (ms: number) => Math.round(ms) / 1000;
  return {
    to_kernel_s: s(zeroMs),
    ...(setup >= 0 ? { firmware_s: s(arrivalMs[setup]!) } : {}),
    kernel_s: s(initTs),
    userspace_s: s(bootMs - (zeroMs + initTs)),
  };
}
