/**
 * svadiff merge --out DIR SRC...
 *
 * Combines the output directories of several runs (shards of one svadiff nightly matrix, fuzz
 * runs on several machines) into DIR: findings with their counts and first/last seen intact,
 * the grouping evidence, the night's cells (harness/findings/merge.ts). Merging a directory again
 * changes nothing. The sources are only read.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { mergeStores } from '../findings/merge.js';
import { UserError } from '../util/errors.js';
import { warn } from '../util/log.js';

export async function cmdMerge(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { out: { type: 'string' } } });
  if (values.out === undefined || positionals.length === 0) throw new UserError('usage: svadiff merge --out DIR SRC... (the output directories of svadiff fuzz or svadiff nightly runs)');
  const r = await mergeStores(resolve(values.out), positionals, (m) => warn(m));
  process.stdout.write(
    `merged ${r.sources} director${r.sources === 1 ? 'y' : 'ies'} into ${resolve(values.out)}: ${r.findings} findings in ${r.bugs} bugs ` +
      `(${r.added} added, ${r.updated} updated, ${r.unchanged} unchanged)${r.cells !== undefined ? `; the night has ${r.cells} cells` : ''}\n`,
  );
  return 0;
}
