/**
 * qemu/: the QEMU of the SVA machine, built by svadiff from Debian's source package with the
 * patches and files in this directory (recipe.ts says what, build.ts does it).
 *
 *   svadiff qemu build [--force] [--refresh] [--json]
 */
import { parseArgs } from 'node:util';
import { UserError } from '../harness/util/errors.js';
import { fmtDuration } from '../harness/util/log.js';
import { buildQemu } from './build.js';

export { ensureSvaQemu, cachedQemu, type QemuBuild } from './build.js';
export { FIRMWARE_DIRS } from './recipe.js';

/** `svadiff qemu build`: build (or find in the cache) the SVA machine's QEMU; prints where it is. */
export async function cmdQemuBuild(args: string[]): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({ args, strict: true, options: { force: { type: 'boolean' }, refresh: { type: 'boolean' }, json: { type: 'boolean' } } }));
  } catch (e) {
    throw new UserError(`${((e as Error).message.split('\n')[0] ?? '').replace(/\. .*$/, '')}; usage: svadiff qemu build [--force] [--refresh] [--json]`);
  }
  const b = await buildQemu({ force: values.force ?? false, refresh: values.refresh ?? false });
  if (values.json) process.stdout.write(JSON.stringify(b, null, 2) + '\n');
  else process.stdout.write(`qemu ${b.sourceVersion} with the svadiff patches (inputs ${b.inputsHash.slice(0, 12)}, built in ${fmtDuration(b.buildMs)})\n  binary  ${b.binary}\n  log     ${b.dir}/build.log\n`);
}
