/** Names of the test device's registers (MMIO page 0) by byte offset, from the ABI mirror. */
import * as abi from '../device/abi.js';

export const REG_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(abi)
    .filter(([name, v]) => /^SVT_REG_/.test(name) && name !== 'SVT_REG_END' && typeof v === 'number')
    .map(([name, v]) => [v as number, name]),
);
