#!/usr/bin/env node
// Entry point: the TypeScript sources are compiled to dist/ by `npm ci` (the prepare script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const cli = join(root, 'dist', 'harness', 'cli.js');
if (!existsSync(cli)) {
  process.stderr.write(`svadiff: ${cli} is missing; build it with: (cd ${root} && npm run build)\n`);
  process.exit(2);
}
await import(cli);
