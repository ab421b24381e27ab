/**
 * Every program the harness and the tests run on the host must be there on a fresh Debian 12
 * machine that has only Node and gcc: either svadiff installs it (a HostTool given to
 * ensureHostTools, harness/util/host.ts) or it comes with every Debian system (the short STOCK
 * list below, each checked against the host's package database). The sources are scanned for
 * every way of starting a process (execa, node:child_process, execa's pipe), so that a test
 * reading archives with `cpio` (priority important: not on a minimal system) fails here instead
 * of on a user's machine. Programs the guest runs come from the initramfs and are not host
 * programs.
 */
import { execa } from 'execa';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildTools } from '../../kernels/build.js';
import { COMPILER_PROFILES } from '../../kernels/profiles.js';
import { MACHINES } from '../../harness/vm/machine.js';

const ROOT = join(import.meta.dirname, '..', '..');
const SCANNED = ['bin', 'bench', 'guest', 'harness', 'kernels', 'qemu', 'test'];

/**
 * Programs the project uses without installing them: in a package of priority required (or
 * Essential) on Debian 12, so on every Debian system. Kept small; each entry names its package.
 */
const STOCK: readonly { cmd: string; pkg: string; why: string }[] = [
  { cmd: 'setpriv', pkg: 'util-linux', why: 'children die with the harness (harness/util/proc.ts)' },
  { cmd: 'umount', pkg: 'mount', why: 'build root mounts' },
  { cmd: 'mknod', pkg: 'coreutils', why: "the build root's /dev/null" },
  { cmd: 'apt-config', pkg: 'apt', why: "the host's apt sources" },
  { cmd: 'apt-cache', pkg: 'apt', why: 'kernel package lists in the private apt state' },
  { cmd: 'sh', pkg: 'dash', why: 'tests: what a shell makes of a wrapped command' },
  { cmd: 'sleep', pkg: 'coreutils', why: 'tests: a process to hold a lock' },
  { cmd: 'dpkg', pkg: 'dpkg', why: "tests: Debian's version comparison" },
  { cmd: 'dpkg-query', pkg: 'dpkg', why: 'this test: package priorities' },
  { cmd: 'diff', pkg: 'diffutils', why: "tests: a maintainer's patch for --uacce-src (diff -u)" },
];

/** QEMUs of host packages that machine profiles run. */
const HOST_QEMUS = Object.values(MACHINES).flatMap((m) => (m.qemu.kind === 'host' ? [m.qemu.binary] : []));

/** Given by the README's premise (a fresh Debian 12 machine with Node and gcc). */
const GIVEN: readonly string[] = ['node'];

/** Calls whose program is not a string literal: what each one runs ('built': a binary the project or the test built). */
const DYNAMIC: Readonly<Record<string, readonly string[] | 'built'>> = {
  // the host's QEMU, or svadiff's own build (qemu/build.ts), which is 'built'
  'harness/vm/qemu.ts: this.binary': HOST_QEMUS,
  'harness/vm/accel.ts: machine.qemuBinary': HOST_QEMUS,
  // the QEMU a snapshot was made with (its --version is part of the snapshot's key)
  'harness/vm/snapshot.ts: binary': HOST_QEMUS,
  'qemu/build.ts: cmd': ['dpkg-source', 'patch', 'sh', 'ninja'], // BuildLog.run(step, program, …)
  'qemu/build.ts: binary': 'built', // the QEMU just built
  'kernels/build.ts: cmd': ['make', 'chroot'], // runMake('make', …) and runMake('chroot', …)
  'guest/build.ts: tc.cc': ['gcc', 'aarch64-linux-gnu-gcc'], // TOOLCHAINS
  'harness/repro/replay.ts: cc': ['gcc', 'aarch64-linux-gnu-gcc'], // guestCompiler(arch): the agent's TOOLCHAINS
  'test/unit/agent-initramfs.test.ts: bb': 'built', // the initramfs's busybox, written out
  'test/unit/agent-local.ts: bin': 'built', // the agent
  'test/unit/repro-csource-run.test.ts: bin': 'built',
  'test/unit/repro-csource.test.ts: bin': 'built',
  'test/unit/repro-csource-compact.test.ts: bin': 'built',
  'test/unit/repro-csource-compact.test.ts: await compile(src)': 'built',
};

/** Names that start a process, as imported from execa or node:child_process. */
const SPAWNERS = ['execa', 'execaSync', 'execaNode', '$', 'spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork', 'execaTiedToParent'];
/** What may be imported from those modules (types and helpers that do not start anything). */
const OTHER_IMPORTS = ['ExecaError'];

export interface Spawn {
  file: string;
  line: number;
  /** the program, when the call names it with a string literal */
  program?: string;
  /** else the expression that gives it */
  expr?: string;
}

/** Every process start in a TypeScript/JavaScript source; problems are calls this cannot read. */
export function findSpawns(file: string, source: string): { spawns: Spawn[]; problems: string[] } {
  // comments out (kept as blank lines, for the line numbers): they mention calls in prose
  const text = source.replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, ' ')).replace(/(^|\s)\/\/\s.*$/gm, '$1');
  const spawns: Spawn[] = [];
  const problems: string[] = [];
  const lineOf = (i: number) => text.slice(0, i).split('\n').length;
  // imports from process modules: named only, no renaming, so that the calls can be found by name
  const imported = new Set<string>();
  for (const m of text.matchAll(/import\s+([^;]*?)\s+from\s+'([^']+)'/g)) {
    const from = m[2]!;
    if (from !== 'execa' && !/^(node:)?child_process$/.test(from) && !from.endsWith('/util/proc.js')) continue;
    if (/^type\s/.test(m[1]!)) continue;
    const clause = m[1]!;
    const named = /^\{([^}]*)\}$/.exec(clause.trim());
    if (!named) {
      problems.push(`${file}:${lineOf(m.index)}: import "${m[1]}" from '${m[2]}': import the functions by name`);
      continue;
    }
    for (const n of named[1]!.split(',').map((x) => x.trim()).filter(Boolean)) {
      if (/\bas\b/.test(n) && !n.startsWith('type ')) problems.push(`${file}:${lineOf(m.index)}: ${n}: do not rename process functions`);
      else if (SPAWNERS.includes(n)) imported.add(n);
      else if (!SPAWNERS.includes(n) && !OTHER_IMPORTS.includes(n) && !n.startsWith('type ')) problems.push(`${file}:${lineOf(m.index)}: ${n} from '${m[2]}': unknown to this check (add it to SPAWNERS or OTHER_IMPORTS)`);
    }
  }
  // calls of what the file imported: name( first-argument
  const call = new RegExp(`(?<![\\w$.])(${[...imported].map((s) => s.replace('$', '\\$')).join('|')})\\s*([(\`])`, 'g');
  for (const m of imported.size > 0 ? text.matchAll(call) : []) {
    const at = m.index + m[0].length;
    if (m[2] === '`') {
      problems.push(`${file}:${lineOf(m.index)}: ${m[1]}\`…\`: use an argument array`);
      continue;
    }
    const first = firstArgument(text, at);
    const lit = /^(['"])([^'"`$\\]+)\1$/.exec(first);
    if (lit) spawns.push({ file, line: lineOf(m.index), program: lit[2]! });
    else if (first !== '') spawns.push({ file, line: lineOf(m.index), expr: first });
  }
  // execa's pipe to a program (a stream's pipe() takes a stream, never a string)
  for (const m of text.matchAll(/\.pipe\s*\(\s*(['"])([^'"]+)\1/g)) spawns.push({ file, line: lineOf(m.index), program: m[2]! });
  for (const m of text.matchAll(/\.pipe\s*`/g)) problems.push(`${file}:${lineOf(m.index)}: .pipe\`…\`: use an argument array`);
  return { spawns, problems };
}

/** The source text of the first argument of a call whose "(" ends at `at`, trimmed. */
function firstArgument(text: string, at: number): string {
  let depth = 0;
  let quote = '';
  for (let i = at; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = '';
      continue;
    }
    if (c === "'" || c === '"' || c === '`') quote = c;
    else if ('([{'.includes(c)) depth++;
    else if (')]}'.includes(c)) {
      if (depth === 0) return text.slice(at, i).trim();
      depth--;
    } else if (c === ',' && depth === 0) return text.slice(at, i).trim();
  }
  return text.slice(at).trim();
}

function sources(): { file: string; text: string }[] {
  const out: { file: string; text: string }[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'node_modules' && e.name !== 'fixtures') walk(p);
      } else if (/\.(ts|js)$/.test(e.name)) out.push({ file: relative(ROOT, p), text: readFileSync(p, 'utf8') });
    }
  };
  for (const d of SCANNED) walk(join(ROOT, d));
  return out;
}

/** Programs svadiff installs: every HostTool literal ({ cmd: '…', pkg: '…' }) and the computed ones. */
function installedTools(all: { file: string; text: string }[]): Map<string, string> {
  const tools = new Map<string, string>();
  for (const { file, text } of all) {
    if (file.startsWith('test/')) continue;
    for (const m of text.matchAll(/\{\s*cmd:\s*'([^']+)',\s*pkg:\s*'([^']+)'/g)) tools.set(m[1]!, m[2]!);
  }
  for (const m of Object.values(MACHINES)) if (m.qemu.kind === 'host') tools.set(m.qemu.binary, m.qemu.package);
  for (const env of Object.values(COMPILER_PROFILES)) for (const t of buildTools(env)) tools.set(t.cmd, t.pkg);
  return tools;
}

interface Verdict {
  site: string;
  program: string;
  how: string;
}

/** Where each spawned program comes from, or the problems. */
function classify(spawns: Spawn[], tools: Map<string, string>): { ok: Verdict[]; problems: string[] } {
  const ok: Verdict[] = [];
  const problems: string[] = [];
  const judge = (site: string, program: string) => {
    const stock = STOCK.find((s) => s.cmd === program);
    if (tools.has(program)) ok.push({ site, program, how: `installed by svadiff (${tools.get(program)})` });
    else if (stock) ok.push({ site, program, how: `stock Debian (${stock.pkg})` });
    else if (GIVEN.includes(program)) ok.push({ site, program, how: 'given' });
    else problems.push(`${site}: runs ${program}, which neither svadiff installs (harness/util/host.ts ensureHostTools) nor a stock Debian 12 has`);
  };
  for (const s of spawns) {
    const site = `${s.file}:${s.line}`;
    if (s.program !== undefined) {
      judge(site, s.program);
      continue;
    }
    const known = DYNAMIC[`${s.file}: ${s.expr}`];
    if (known === undefined) problems.push(`${site}: runs the program given by \`${s.expr}\`: name it with a string literal or list it in DYNAMIC`);
    else if (known !== 'built') for (const p of known) judge(site, p);
  }
  return { ok, problems };
}

describe('host programs', () => {
  const all = sources();
  const scanned = all.map(({ file, text }) => findSpawns(file, text));
  const spawns = scanned.flatMap((s) => s.spawns);
  const tools = installedTools(all);

  it('every program the harness and the tests run is installed by svadiff or on every Debian system', () => {
    const { ok, problems } = classify(spawns, tools);
    expect([...scanned.flatMap((s) => s.problems), ...problems]).toEqual([]);
    // the scan sees the calls (a scanner that finds nothing passes vacuously)
    expect(ok.some((v) => v.site.startsWith('harness/vm/qemu.ts') && v.program === 'qemu-system-x86_64')).toBe(true);
    expect(ok.some((v) => v.site.startsWith('kernels/build.ts') && v.program === 'debootstrap')).toBe(true);
    expect(ok.some((v) => v.site.startsWith('kernels/build.ts') && v.program === 'tar')).toBe(true);
  });

  it('every DYNAMIC and STOCK entry is still used', () => {
    const dynamicUsed = new Set(spawns.filter((s) => s.expr !== undefined).map((s) => `${s.file}: ${s.expr}`));
    expect(Object.keys(DYNAMIC).filter((k) => !dynamicUsed.has(k))).toEqual([]);
    const { ok } = classify(spawns, tools);
    expect(STOCK.filter((s) => !ok.some((v) => v.program === s.cmd && v.how.startsWith('stock'))).map((s) => s.cmd)).toEqual([]);
  });

  it('the stock programs are in packages every Debian system has', async () => {
    for (const s of STOCK) {
      const q = await execa('dpkg-query', ['-W', '-f', '${Essential} ${Priority}', s.pkg], { reject: false });
      expect(q.exitCode, `${s.pkg}: ${q.stderr}`).toBe(0);
      expect(q.stdout, `${s.pkg} (for ${s.cmd})`).toMatch(/^yes |^\S* ?required$/);
      const files = await execa('dpkg-query', ['-L', s.pkg]);
      expect(files.stdout.split('\n').some((f) => /^\/(usr\/)?s?bin\//.test(f) && f.endsWith(`/${s.cmd}`)), `${s.pkg} ships ${s.cmd}`).toBe(true);
    }
  });

  it('catches a new program nothing installs, and calls it cannot read', () => {
    // written with stand-ins so that the scan of this file does not see these calls
    const code = (lines: string[]) =>
      lines.join('\n').replaceAll('EXECA', 'exe' + 'ca').replaceAll('SPAWN', 'spa' + 'wn').replaceAll('PIPE', 'pi' + 'pe').replaceAll('CHILD', 'node:child' + '_process').replaceAll('DOLLAR', '$');
    const src = code([
      "import { EXECA } from 'EXECA';",
      "import { SPAWN } from 'CHILD';",
      "await EXECA('cpio', ['-itv'], { inputFile: a });",
      'SPAWN("xorriso", []);',
      'await EXECA(someProgram, []);',
      "const r = /x/.exec('cpio');", // a regular expression's exec starts no process
      'proc.stdout.PIPE(file);',
      "EXECA('dpkg-deb', ['--fsys-tarfile', deb]).PIPE('unzstd', []);",
    ]);
    const found = findSpawns('x.ts', src);
    expect(found.problems).toEqual([]);
    expect(found.spawns.map((s) => s.program ?? `<${s.expr}>`)).toEqual(['cpio', 'xorriso', '<someProgram>', 'dpkg-deb', 'unzstd']);
    const { problems } = classify(found.spawns, tools);
    expect(problems).toEqual([
      'x.ts:3: runs cpio, which neither svadiff installs (harness/util/host.ts ensureHostTools) nor a stock Debian 12 has',
      'x.ts:4: runs xorriso, which neither svadiff installs (harness/util/host.ts ensureHostTools) nor a stock Debian 12 has',
      'x.ts:5: runs the program given by `someProgram`: name it with a string literal or list it in DYNAMIC',
      'x.ts:8: runs unzstd, which neither svadiff installs (harness/util/host.ts ensureHostTools) nor a stock Debian 12 has',
    ]);
    const odd = code(["import * as cp from 'CHILD';", "import { EXECA as run } from 'EXECA';", "import { DOLLAR } from 'EXECA';", 'await DOLLAR`cpio -t`;']);
    expect(findSpawns('y.ts', odd).problems).toEqual(
      code([
        "y.ts:1: import \"* as cp\" from 'CHILD': import the functions by name",
        'y.ts:2: EXECA as run: do not rename process functions',
        'y.ts:4: DOLLAR`…`: use an argument array',
      ]).split('\n'),
    );
  });
});
