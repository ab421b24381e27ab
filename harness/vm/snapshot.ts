/**
 * VM snapshots: a guest saved once its agent is ready, and restored instead of booting (after a
 * kernel report or a hang the fuzz loop needs a new guest; a restore takes a fraction of a
 * boot). The state is QEMU's migration stream, saved through a unix socket this process serves
 * (QMP `migrate unix:…`) and restored with `-incoming unix:…` fed from the file: no disk image,
 * no shell, and any number of guests can restore one file at once. Measured against qcow2
 * `savevm`/`-loadvm` (docs in README "VM snapshots"): the qcow2 image is locked by the QEMU that
 * loads it, so parallel jobs would each need a copy.
 *
 * A snapshot is valid for exactly what was booted: it is cached under a key of the QEMU binary
 * (path, size, mtime, version), the kernel image and initramfs contents (the agent and modules
 * are in the initramfs), and QEMU's whole command line (machine profile, CPU, memory, kernel
 * command line, accelerator). Anything else changed gives another key.
 */
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { which } from '../util/host.js';
import { execaTiedToParent } from '../util/proc.js';
import { sha256, sha256File } from '../util/fsx.js';
import { cacheDir } from '../util/paths.js';
import { connectUnix, qmpConnect, sleep, type QemuVm, type QmpClient } from './qemu.js';

const fileHashes = new Map<string, Promise<string>>();
const qemuVersions = new Map<string, Promise<string>>();

/** The content hash of a file, remembered per (path, size, mtime) for this process. */
async function contentHash(path: string): Promise<string> {
  const st = await fs.stat(path);
  const k = `${path}\0${st.size}\0${st.mtimeMs}`;
  let h = fileHashes.get(k);
  if (!h) fileHashes.set(k, (h = sha256File(path)));
  return h;
}

async function qemuIdentity(binary: string): Promise<string> {
  let v = qemuVersions.get(binary);
  if (!v) {
    v = (async () => {
      const r = await execaTiedToParent(binary, ['--version'], { reject: false, timeout: 30_000 });
      const path = binary.includes('/') ? binary : which(binary);
      const st = path ? await fs.stat(path).catch(() => undefined) : undefined;
      return `${String(r.stdout).split('\n')[0]} ${st ? `${st.size} ${st.mtimeMs}` : ''}`;
    })();
    qemuVersions.set(binary, v);
  }
  return v;
}

/** Where snapshots are kept unless a caller says otherwise. */
export function defaultSnapshotDir(): string {
  return join(cacheDir(), 'snapshots');
}

/** The file of the snapshot of the guest `vm` boots (its command line and inputs) in dir. */
export async function snapshotFile(vm: QemuVm, dir = defaultSnapshotDir()): Promise<string> {
  const c = vm.command();
  const key = sha256(
    JSON.stringify({
      qemu: [c.argv[0], await qemuIdentity(c.argv[0]!)],
      kernel: await contentHash(c.kernelImage),
      initrd: await contentHash(c.initrd),
      // the whole command line, with files and sockets by name
      command: c.portable,
    }),
  ).slice(0, 24);
  return join(dir, `${key}.vmstate`);
}

/** The QEMU options that make a new QEMU wait for a migration stream on `sock`. */
export function incomingArgs(sock: string): string[] {
  return ['-incoming', `unix:${sock}`];
}

/** Poll query-migrate on q (QEMU serves one QMP client at a time) until the migration is over. */
async function waitMigration(q: QmpClient, what: string, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const r = (await q.run('query-migrate')) as { status?: string; 'error-desc'?: string };
    if (r.status === 'completed') return;
    if (r.status === 'failed' || r.status === 'cancelled') throw new Error(`${what} ${r.status}${r['error-desc'] ? `: ${r['error-desc']}` : ''}`);
    if (Date.now() > end) throw new Error(`${what} not done after ${timeoutMs / 1000} s`);
    await sleep(20);
  }
}

/**
 * Save the running guest of `vm` to `file` (written under a temporary name and renamed), then
 * let it run on. Returns the size in bytes.
 */
export async function saveSnapshot(vm: QemuVm, file: string, timeoutMs = 300_000): Promise<number> {
  await fs.mkdir(join(file, '..'), { recursive: true });
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  const sock = join(vm.workDir, 'save.sock');
  await fs.rm(sock, { force: true });
  const out = createWriteStream(tmp);
  const written = new Promise<void>((resolve, reject) => {
    out.on('finish', resolve);
    out.on('error', reject);
  });
  const server = net.createServer((c) => {
    c.pipe(out);
    c.on('error', (e) => out.destroy(e));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(sock, resolve);
  });
  const q = await qmpConnect(vm.qmpSocketPath);
  try {
    // QEMU limits migration to 32 MiB/s by default: this is a local file
    await q.run('migrate-set-parameters', { 'max-bandwidth': 1 << 30 });
    await q.run('migrate', { uri: `unix:${sock}` });
    await waitMigration(q, 'saving the VM', timeoutMs);
    await Promise.race([written, sleep(30_000).then(() => Promise.reject(new Error('the migration stream did not end')))]);
    await fs.rename(tmp, file);
    return (await fs.stat(file)).size;
  } catch (e) {
    out.destroy();
    await fs.rm(tmp, { force: true });
    throw e;
  } finally {
    server.close();
    // after a completed migration the guest is paused (postmigrate): let it run on
    await q.run('cont').catch(() => undefined);
    q.close();
  }
}

/**
 * Feed `file` to a QEMU started with incomingArgs(sock) and wait until the guest runs again.
 * Throws when QEMU refuses the stream (another QEMU, other devices) or exits.
 */
export async function restoreSnapshot(vm: QemuVm, sock: string, file: string, timeoutMs = 120_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  let conn: net.Socket | undefined;
  while (!conn) {
    if (vm.hasExited) throw new Error(`QEMU exited before it took the snapshot (${vm.exitStatus?.stderr.trim().split('\n').pop() ?? ''})`);
    try {
      conn = await connectUnix(sock);
    } catch (e) {
      if (Date.now() > end) throw e;
      await sleep(20);
    }
  }
  const sent = new Promise<void>((resolve, reject) => {
    const src = createReadStream(file);
    src.on('error', reject);
    conn.on('error', reject);
    conn.on('close', () => resolve());
    src.pipe(conn);
  });
  const exited = vm.exited.then((x) => Promise.reject(new Error(`QEMU exited while taking the snapshot (${x.stderr.trim().split('\n').pop() ?? ''})`)));
  exited.catch(() => undefined);
  await Promise.race([sent, exited]);
  // the guest runs by itself once the stream is loaded ('inmigrate' until then)
  let q: QmpClient;
  try {
    q = await qmpConnect(vm.qmpSocketPath);
  } catch (e) {
    // QEMU quits when the stream does not load: its own words say why
    const x = await Promise.race([vm.exited, sleep(2000).then(() => undefined)]);
    if (x) throw new Error(`QEMU refused it: ${x.stderr.trim().split('\n').pop() ?? `exit ${x.code}`}`);
    throw e;
  }
  try {
    for (;;) {
      const st = (await q.run('query-status')) as { status?: string };
      if (st.status === 'running') return;
      if (st.status === 'paused' || st.status === 'postmigrate' || st.status === 'prelaunch') {
        await q.run('cont');
        return;
      }
      if (st.status !== 'inmigrate') throw new Error(`the restored VM is ${st.status ?? 'in an unknown state'}`);
      if (Date.now() > end || vm.hasExited) throw new Error(vm.hasExited ? 'QEMU exited while loading the snapshot' : `not loaded after ${timeoutMs / 1000} s`);
      await sleep(20);
    }
  } finally {
    q.close();
  }
}
