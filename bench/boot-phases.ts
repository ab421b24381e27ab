/**
 * Where a boot's time goes, from its console: the host time each line arrived (QemuVm.
 * lineArrivalMs) and the kernel's own timestamps (printk.time=1). A pure function of the lines.
 *
 * - firmware: QEMU start to the first line, which the kernel's real-mode setup code prints
 *   ("Probing EDD", arch/x86/boot/edd.c) once the firmware has jumped to it; on a console
 *   without that line, to the first line at all
 * - decompress: that line to the kernel's time zero (decompressing the image, early setup)
 * - kernel: time zero to "Run /init as init process" (start_kernel and every initcall)
 * - userspace: /init to the agent's hello at the host (bootMs): mounts, uacce's load, the
 *   agent's start (its console "ready" line can arrive after the hello, so it marks nothing)
 *
 * The kernel's time zero at the host is the smallest (arrival - timestamp) over its lines: the
 * console replays the lines printed before it registered, so only later lines are close.
 */
export interface BootPhases {
  firmware_s: number;
  decompress_s: number;
  kernel_s: number;
  userspace_s: number;
}

const TS = /^\[\s*(\d+\.\d+)\]/;

export function bootPhases(lines: readonly string[], arrivalMs: readonly number[], bootMs: number): BootPhases | undefined {
  const n = Math.min(lines.length, arrivalMs.length);
  if (n === 0) return undefined;
  const edd = lines.slice(0, n).findIndex((l) => l.includes('Probing EDD'));
  const firstMs = arrivalMs[edd >= 0 ? edd : 0]!;
  let zeroMs = Infinity;
  let initTs: number | undefined;
  for (let i = 0; i < n; i++) {
    const m = TS.exec(lines[i]!);
    if (m) {
      const ts = Number(m[1]) * 1000;
      zeroMs = Math.min(zeroMs, arrivalMs[i]! - ts);
      if (initTs === undefined && lines[i]!.includes('Run /init as init process')) initTs = ts;
    }
  }
  if (!Number.isFinite(zeroMs) || initTs === undefined) return undefined;
  const s = (ms: number) => Math.round(ms) / 1000;
  return {
    firmware_s: s(firstMs),
    decompress_s: s(zeroMs - firstMs),
    kernel_s: s(initTs),
    userspace_s: s(bootMs - (zeroMs + initTs)),
  };
}
