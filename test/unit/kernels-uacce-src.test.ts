/**
 * --uacce-src inputs: what an argument is, and the uacce source tree made from it over the
 * kernel's own (a stand-in base tree here; the real builds run in test/integration/uacce-src).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UserError } from '../../harness/util/errors.js';
import { hashUacceTree } from '../../kernels/kbuild.js';
import { classifyUacceSrc, prepareUacceTree } from '../../kernels/uacce-src.js';

const dir = mkdtempSync(join(tmpdir(), 'svadiff-uacce-src-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(path: string, text: string): string {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
  return path;
}

const base = join(dir, 'base');
write(join(base, 'drivers/misc/uacce/uacce.c'), 'int a;\nint b;\nint c;\n');
write(join(base, 'drivers/misc/uacce/Makefile'), 'obj-$(CONFIG_UACCE) += uacce.o\n');
write(join(base, 'include/linux/uacce.h'), '/* base header */\n');
write(join(base, 'include/uapi/misc/uacce/uacce.h'), '/* base uapi */\n');

describe('--uacce-src arguments', () => {
  it('tells a file, a directory, a kernel tree and a patch apart; anything else is one line naming the choices', async () => {
    const c = write(join(dir, 'mine', 'uacce.c'), 'int mine;\n');
    expect(await classifyUacceSrc(c)).toEqual({ kind: 'file', path: c });
    expect(await classifyUacceSrc(join(dir, 'mine'))).toEqual({ kind: 'dir', path: join(dir, 'mine') });
    expect(await classifyUacceSrc(base)).toEqual({ kind: 'dir', path: base });
    const p = write(join(dir, 'fix.patch'), '');
    expect((await classifyUacceSrc(p)).kind).toBe('patch');
    const mbox = write(join(dir, '0001-uacce-fix'), 'From 0123456789abcdef0123456789abcdef01234567 Mon Sep 17 00:00:00 2001\nSubject: x\n---\ndiff --git a/x b/x\n');
    expect((await classifyUacceSrc(mbox)).kind).toBe('patch');
    for (const [arg, re] of [
      [join(dir, 'nothing'), /ENOENT/],
      [write(join(dir, 'notes.txt'), 'hello\n'), /not a \.c file, a directory or a patch/],
      [join(dir, 'fix.patch', '..', 'base', 'include'), /neither uacce\.c nor drivers\/misc\/uacce\/uacce\.c/],
    ] as const) {
      const e = await classifyUacceSrc(arg).then(() => undefined, (x: unknown) => x);
      expect(e).toBeInstanceOf(UserError);
      expect((e as Error).message).toMatch(re);
    }
  });

  it('a file replaces uacce.c and keeps the base headers', async () => {
    const out = join(dir, 'out-file');
    const c = join(dir, 'mine', 'uacce.c');
    const what = await prepareUacceTree({ kind: 'file', path: c }, base, 'Debian 6.12.118', out);
    expect(what).toBe(`uacce.c: ${c} (headers of Debian 6.12.118)`);
    expect(readFileSync(join(out, 'drivers/misc/uacce/uacce.c'), 'utf8')).toBe('int mine;\n');
    expect(readFileSync(join(out, 'include/linux/uacce.h'), 'utf8')).toBe('/* base header */\n');
    expect(await hashUacceTree(out)).not.toBe(await hashUacceTree(base));
  });

  it('a kernel tree gives uacce.c and its headers', async () => {
    const tree = join(dir, 'tree');
    write(join(tree, 'drivers/misc/uacce/uacce.c'), 'int tree;\n');
    write(join(tree, 'drivers/misc/uacce/uacce.o'), 'build product');
    write(join(tree, 'include/linux/uacce.h'), '/* tree header */\n');
    const out = join(dir, 'out-tree');
    expect(await prepareUacceTree({ kind: 'dir', path: tree }, base, 'Debian 6.12.118', out)).toBe(`uacce.c: ${tree}`);
    expect(readFileSync(join(out, 'drivers/misc/uacce/uacce.c'), 'utf8')).toBe('int tree;\n');
    expect(readFileSync(join(out, 'include/linux/uacce.h'), 'utf8')).toBe('/* tree header */\n');
    // the base's uapi header stays where the tree has none
    expect(readFileSync(join(out, 'include/uapi/misc/uacce/uacce.h'), 'utf8')).toBe('/* base uapi */\n');
    // so does a maintainer standing in drivers/misc/uacce of that tree
    const out2 = join(dir, 'out-subdir');
    expect(await prepareUacceTree({ kind: 'dir', path: join(tree, 'drivers/misc/uacce') }, base, 'Debian 6.12.118', out2)).toBe(`uacce.c: ${join(tree, 'drivers/misc/uacce')}`);
    expect(readFileSync(join(out2, 'include/linux/uacce.h'), 'utf8')).toBe('/* tree header */\n');
  });

  it('a patch applies to the base with patch -p1, or says which hunk failed', async () => {
    const a = join(dir, 'pa');
    write(join(a, 'a/drivers/misc/uacce/uacce.c'), 'int a;\nint b;\nint c;\n');
    write(join(a, 'b/drivers/misc/uacce/uacce.c'), 'int a;\nint c;\n');
    let diff = '';
    try {
      execFileSync('diff', ['-u', 'a/drivers/misc/uacce/uacce.c', 'b/drivers/misc/uacce/uacce.c'], { cwd: a, encoding: 'utf8' });
    } catch (e) {
      diff = String((e as { stdout?: string }).stdout);
    }
    const patch = write(join(dir, 'drop-b.patch'), diff);
    const out = join(dir, 'out-patch');
    expect(await prepareUacceTree({ kind: 'patch', path: patch }, base, 'Debian 6.12.118', out)).toBe('uacce.c: Debian 6.12.118 + drop-b.patch');
    expect(readFileSync(join(out, 'drivers/misc/uacce/uacce.c'), 'utf8')).toBe('int a;\nint c;\n');
    // the same patch on a base that no longer has the line
    const e = await prepareUacceTree({ kind: 'patch', path: patch }, out, 'Debian 6.12.119', join(dir, 'out-patch2')).then(() => undefined, (x: unknown) => x);
    expect(e).toBeInstanceOf(UserError);
    expect((e as Error).message).toMatch(/^--uacce-src drop-b\.patch does not apply to the uacce sources of Debian 6\.12\.119: /);
    expect((e as Error).message).not.toContain('\n');
  });
});
