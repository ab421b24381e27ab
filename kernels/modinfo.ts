/**
 * Read the .modinfo section of a kernel module (an ELF relocatable object) without modinfo(8):
 * NUL-separated "key=value" strings, e.g. "vermagic=6.12.117+deb12-amd64 SMP preempt
 * mod_unload modversions ". Used to check that a module was built for the kernel it is meant
 * for: the kernel refuses a module whose vermagic differs (kernel/module/version.c,
 * same_magic()).
 */
import { promises as fs } from 'node:fs';

export type ModInfo = Map<string, string[]>;

/** Parse a 64-bit or 32-bit, little- or big-endian ELF image and return its .modinfo entries. */
export function parseModInfo(elf: Uint8Array): ModInfo {
  const buf = Buffer.from(elf.buffer, elf.byteOffset, elf.byteLength);
  if (buf.length < 52 || buf.readUInt32BE(0) !== 0x7f454c46) throw new Error('not an ELF file');
  const is64 = buf[4] === 2;
  const le = buf[5] === 1;
  const u16 = (o: number) => (le ? buf.readUInt16LE(o) : buf.readUInt16BE(o));
  const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const addr = (o: number) => {
    const v = is64 ? (le ? buf.readBigUInt64LE(o) : buf.readBigUInt64BE(o)) : BigInt(u32(o));
    if (v > BigInt(buf.length)) throw new Error('ELF offset out of range');
    return Number(v);
  };
  const shoff = addr(is64 ? 0x28 : 0x20);
  const shentsize = u16(is64 ? 0x3a : 0x2e);
  const shnum = u16(is64 ? 0x3c : 0x30);
  const shstrndx = u16(is64 ? 0x3e : 0x32);
  if (shoff === 0 || shnum === 0 || shentsize < (is64 ? 64 : 40) || shoff + shnum * shentsize > buf.length) {
    throw new Error('ELF section header table out of range');
  }
  const section = (i: number) => {
    const o = shoff + i * shentsize;
    return {
      name: u32(o),
      offset: addr(o + (is64 ? 0x18 : 0x10)),
      size: addr(o + (is64 ? 0x20 : 0x14)),
    };
  };
  const strtab = section(shstrndx);
  if (strtab.offset + strtab.size > buf.length) throw new Error('ELF section name table out of range');
  const nameOf = (off: number) => {
    const start = strtab.offset + off;
    const end = buf.indexOf(0, start);
    return buf.toString('latin1', start, end < 0 || end > strtab.offset + strtab.size ? strtab.offset + strtab.size : end);
  };
  const info: ModInfo = new Map();
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    if (nameOf(s.name) !== '.modinfo') continue;
    if (s.offset + s.size > buf.length) throw new Error('.modinfo out of range');
    for (const entry of buf.toString('utf8', s.offset, s.offset + s.size).split('\0')) {
      const eq = entry.indexOf('=');
      if (eq <= 0) continue;
      const key = entry.slice(0, eq);
      const list = info.get(key) ?? [];
      list.push(entry.slice(eq + 1));
      info.set(key, list);
    }
  }
  return info;
}

export async function readModInfo(path: string): Promise<ModInfo> {
  return parseModInfo(await fs.readFile(path));
}

/** The kernel release a vermagic string names (its first word). */
export function releaseOfVermagic(vermagic: string): string {
  return vermagic.trim().split(/\s+/)[0] ?? '';
}

/** Throw unless the module at path was built for this kernel release. Returns its vermagic. */
export async function checkVermagic(path: string, release: string): Promise<string> {
  const info = await readModInfo(path);
  const vermagic = info.get('vermagic')?.[0];
  if (vermagic === undefined) throw new Error(`${path} has no vermagic in .modinfo`);
  if (releaseOfVermagic(vermagic) !== release) {
    throw new Error(`${path} was built for ${releaseOfVermagic(vermagic)} (vermagic "${vermagic.trim()}"), not ${release}`);
  }
  return vermagic.trim();
}
