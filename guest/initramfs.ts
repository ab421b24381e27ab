/**
 * The guest's initramfs: busybox, the agent, the modules, a tiny /init. Written as an
 * uncompressed cpio "newc" archive directly (no cpio tool), deterministically (fixed inode
 * numbers, owners and times), and cached by the hash of everything that goes in.
 *
 * Layout:
 *   /init                          mounts proc, sysfs, devtmpfs, tmpfs and execs the agent (PID 1)
 *   /bin/busybox, /bin/<applet>    busybox-static from the host, applet symlinks
 *   /bin/svadiff-agent
 *   /lib/modules/svadiff/          uacce.ko, svadiff_test.ko, extra modules, load-order
 *   /dev/console, /proc, /sys, /tmp
 *   extra files (InitramfsInput.extraFiles), e.g. /repro/<name> reproducer binaries
 */
import { promises as fs } from 'node:fs';
import { basename, join } from 'node:path';
import type { Arch, KernelArtifacts } from '../kernels/types.js';
import { UserError } from '../harness/util/errors.js';
import { atomicWrite, exists, sha256 } from '../harness/util/fsx.js';
import { cacheDir } from '../harness/util/paths.js';
import { AGENT_BINARY_NAME, staticElfProblem } from './build.js';
import { guestBusybox } from './busybox.js';

// ---------------------------------------------------------------------------------------------
// cpio "newc" (the format the kernel unpacks: Documentation/driver-api/early-userspace/
// buffer-format.rst; init/initramfs.c)

export type CpioEntry =
  | { kind: 'dir'; path: string; mode?: number }
  | { kind: 'file'; path: string; data: Uint8Array; mode?: number }
  | { kind: 'symlink'; path: string; target: string }
  | { kind: 'chardev'; path: string; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

function hex8(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`cpio field out of range: ${n}`);
  return n.toString(16).padStart(8, '0');
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

function checkPath(p: string): string {
  // Archive names are relative ("bin/sh"); "." would be the root itself.
  const name = p.replace(/^\/+/, '');
  if (name === '' || name.split('/').some((c) => c === '' || c === '.' || c === '..') || name.includes('\0')) {
    throw new Error(`bad cpio path ${JSON.stringify(p)}`);
  }
  return name;
}

/**
 * Serialize entries as a newc archive with a trailer. Entries are written in the given order;
 * parents must come before their children (the kernel creates what it reads, in order).
 */
export function writeCpio(entries: readonly CpioEntry[]): Buffer {
  const chunks: Buffer[] = [];
  const seen = new Set<string>();
  let ino = 1;
  const push = (name: string, mode: number, data: Uint8Array, rdevMajor = 0, rdevMinor = 0, nlink = 1, inode = ino++) => {
    const nameBytes = Buffer.from(name + '\0', 'utf8');
    const header =
      '070701' +
      hex8(inode) +
      hex8(mode) +
      hex8(0) + // uid
      hex8(0) + // gid
      hex8(nlink) +
      hex8(0) + // mtime: fixed, so that the archive depends on content only
      hex8(data.length) +
      hex8(0) + // devmajor
      hex8(0) + // devminor
      hex8(rdevMajor) +
      hex8(rdevMinor) +
      hex8(nameBytes.length) +
      hex8(0); // check (only for the crc format)
    chunks.push(Buffer.from(header, 'ascii'), nameBytes, Buffer.alloc(pad4(110 + nameBytes.length)));
    if (data.length > 0) chunks.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength), Buffer.alloc(pad4(data.length)));
  };
  for (const e of entries) {
    const name = checkPath(e.path);
    if (seen.has(name)) throw new Error(`duplicate cpio path ${name}`);
    const parent = name.includes('/') ? name.slice(0, name.lastIndexOf('/')) : undefined;
    if (parent !== undefined && !seen.has(parent)) throw new Error(`cpio path ${name} comes before its directory ${parent}`);
    seen.add(name);
    switch (e.kind) {
      case 'dir':
        push(name, S_IFDIR | (e.mode ?? 0o755), new Uint8Array(0), 0, 0, 2);
        break;
      case 'file':
        push(name, S_IFREG | (e.mode ?? 0o644), e.data);
        break;
      case 'symlink':
        push(name, S_IFLNK | 0o777, Buffer.from(e.target, 'utf8'));
        break;
      case 'chardev':
        push(name, S_IFCHR | (e.mode ?? 0o600), new Uint8Array(0), e.major, e.minor);
        break;
    }
  }
  push('TRAILER!!!', 0, new Uint8Array(0), 0, 0, 1, 0);
  return Buffer.concat(chunks);
}

/** One member of a newc archive as readCpio finds it. */
export interface CpioMember {
  /** the name as stored ("bin/sh") */
  path: string;
  kind: 'dir' | 'file' | 'symlink' | 'chardev' | 'other';
  /** permission bits (mode & 0o7777) */
  perm: number;
  uid: number;
  gid: number;
  nlink: number;
  mtime: number;
  rdevMajor: number;
  rdevMinor: number;
  /** file contents, or a symlink's target bytes */
  data: Buffer;
}

const NEWC_FIELDS = ['ino', 'mode', 'uid', 'gid', 'nlink', 'mtime', 'filesize', 'devmajor', 'devminor', 'rdevmajor', 'rdevminor', 'namesize', 'check'] as const;

/**
 * Read a newc archive back (the members before TRAILER!!!), the way the kernel's
 * init/initramfs.c reads one: 110-byte ASCII headers ("070701" or "070702" and 13 hex
 * fields), the NUL-terminated name and the data each padded to 4 bytes. Anything malformed is
 * an error naming the offset. It lets the tests check what writeCpio and buildInitramfs wrote
 * without a cpio program on the host.
 */
export function readCpio(archive: Uint8Array): CpioMember[] {
  const buf = Buffer.from(archive.buffer, archive.byteOffset, archive.byteLength);
  const out: CpioMember[] = [];
  let at = 0;
  for (;;) {
    const bad = (why: string): never => {
      throw new Error(`not a newc cpio archive at byte ${at}: ${why}`);
    };
    if (at + 110 > buf.length) bad('truncated header (no TRAILER!!!)');
    const magic = buf.toString('latin1', at, at + 6);
    if (magic !== '070701' && magic !== '070702') bad(`magic ${JSON.stringify(magic)}`);
    const h = {} as Record<(typeof NEWC_FIELDS)[number], number>;
    NEWC_FIELDS.forEach((f, i) => {
      const text = buf.toString('latin1', at + 6 + 8 * i, at + 14 + 8 * i);
      if (!/^[0-9a-fA-F]{8}$/.test(text)) bad(`field ${f} is ${JSON.stringify(text)}`);
      h[f] = parseInt(text, 16);
    });
    const nameAt = at + 110;
    const dataAt = nameAt + h.namesize + pad4(110 + h.namesize);
    const next = dataAt + h.filesize + pad4(h.filesize);
    if (h.namesize < 1 || nameAt + h.namesize > buf.length) bad('name runs past the end');
    if (buf[nameAt + h.namesize - 1] !== 0) bad('name is not NUL-terminated');
    const path = buf.toString('utf8', nameAt, nameAt + h.namesize - 1);
    if (path === 'TRAILER!!!') return out;
    if (dataAt + h.filesize > buf.length) bad(`data of ${path} runs past the end`);
    const type = h.mode & 0o170000;
    const kind = type === S_IFDIR ? 'dir' : type === S_IFREG ? 'file' : type === S_IFLNK ? 'symlink' : type === S_IFCHR ? 'chardev' : 'other';
    out.push({
      path,
      kind,
      perm: h.mode & 0o7777,
      uid: h.uid,
      gid: h.gid,
      nlink: h.nlink,
      mtime: h.mtime,
      rdevMajor: h.rdevmajor,
      rdevMinor: h.rdevminor,
      data: Buffer.from(buf.subarray(dataAt, dataAt + h.filesize)),
    });
    at = next;
  }
}

// ---------------------------------------------------------------------------------------------
// the svadiff initramfs

/**
 * Per guest architecture: the agent's channel and the console, as the machine profiles give
 * them (harness/vm/machine.ts: x86_64's second 16550, arm64's virtio console).
 */
const GUEST_ARCH: Readonly<Record<Arch, { agentTty: string; consoleTty: string }>> = {
  x86_64: { agentTty: '/dev/ttyS1', consoleTty: '/dev/ttyS0' },
  arm64: { agentTty: '/dev/hvc0', consoleTty: '/dev/ttyAMA0' },
};

/** busybox applets linked into /bin: what /init uses plus a few for a debug shell */
export const BUSYBOX_APPLETS = [
  'sh', 'mount', 'umount', 'mkdir', 'cat', 'echo', 'ls', 'ps', 'kill', 'sleep', 'dmesg',
  'poweroff', 'insmod', 'rmmod', 'lsmod', 'grep', 'head', 'tail', 'ln', 'rm', 'mknod', 'sync',
] as const;

export const MODULE_DIR = 'lib/modules/svadiff';
/** Where the channel's modules are (loaded by /init, not by the agent). */
export const CHANNEL_MODULE_DIR = `${MODULE_DIR}/channel`;

export interface InitramfsInput {
  kernel: KernelArtifacts;
  /** path of the static agent binary (guest/build.ts buildAgent) */
  agent: string;
  /**
   * Also run a busybox shell on the console (the first serial port), for debugging and for
   * tests that act on the guest from outside the agent (e.g. kill a task). Default false.
   */
  debugShell?: boolean;
  /**
   * More files, e.g. reproducer binaries under repro/ (run them with AgentSession
   * runExecutable). Their directories are created; they may not replace anything of the
   * standard layout. Part of the cache key (path, mode and content).
   */
  extraFiles?: readonly ExtraFile[];
}

export interface ExtraFile {
  /** path inside the guest, e.g. "repro/3f2a…" (relative; a leading / is allowed) */
  path: string;
  data: Uint8Array;
  /** default 0o755 */
  mode?: number;
}

/**
 * Directories and files for the extra files, after the standard entries. A path that is already
 * there (or a directory of the standard layout used as a file) is an error, not a silent
 * replacement of part of the guest.
 */
export function extraEntries(standard: readonly CpioEntry[], extra: readonly ExtraFile[]): CpioEntry[] {
  const taken = new Map<string, CpioEntry['kind']>(standard.map((e) => [e.path.replace(/^\/+/, ''), e.kind]));
  const out: CpioEntry[] = [];
  for (const f of extra) {
    const name = f.path.replace(/^\/+/, '');
    const parts = name.split('/');
    if (name === '' || parts.some((c) => c === '' || c === '.' || c === '..') || name.includes('\0')) {
      throw new Error(`bad extra initramfs path ${JSON.stringify(f.path)}`);
    }
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      const kind = taken.get(dir);
      if (kind === undefined) {
        taken.set(dir, 'dir');
        out.push({ kind: 'dir', path: dir });
      } else if (kind !== 'dir') {
        throw new Error(`extra initramfs file ${name}: ${dir} is not a directory`);
      }
    }
    if (taken.has(name)) throw new Error(`extra initramfs file ${name} would replace a file of the guest`);
    taken.set(name, 'file');
    out.push({ kind: 'file', path: name, data: f.data, mode: f.mode ?? 0o755 });
  }
  return out;
}

export function initScript(agentTty: string, consoleTty: string, debugShell: boolean, channelModules: readonly string[] = []): string {
  return [
    '#!/bin/sh',
    '# svadiff guest init (guest/initramfs.ts): pseudo filesystems, then the agent as PID 1.',
    'mount -t proc proc /proc',
    'mount -t sysfs sysfs /sys',
    '# the kernel does not mount devtmpfs by itself on an initramfs root',
    'mount -t devtmpfs devtmpfs /dev',
    'mount -t tmpfs -o mode=1777 tmpfs /tmp',
    '# kmemleak, where the kernel has it, is read from debugfs after every program (harness/leaks)',
    'mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null',
    ...(channelModules.length > 0 ? ['# the drivers of the agent channel (kernels/profiles.ts CHANNEL_MODULES)'] : []),
    ...channelModules.map((m) => `insmod /${CHANNEL_MODULE_DIR}/${m}`),
    ...(debugShell ? [`/bin/sh <${consoleTty} >${consoleTty} 2>&1 &`] : []),
    `exec /bin/${AGENT_BINARY_NAME} --tty ${agentTty}`,
    `echo "svadiff: cannot start /bin/${AGENT_BINARY_NAME}" >/dev/kmsg`,
    'poweroff -f',
    '',
  ].join('\n');
}

async function readModule(path: string, what: string): Promise<Buffer> {
  try {
    return await fs.readFile(path);
  } catch (e) {
    throw new UserError(`${what} ${path} is missing (${(e as NodeJS.ErrnoException).code}); fetch the kernel again to rebuild it`);
  }
}

/**
 * Build (or reuse) the initramfs for this kernel and agent. Returns the path of the archive in
 * cacheDir()/initramfs/<hash>.cpio.
 */
export async function buildInitramfs(input: InitramfsInput): Promise<string> {
  const { kernel, agent } = input;
  const archInfo = GUEST_ARCH[kernel.arch];
  const debugShell = input.debugShell ?? false;

  const agentData = await fs.readFile(agent).catch((e: NodeJS.ErrnoException) => {
    throw new UserError(`guest agent ${agent} is missing (${e.code}); it is rebuilt by the next run`);
  });
  const agentProblem = staticElfProblem(agentData, kernel.arch);
  if (agentProblem) throw new Error(`guest agent ${agent}: ${agentProblem}`);
  const busybox = await guestBusybox(kernel.arch);

  // modules: extra ones first (their order is the kernel's dependency order), then uacce
  const boot: { name: string; data: Buffer }[] = [];
  for (const p of kernel.extraModules) boot.push({ name: basename(p), data: await readModule(p, 'kernel module') });
  // uacce built into the kernel (the uacce-builtin fragment): nothing to load
  if (!kernel.uacce?.builtin) boot.push({ name: 'uacce.ko', data: await readModule(kernel.modules.uacce, 'uacce module') });
  const names = new Set<string>();
  for (const m of boot) {
    if (names.has(m.name) || m.name === 'svadiff_test.ko') throw new UserError(`two guest modules are named ${m.name}; rename one of kernel.extraModules`);
    names.add(m.name);
  }
  const testModule = await readModule(kernel.modules.svadiffTest, 'test module');
  const loadOrder = boot.map((m) => m.name).join('\n') + '\n';
  const channel: { name: string; data: Buffer }[] = [];
  for (const p of kernel.channelModules ?? []) channel.push({ name: basename(p), data: await readModule(p, 'channel module') });
  const init = initScript(archInfo.agentTty, archInfo.consoleTty, debugShell, channel.map((m) => m.name));
  const extra = input.extraFiles ?? [];

  const key = sha256(
    JSON.stringify({
      format: 'svadiff-initramfs-1',
      kernelDir: kernel.dir,
      agent: sha256(agentData),
      busybox: sha256(busybox.data),
      modules: boot.map((m) => [m.name, sha256(m.data)]),
      testModule: sha256(testModule),
      init,
      applets: BUSYBOX_APPLETS,
      ...(channel.length > 0 ? { channel: channel.map((m) => [m.name, sha256(m.data)]) } : {}),
      // only when there are any, so that the key of a plain initramfs stays what it was
      ...(extra.length > 0 ? { extra: extra.map((f) => [f.path.replace(/^\/+/, ''), f.mode ?? 0o755, sha256(f.data)]) } : {}),
    }),
  );
  const out = join(cacheDir(), 'initramfs', `${key}.cpio`);
  if (await exists(out)) return out;

  const entries: CpioEntry[] = [
    { kind: 'dir', path: 'bin' },
    { kind: 'file', path: 'bin/busybox', data: busybox.data, mode: 0o755 },
    ...BUSYBOX_APPLETS.map((a): CpioEntry => ({ kind: 'symlink', path: `bin/${a}`, target: 'busybox' })),
    { kind: 'file', path: `bin/${AGENT_BINARY_NAME}`, data: agentData, mode: 0o755 },
    { kind: 'file', path: 'init', data: Buffer.from(init, 'utf8'), mode: 0o755 },
    { kind: 'dir', path: 'lib' },
    { kind: 'dir', path: 'lib/modules' },
    { kind: 'dir', path: MODULE_DIR },
    ...boot.map((m): CpioEntry => ({ kind: 'file', path: `${MODULE_DIR}/${m.name}`, data: m.data })),
    { kind: 'file', path: `${MODULE_DIR}/svadiff_test.ko`, data: testModule },
    { kind: 'file', path: `${MODULE_DIR}/load-order`, data: Buffer.from(loadOrder, 'utf8') },
    ...(channel.length > 0 ? [{ kind: 'dir', path: CHANNEL_MODULE_DIR } as CpioEntry] : []),
    ...channel.map((m): CpioEntry => ({ kind: 'file', path: `${CHANNEL_MODULE_DIR}/${m.name}`, data: m.data })),
    // the kernel opens /dev/console for init's stdio before anything is mounted
    { kind: 'dir', path: 'dev' },
    { kind: 'chardev', path: 'dev/console', major: 5, minor: 1 },
    { kind: 'dir', path: 'proc', mode: 0o555 },
    { kind: 'dir', path: 'sys', mode: 0o555 },
    { kind: 'dir', path: 'tmp', mode: 0o1777 },
  ];
  entries.push(...extraEntries(entries, extra));
  await atomicWrite(out, writeCpio(entries));
  return out;
}
