/**
 * Build the guest agent (guest/agent/agent.c and the parts it includes, the runtime it shares
 * with the reproducers in guest/runtime, and the ops generated from their descriptions) as a
 * static binary, cached by the hash of all of that and of the toolchain. The binary runs as the
 * guest's PID 1 next to nothing but busybox, so it must not need a dynamic loader or any library.
 */
import { execa } from 'execa';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { Arch } from '../kernels/types.js';
import { agentOpsHeader } from '../harness/ops/render.js';
import { UserError } from '../harness/util/errors.js';
import { exists, sha256 } from '../harness/util/fsx.js';
import { ensureHostTools, isRoot, type HostTool } from '../harness/util/host.js';
import { info } from '../harness/util/log.js';
import { cacheDir, projectRoot } from '../harness/util/paths.js';

/** How to compile the agent for one guest architecture. */
interface AgentToolchain {
  /** compiler command */
  cc: string;
  /** host packages for the compiler */
  tools: HostTool[];
  /** the static C library the link needs, and the package that has it */
  staticLibc: { path: string; pkg: string };
  /** why this architecture cannot be built yet (undefined: it can) */
  unsupported?: string;
}

const TOOLCHAINS: Readonly<Record<Arch, AgentToolchain>> = {
  x86_64: {
    cc: 'gcc',
    tools: [{ cmd: 'gcc', pkg: 'gcc', why: 'building the guest agent' }],
    staticLibc: { path: '/usr/lib/x86_64-linux-gnu/libc.a', pkg: 'libc6-dev' },
  },
  // bookworm's cross compiler and its static glibc (the C reproducers of arm64 findings are
  // built with the same, harness/repro)
  arm64: {
    cc: 'aarch64-linux-gnu-gcc',
    tools: [{ cmd: 'aarch64-linux-gnu-gcc', pkg: 'gcc-aarch64-linux-gnu', why: 'building the arm64 guest agent' }],
    staticLibc: { path: '/usr/aarch64-linux-gnu/lib/libc.a', pkg: 'libc6-dev-arm64-cross' },
  },
};

/** The C compiler of static binaries for guests of arch (the agent, C reproducers). */
export function guestCompiler(arch: Arch): string {
  return TOOLCHAINS[arch].cc;
}

/**
 * Install (root) or ask for the compiler and static C library of guests of arch; reproducers
 * are built with the same toolchain as the agent.
 */
export async function ensureGuestToolchain(arch: Arch): Promise<void> {
  const tc = TOOLCHAINS[arch];
  if (tc.unsupported) throw new UserError(`cannot build for ${arch} guests: ${tc.unsupported}; use an x86_64 kernel`);
  await ensureHostTools(tc.tools);
  await ensureStaticLibc(tc);
}

/** Flags are part of the cache key; -Werror keeps warnings from reaching a cached binary. */
export const AGENT_CFLAGS = ['-static', '-O2', '-g0', '-Wall', '-Wextra', '-Werror', '-std=gnu11'] as const;

export const AGENT_BINARY_NAME = 'svadiff-agent';

/** The generated header of the agent's ops (harness/ops/render.ts agentOpsHeader). */
export const AGENT_OPS_HEADER = 'svt_ops.gen.h';

/** The agent's sources: agent.c includes its parts (guest/agent/*.h), the runtime and the ABI. */
async function agentSources(): Promise<{ src: string; includes: string[]; files: string[] }> {
  const root = projectRoot();
  const dirs = ['agent', 'runtime', 'include'].map((d) => join(root, 'guest', d));
  const files: string[] = [];
  for (const d of dirs) {
    for (const f of (await fs.readdir(d)).sort()) if (/\.[ch]$/.test(f)) files.push(join(d, f));
  }
  return { src: join(root, 'guest', 'agent', 'agent.c'), includes: dirs, files };
}

async function ensureStaticLibc(tc: AgentToolchain): Promise<void> {
  if (await exists(tc.staticLibc.path)) return;
  const cmd = `apt-get install -y --no-install-recommends ${tc.staticLibc.pkg}`;
  if (!isRoot()) {
    throw new UserError(`missing on this host: ${tc.staticLibc.path} (static C library for the guest agent); install with: sudo ${cmd}`);
  }
  info(`installing host package ${tc.staticLibc.pkg} for the guest agent's static C library`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const args = ['install', '-y', '--no-install-recommends', tc.staticLibc.pkg];
  let r = await execa('apt-get', args, { env, all: true, reject: false });
  if (r.exitCode !== 0) {
    await execa('apt-get', ['update'], { env, all: true, reject: false });
    r = await execa('apt-get', args, { env, all: true, reject: false });
  }
  if (r.exitCode !== 0 || !(await exists(tc.staticLibc.path))) {
    throw new UserError(`could not install ${tc.staticLibc.pkg} (apt-get exit ${r.exitCode}); run: ${cmd}`);
  }
}

/** What identifies the toolchain: compiler version and target, and the static libc's content. */
async function toolchainId(tc: AgentToolchain): Promise<string> {
  const v = await execa(tc.cc, ['--version'], { reject: false });
  const m = await execa(tc.cc, ['-dumpmachine'], { reject: false });
  if (v.exitCode !== 0 || m.exitCode !== 0) {
    throw new UserError(`${tc.cc} does not run (exit ${v.exitCode}); reinstall it: apt-get install --reinstall ${tc.tools[0]?.pkg ?? tc.cc}`);
  }
  const libc = sha256(await fs.readFile(tc.staticLibc.path));
  return [String(v.stdout).split('\n')[0], String(m.stdout).trim(), libc].join('\n');
}

/**
 * Why an ELF file is not a static executable for this architecture, or undefined if it is one.
 * (The dynamic loader would be named by a PT_INTERP program header; the guest has none.)
 */
export function staticElfProblem(elf: Uint8Array, arch: Arch): string | undefined {
  const b = Buffer.from(elf.buffer, elf.byteOffset, elf.byteLength);
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46) return 'not an ELF file';
  if (b[4] !== 2 || b[5] !== 1) return 'not a 64-bit little-endian ELF file';
  const machine = b.readUInt16LE(18);
  const want = arch === 'x86_64' ? 62 : 183; // EM_X86_64, EM_AARCH64
  if (machine !== want) return `built for ELF machine ${machine}, not ${arch}`;
  const type = b.readUInt16LE(16);
  if (type !== 2 && type !== 3) return `ELF type ${type} is not an executable`;
  const phoff = Number(b.readBigUInt64LE(32));
  const phentsize = b.readUInt16LE(54);
  const phnum = b.readUInt16LE(56);
  if (phentsize < 56 || phoff + phnum * phentsize > b.length) return 'truncated ELF program headers';
  for (let i = 0; i < phnum; i++) {
    if (b.readUInt32LE(phoff + i * phentsize) === 3) return 'dynamically linked (has a program interpreter)';
  }
  return undefined;
}

/** The cache key of the agent for this architecture: sources, flags and toolchain. */
export async function agentHash(arch: Arch): Promise<string> {
  const tc = TOOLCHAINS[arch];
  const { files } = await agentSources();
  const parts: string[] = [`arch ${arch}`, `cc ${tc.cc}`, `flags ${AGENT_CFLAGS.join(' ')}`, await toolchainId(tc)];
  for (const f of files) parts.push(`${f.slice(projectRoot().length)}\n${sha256(await fs.readFile(f))}`);
  parts.push(`${AGENT_OPS_HEADER}\n${sha256(agentOpsHeader())}`);
  return sha256(parts.join('\n'));
}

/**
 * Build (or reuse) the static agent binary for arch. Returns its path in
 * cacheDir()/agent/<hash>/svadiff-agent.
 */
export async function buildAgent(arch: Arch): Promise<string> {
  const tc = TOOLCHAINS[arch];
  await ensureGuestToolchain(arch);
  const hash = await agentHash(arch);
  const dir = join(cacheDir(), 'agent', hash);
  const out = join(dir, AGENT_BINARY_NAME);
  if (await exists(out)) return out;

  await fs.mkdir(dir, { recursive: true });
  const { src, includes } = await agentSources();
  // Build under a unique name and rename: concurrent builders each produce a whole binary.
  const tmp = join(dir, `.${AGENT_BINARY_NAME}.${process.pid}.${Date.now()}.tmp`);
  const gen = await fs.mkdtemp(join(dir, '.gen-'));
  await fs.writeFile(join(gen, AGENT_OPS_HEADER), agentOpsHeader());
  const r = await execa(tc.cc, [...AGENT_CFLAGS, '-I', gen, ...includes.flatMap((d) => ['-I', d]), '-o', tmp, src], { reject: false, all: true });
  await fs.rm(gen, { recursive: true, force: true });
  if (r.exitCode !== 0) {
    await fs.rm(tmp, { force: true });
    const tail = String(r.all ?? '').split('\n').slice(-15).join('\n');
    // The sources are ours: a failure is a bug in svadiff (or a broken toolchain), not user input.
    throw new Error(`building the guest agent failed (${tc.cc} exit ${r.exitCode}):\n${tail}`);
  }
  const problem = staticElfProblem(await fs.readFile(tmp), arch);
  if (problem) {
    await fs.rm(tmp, { force: true });
    throw new Error(`the guest agent built by ${tc.cc} is unusable: ${problem}`);
  }
  await fs.rename(tmp, out);
  return out;
}
