/**
 * Ops of processes and their memory: descriptors (close, dup), anonymous memory, the mm calls
 * on any mapping (munmap, mremap, madvise), user accesses (touch), tasks (fork, exit). Their
 * model is harness/model/core.ts.
 */
import { LIMITS } from '../program/limits.js';
import { bool, defineOp, handle, hex64, hexOff, int, oneOf, pagesText } from './describe.js';
import { REG_NAMES } from './registers.js';

const P = LIMITS.maxPages;

const PROT_WORDS = { r: 'PROT_READ', rw: 'PROT_READ|PROT_WRITE', none: 'PROT_NONE' } as const;

/** prot of mmap and mprotect: the wire numbers are the PROT_* bits */
export const prot = <O extends { doc: string; default?: 'r' | 'rw' | 'none'; simpler?: readonly ('r' | 'rw' | 'none')[] }>(opts: O) =>
  oneOf({ r: { wire: 1, c: 'PROT_READ' }, rw: { wire: 3, c: 'PROT_READ | PROT_WRITE' }, none: { wire: 0, c: 'PROT_NONE' } }, opts);
export const protWords = (p: keyof typeof PROT_WORDS): string => PROT_WORDS[p];

export const close = defineOp({
  op: 'close',
  opcode: 2,
  family: 'core',
  doc: 'close',
  fields: { fd: handle('fd', 'use', { doc: 'the descriptor' }) },
  result: 'none',
  resultDoc: "close's return",
  c: (v) => ({ body: [`ret = close(${v.fd('fd')});`, 'e = errno;', `${v.fd('fd')} = -1;`] }),
  call: (op) => `close(${op.fd})`,
  comment: (op) => `close ${op.fd} (uacce_fops_release() runs once the last reference to the file is gone)`,
  describe: (op) => `close ${op.fd}`,
  sheet: 'Using mappings, poll, close',
  weight: 4,
});

export const dup = defineOp({
  op: 'dup',
  opcode: 3,
  family: 'core',
  doc: 'dup',
  fields: {
    fd: handle('fd', 'use', { doc: 'the descriptor' }),
    as: handle('fd', 'create', { doc: 'name of the new descriptor' }),
  },
  result: 'none',
  resultDoc: "dup's return",
  c: (v) => ({ body: [`ret = ${v.fd('as')} = dup(${v.fd('fd')});`, 'e = errno;'] }),
  call: (op) => `${op.as} = dup(${op.fd})`,
  comment: (op) => `dup ${op.fd} as ${op.as}: the same file, the same queue`,
  describe: (op) => `dup ${op.fd} -> ${op.as}`,
  sheet: 'Objects',
  weight: 2,
});

export const alloc = defineOp({
  op: 'alloc',
  opcode: 5,
  family: 'core',
  doc: 'anonymous private memory (a target for work items)',
  fields: {
    map: handle('map', 'create', { doc: 'name of the mapping' }),
    pages: int(1, P, { doc: 'pages', default: 1, simpler: [1], extentOf: true }),
  },
  result: 'none',
  resultDoc: '0 or −1; `aux` address',
  placed: (op) => ({ map: op.map, page: 0 }),
  c: (v) => ({
    body: [
      `ret = mapped(r, mmap((void *)${v.slot('map')}, ${v.v('pages')} * SVT_PAGE_SIZE, PROT_READ | PROT_WRITE,`,
      `\t\t     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), ${v.placed()});`,
      'e = errno;',
    ],
  }),
  call: (op) => `mmap(${op.map}, ${pagesText(op.pages)}, rw, private anonymous)`,
  comment: (op) => `anonymous private memory at ${op.map}'s slot: a target for work items`,
  describe: (op) => `mmap anonymous private memory, ${pagesText(op.pages)} -> ${op.map}`,
  origin: (op) => [op.map, 'anon'],
  sheet: 'mmap',
  weight: 3,
});

export const munmap = defineOp({
  op: 'munmap',
  opcode: 6,
  family: 'core',
  doc: 'munmap part or all of a mapping',
  fields: {
    map: handle('map', 'use', { doc: 'the mapping' }),
    page: int(0, P - 1, { doc: 'first page', default: 0 }),
    pages: int(1, P, { doc: 'pages', simpler: [1], extentOf: true }),
  },
  extent: ['page', 'pages'],
  result: 'none',
  resultDoc: "munmap's return",
  c: (v) => ({ body: [`ret = munmap((void *)${v.at('map', 'page')}, ${v.v('pages')} * SVT_PAGE_SIZE);`, 'e = errno;'] }),
  call: (op) => `munmap(${op.map} + page ${op.page}, ${pagesText(op.pages)})`,
  comment: (op, origins) =>
    `munmap ${op.pages === 1 ? `page ${op.page}` : `pages ${op.page}..${op.page + op.pages - 1}`} of ${op.map}${origins.get(op.map) === 'anon' ? '' : ' (uacce_vma_close() when a whole queue mapping goes)'}`,
  describe: (op) => `munmap ${pagesText(op.pages)} of ${op.map} from page ${op.page}`,
  sheet: 'mmap',
  weight: 8,
});

export const mremap = defineOp({
  op: 'mremap',
  opcode: 7,
  family: 'core',
  doc: 'grow, shrink or move',
  fields: {
    map: handle('map', 'use', { doc: 'the mapping' }),
    page: int(0, P - 1, { doc: 'first page', default: 0 }),
    old_pages: int(1, P, { doc: 'old length in pages' }),
    new_pages: int(1, P, { doc: 'new length in pages' }),
    move: bool({ doc: 'MREMAP_MAYMOVE|MREMAP_FIXED to the slot of `to`', default: false }),
    dontunmap: bool({ doc: 'MREMAP_MAYMOVE|MREMAP_DONTUNMAP to the slot of `to`', default: false }),
    to: handle('map', 'place', { doc: 'where it moves: a new mapping name, or an existing one (its slot: MREMAP_FIXED replaces what is there)', only: { any: ['move', 'dontunmap'] } }),
  },
  wire: ['map', 'page', 'old_pages', 'new_pages', { bits: { move: 1, dontunmap: 2 }, doc: 'flags' }, 'to'],
  result: 'none',
  resultDoc: '0 or −1; `aux` new address',
  placed: (op) => (op.move || op.dontunmap ? { map: op.to!, page: 0 } : { map: op.map, page: op.page }),
  c: (v) => ({
    body: [
      `ret = mapped(r, mremap((void *)${v.at('map', 'page')}, ${v.v('old_pages')} * SVT_PAGE_SIZE, ${v.v('new_pages')} * SVT_PAGE_SIZE,`,
      `\t\t     ${v.flags([
        ['MREMAP_MAYMOVE', ['move', 'dontunmap']],
        ['MREMAP_DONTUNMAP', ['dontunmap']],
        ['MREMAP_FIXED', ['move', 'dontunmap']],
      ])}, ${v.ifSet('to', (s) => `(void *)${s}`, 'NULL')}), ${v.placed()});`,
      'e = errno;',
    ],
  }),
  call: (op) =>
    `mremap(${op.map} + page ${op.page}, ${op.old_pages} -> ${pagesText(op.new_pages)}${op.move || op.dontunmap ? `, to ${op.to}` : ''}${op.dontunmap ? ', dontunmap' : ''})`,
  comment: (op) =>
    op.move || op.dontunmap
      ? `move pages ${op.page}.. of ${op.map} to ${op.to}'s slot${op.dontunmap ? ', leaving the old range mapped (MREMAP_DONTUNMAP)' : ''}: the vma is copied, its vm_ops see open and close`
      : `resize pages ${op.page}.. of ${op.map} in place from ${op.old_pages} to ${pagesText(op.new_pages)}`,
  describe: (op) => {
    const range = `${op.map} page ${op.page}, ${op.old_pages} -> ${pagesText(op.new_pages)}`;
    if (op.dontunmap) return `mremap ${range}, MREMAP_MAYMOVE|MREMAP_DONTUNMAP to ${op.to}`;
    if (op.move) return `mremap ${range}, MREMAP_MAYMOVE|MREMAP_FIXED to ${op.to}`;
    return `mremap ${range} in place (${op.new_pages > op.old_pages ? 'grow' : op.new_pages < op.old_pages ? 'shrink' : 'same size'})`;
  },
  origin: (op, origins) => (op.to === undefined ? undefined : [op.to, origins.get(op.map) ?? '?']),
  sheet: 'mmap',
  weight: 5,
});

export const madvise = defineOp({
  op: 'madvise',
  opcode: 8,
  family: 'core',
  doc: 'madvise',
  fields: {
    map: handle('map', 'use', { doc: 'the mapping' }),
    page: int(0, P - 1, { doc: 'first page', default: 0 }),
    pages: int(1, P, { doc: 'pages', simpler: [1], extentOf: true }),
    advice: oneOf({ dofork: { wire: 0, c: 'MADV_DOFORK' } }, { doc: 'the advice', default: 'dofork' }),
  },
  extent: ['page', 'pages'],
  result: 'none',
  resultDoc: "madvise's return",
  c: (v) => ({ body: [`ret = madvise((void *)${v.at('map', 'page')}, ${v.v('pages')} * SVT_PAGE_SIZE, ${v.v('advice')});`, 'e = errno;'] }),
  call: (op) => `madvise(${op.map} + page ${op.page}, ${pagesText(op.pages)}, MADV_DOFORK)`,
  comment: (op) => `MADV_DOFORK on ${op.map}: clears VM_DONTCOPY, so that fork would copy the mapping`,
  describe: (op) => `madvise MADV_DOFORK on ${pagesText(op.pages)} of ${op.map} from page ${op.page}`,
  sheet: 'mmap',
  weight: 1,
});

export const touch = defineOp({
  op: 'touch',
  opcode: 9,
  family: 'core',
  doc: '64-bit load or store',
  fields: {
    map: handle('map', 'use', { doc: 'the mapping' }),
    page: int(0, P - 1, { doc: 'page', default: 0, simpler: [0] }),
    offset: int(0, 4088, { doc: 'byte offset within the page', default: 0, multipleOf: 8, simpler: [0] }),
    access: oneOf({ read: { wire: 0 }, write: { wire: 1 } }, { doc: 'load or store' }),
    value: hex64({ doc: 'the u64 to store', only: { field: 'access', is: 'write' }, simpler: ['0x1'] }),
  },
  simplify: ['offset', 'page', 'value'],
  result: 'data',
  resultDoc: '0; `data`: the u64 read, `0x…` lowercase',
  faults: true,
  c: (v) => {
    const at = v.at('map', 'page', 'offset', { registers: true });
    return {
      body: v.choose('access', {
        read: [`DATAF(r, "0x%llx", (unsigned long long)*(volatile uint64_t *)${at});`],
        write: [`*(volatile uint64_t *)${at} = ${v.v('value')};`],
      }),
    };
  },
  call: (op) =>
    op.access === 'read'
      ? `read u64 at ${op.map} + page ${op.page} + ${hexOff(op.offset)}`
      : `write u64 ${op.value} at ${op.map} + page ${op.page} + ${hexOff(op.offset)}`,
  comment: (op, origins) => {
    const reg = origins.get(op.map) === 'MMIO' && op.page === 0 ? REG_NAMES.get(op.offset) : undefined;
    const where = `${op.map} page ${op.page} + ${hexOff(op.offset)}${reg ? ` (${reg})` : ''}`;
    return op.access === 'read' ? `64-bit load from ${where}` : `64-bit store of ${op.value} to ${where}`;
  },
  describe: (op) =>
    op.access === 'write'
      ? `write ${op.value} to ${op.map} page ${op.page} offset ${hexOff(op.offset)}`
      : `read 8 bytes at ${op.map} page ${op.page} offset ${hexOff(op.offset)}`,
  sheet: 'Using mappings, poll, close',
  weight: 10,
});

export const fork = defineOp({
  op: 'fork',
  opcode: 13,
  family: 'core',
  doc: 'fork a new task',
  fields: { child: handle('task', 'create', { doc: 'name of the new task' }) },
  result: 'none',
  resultDoc: "0 (child's pid in `aux`)",
  c: (v) => ({
    body: ['ret = fork_task();', 'e = errno;', 'if (ret == 0) {', `\tme = ${v.task('child')};`, '\treturn 1;', '}', 'r->child = (int)ret;', 'if (ret > 0)', '\tret = 0;'],
  }),
  call: (op) => `fork() -> ${op.child}`,
  comment: (op) => `${op.task} forks ${op.child}: it shares the open files (queues); uacce mappings are VM_DONTCOPY and stay behind`,
  describe: (op) => `fork -> ${op.child}`,
  sheet: 'fork and exit',
  weight: 3,
});

export const exit = defineOp({
  op: 'exit',
  opcode: 14,
  family: 'core',
  doc: 'the task exits',
  fields: {},
  endsTask: true,
  result: 'none',
  resultDoc: '0',
  c: () => ({ body: ['_exit(0);'] }),
  call: () => '_exit(0)',
  comment: (op) => `${op.task} exits: its files and mappings are released before the next step`,
  describe: () => 'exit',
  sheet: 'fork and exit',
  weight: 2,
});

export const mprotect = defineOp({
  op: 'mprotect',
  opcode: 19,
  family: 'core',
  doc: 'mprotect part or all of a mapping',
  fields: {
    map: handle('map', 'use', { doc: 'the mapping' }),
    page: int(0, P - 1, { doc: 'first page', default: 0 }),
    pages: int(1, P, { doc: 'pages', simpler: [1], extentOf: true }),
    prot: prot({ doc: 'the new protection' }),
  },
  extent: ['page', 'pages'],
  result: 'none',
  resultDoc: "mprotect's return",
  c: (v) => ({ body: [`ret = mprotect((void *)${v.at('map', 'page')}, ${v.v('pages')} * SVT_PAGE_SIZE, ${v.v('prot')});`, 'e = errno;'] }),
  call: (op) => `mprotect(${op.map} + page ${op.page}, ${pagesText(op.pages)}, ${op.prot})`,
  comment: (op, origins) =>
    `${protWords(op.prot)} for ${op.pages === 1 ? `page ${op.page}` : `pages ${op.page}..${op.page + op.pages - 1}`} of ${op.map}: mprotect_fixup() splits the vma at the range's edges${origins.get(op.map) === 'anon' ? '' : ' (each piece of a queue mapping holds the file)'}`,
  describe: (op) => `mprotect ${pagesText(op.pages)} of ${op.map} from page ${op.page} to ${protWords(op.prot)}`,
  sheet: 'mmap',
  weight: 3,
});
