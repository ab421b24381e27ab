/** The test device a reproducer needs: the module parameters the agent loads it with. */
import type { DeviceParams } from '../program/types.js';

/** The insmod arguments the agent loads the test module with for this device (guest/agent/program.h setup_device). */
export function moduleParams(d: DeviceParams): [string, string][] {
  const isolate = { none: 0, read: 1, write: 2, both: 3 }[d.isolate_ops];
  const b = (v: boolean) => (v ? '1' : '0');
  return [
    ['devices', String(d.devices)],
    ['mmio_pages', String(d.mmio_pages)],
    ['dus_pages', String(d.dus_pages)],
    ['queue_limit', String(d.queue_limit)],
    ['sva', b(d.sva)],
    ['isolate_ops', String(isolate)],
    ['isolate_state', b(d.isolate_state)],
    ['ioctl', b(d.ioctl)],
    ['api', d.api],
    ['algs', d.algorithms.join(',')],
  ];
}

export function insmodLine(d: DeviceParams): string {
  return `insmod svadiff_test.ko ${moduleParams(d)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')}`;
}
