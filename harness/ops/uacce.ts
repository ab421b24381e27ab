/**
 * Ops of the uacce framework and its test device: opening a queue, mapping its regions, work
 * items through them, the ioctls, poll, device removal and sysfs. Their model is
 * harness/model/uacce.ts.
 */
import { SVT_IOCTL_PING, SVT_OP_READ64, SVT_OP_WRITE64, SVT_UACCE_CMD_PUT_Q, SVT_UACCE_CMD_START_Q } from '../device/abi.js';
import { SVT_OP_INVALID } from '../agent/conventions.js';
import { LIMITS } from '../program/limits.js';
import { prot, protWords } from './core.js';
import { cString } from './cstring.js';
import { bool, defineOp, handle, hex64, hexOff, int, ioctlCmd, oneOf, pagesText, text, type EnumValue } from './describe.js';

const P = LIMITS.maxPages;
const dev = () => int(0, LIMITS.maxDevices - 1, { doc: 'device index', default: 0, device: true, simpler: [0] });

/** sysfs attributes of a uacce device that programs may read or write (their wire index: the order here). */
export const SYSFS_ATTRS = [
  'api',
  'flags',
  'available_instances',
  'algorithms',
  'region_mmio_size',
  'region_dus_size',
  'isolate',
  'isolate_strategy',
] as const;
export type SysfsAttr = (typeof SYSFS_ATTRS)[number];
const attrs = Object.fromEntries(SYSFS_ATTRS.map((a, i) => [a, { wire: i, c: cString(a) }])) as Record<SysfsAttr, EnumValue>;

/** The commands a program names (uacce's, and the test driver's own). */
export const IOCTL_NAMES = {
  START_Q: { number: SVT_UACCE_CMD_START_Q, c: 'SVT_UACCE_CMD_START_Q' },
  PUT_Q: { number: SVT_UACCE_CMD_PUT_Q, c: 'SVT_UACCE_CMD_PUT_Q' },
  PING: { number: SVT_IOCTL_PING, c: 'SVT_IOCTL_PING' },
} as const;
export type IoctlCmd = keyof typeof IOCTL_NAMES | number;

/** The command number of an ioctl op. */
export function ioctlNumber(cmd: IoctlCmd): number {
  return typeof cmd === 'number' ? cmd : IOCTL_NAMES[cmd].number;
}

/** The device opcode of a work kind (the agent passes it through). */
export function workOpcode(work: 'write' | 'read' | 'invalid'): number {
  return submit.fields.work.spec.t === 'enum' ? submit.fields.work.spec.values[work]!.wire : NaN;
}

const OPEN_BODY = (fd: string) => [`ret = ${fd} = open(path, O_RDWR | O_CLOEXEC);`, 'e = errno;', 'DATAF(r, "%s", path);'];

export const open = defineOp({
  op: 'open',
  opcode: 1,
  family: 'uacce',
  doc: 'open the device: a new queue',
  fields: {
    fd: handle('fd', 'create', { doc: 'name of the new descriptor' }),
    dev: dev(),
    via: oneOf(
      { path: { wire: 0 }, mknod: { wire: 1 }, procfd: { wire: 2 } },
      { doc: '/dev/svt<dev>-<id>, a second node made with mknod, or /proc/self/fd/N of `of`', default: 'path', simpler: ['path'] },
    ),
    of: handle('fd', 'use', { doc: 'the descriptor to reopen', only: { field: 'via', is: 'procfd' } }),
  },
  simplify: ['via', 'dev'],
  result: 'data',
  resultDoc: "open's return; `data`: the path opened",
  c: (v) => ({
    resolve: v.choose('via', { path: [`node_path(${v.v('dev')}, path);`], mknod: [`mknod_path(${v.v('dev')}, path);`], procfd: [] }),
    body: v.choose('via', {
      procfd: [`snprintf(path, PATH_LEN, "/proc/self/fd/%d", ${v.fd('of')});`, ...OPEN_BODY(v.fd('fd'))],
      path: OPEN_BODY(v.fd('fd')),
      mknod: OPEN_BODY(v.fd('fd')),
    }),
  }),
  call: (op) =>
    op.via === 'procfd' ? `${op.fd} = open(/proc/self/fd/<${op.of}>)` : op.via === 'mknod' ? `${op.fd} = open(/tmp/svt${op.dev}.node)` : `${op.fd} = open(/dev/svt${op.dev}-<id>)`,
  comment: (op) =>
    op.via === 'procfd'
      ? `reopen ${op.of} through /proc/self/fd: a new open of the same device inode, i.e. a new queue`
      : op.via === 'mknod'
        ? `open a second device node of svt${op.dev} (mknod of its major:minor): uacce_fops_open() gets a new queue`
        : `open svt${op.dev}'s node: uacce_fops_open() gets a new queue from the driver (get_queue)`,
  describe: (op) =>
    op.via === 'procfd'
      ? `open /proc/self/fd/<${op.of}> again -> ${op.fd}`
      : op.via === 'mknod'
        ? `open a second node (mknod, same major:minor) of svt${op.dev} -> ${op.fd}`
        : `open /dev/svt${op.dev}-<id> -> ${op.fd}`,
  sheet: 'open',
  weight: 8,
});

const regionName = (r: number) => (r === 0 ? 'UACCE_REGION_MMIO' : r === 1 ? 'UACCE_REGION_DUS' : String(r));

export const mmap = defineOp({
  op: 'mmap',
  opcode: 4,
  family: 'uacce',
  doc: 'mmap at offset `region` pages',
  fields: {
    map: handle('map', 'create', { doc: 'name of the mapping' }),
    fd: handle('fd', 'use', { doc: 'the queue' }),
    region: int(0, 1024, { doc: 'the page offset of the call: the uacce region (0 MMIO, 1 DUS, 2+ invalid)', cName: regionName }),
    pages: int(1, P, { doc: 'pages', simpler: [1, 'half'], extentOf: true }),
    prot: prot({ doc: 'protection', default: 'rw', simpler: ['rw'] }),
    shared: bool({ doc: 'MAP_SHARED (true) or MAP_PRIVATE', default: true, c: ['MAP_PRIVATE', 'MAP_SHARED'], simpler: [true] }),
  },
  result: 'none',
  resultDoc: '0 or −1; `aux` address',
  placed: (op) => ({ map: op.map, page: 0 }),
  c: (v) => ({
    body: [
      `ret = mapped(r, mmap((void *)${v.slot('map')}, ${v.v('pages')} * SVT_PAGE_SIZE, ${v.v('prot')},`,
      `\t\t     ${v.v('shared')}, ${v.fd('fd')}, ${v.v('region')} * SVT_PAGE_SIZE), ${v.placed()});`,
      'e = errno;',
    ],
  }),
  call: (op) => `mmap(${op.map}, ${op.fd}, region ${op.region}, ${pagesText(op.pages)}, ${op.prot}, ${op.shared ? 'shared' : 'private'})`,
  comment: (op) => {
    const what =
      op.region === 0 ? 'the MMIO region (registers)' : op.region === 1 ? 'the DUS region (the submission ring)' : `region ${op.region} (uacce has 0 and 1)`;
    return `map ${what} of ${op.fd}'s queue at ${op.map}'s slot, ${op.shared ? 'shared' : 'private'}: uacce_fops_mmap()`;
  },
  describe: (op) => {
    const region = op.region < 2 ? `region ${op.region} (${op.region === 0 ? 'MMIO' : 'DUS'})` : `offset page ${op.region} (no such region)`;
    return `mmap ${region} of ${op.fd}, ${pagesText(op.pages)}, ${protWords(op.prot)}, ${op.shared ? 'MAP_SHARED' : 'MAP_PRIVATE'} -> ${op.map}`;
  },
  origin: (op) => [op.map, op.region === 0 ? 'MMIO' : op.region === 1 ? 'DUS' : `region ${op.region}`],
  sheet: 'mmap',
  weight: 12,
});

export const submit = defineOp({
  op: 'submit',
  opcode: 10,
  family: 'uacce',
  doc: "one work item through the queue's ring and doorbell",
  fields: {
    mmio: handle('map', 'use', { doc: "the queue's MMIO mapping (the doorbell)" }),
    dus: handle('map', 'use', { doc: "the queue's DUS mapping (the ring)" }),
    work: oneOf(
      { write: { wire: SVT_OP_WRITE64, c: 'SVT_OP_WRITE64' }, read: { wire: SVT_OP_READ64, c: 'SVT_OP_READ64' }, invalid: { wire: SVT_OP_INVALID, c: 'SVT_OP_INVALID' } },
      { doc: 'the work item (its wire number is the device opcode)' },
    ),
    target: handle('map', 'use', { doc: 'the mapping the engine writes or reads (as this task sees it)' }),
    page: int(0, P - 1, { doc: 'page of the target', default: 0, simpler: [0] }),
    offset: int(0, 4088, { doc: 'byte offset within the page', default: 0, multipleOf: 8, simpler: [0] }),
    ack: bool({ doc: 'write CQ_HEAD to ACK after the completion', default: true, simpler: [true] }),
    value: hex64({ doc: 'the u64 to write', only: { field: 'work', is: 'write' }, simpler: ['0x1'] }),
  },
  simplify: ['offset', 'page', 'value', 'ack'],
  result: 'data',
  resultDoc: 'see below',
  faults: true,
  deadline: () => 'SUBMIT_DEADLINE_MS',
  c: (v) => ({
    body: [
      `ret = submit(r, ${v.slot('mmio')}, ${v.slot('dus')}, ${v.v('work')}, ${v.at('target', 'page', 'offset')},`,
      `\t     ${v.v('value')}, ${v.v('ack')});`,
      'e = errno;',
    ],
  }),
  call: (op) =>
    `submit ${op.work.toUpperCase()} to ${op.target} + page ${op.page} + ${hexOff(op.offset)} via ring ${op.dus}, doorbell ${op.mmio}${op.ack ? ', ack' : ''}`,
  comment: (op) => {
    const what =
      op.work === 'write'
        ? `the engine writes ${op.value ?? '0x0'} at ${op.target} page ${op.page} + ${hexOff(op.offset)} in the opener's address space`
        : op.work === 'read'
          ? `the engine reads ${op.target} page ${op.page} + ${hexOff(op.offset)} in the opener's address space`
          : 'an opcode the device does not know (BADOP)';
    return `one work item through the ring in ${op.dus} and the doorbell in ${op.mmio}: ${what}`;
  },
  describe: (op) => {
    const work = op.work === 'write' ? `WRITE64 ${op.value}` : op.work === 'read' ? 'READ64' : 'an invalid opcode';
    return `submit ${work} at ${op.target} page ${op.page} offset ${hexOff(op.offset)} through ring ${op.dus} and doorbell ${op.mmio}${op.ack ? '' : ', no ACK'}`;
  },
  sheet: 'Using mappings, poll, close',
  weight: 6,
});

export const ioctl = defineOp({
  op: 'ioctl',
  opcode: 11,
  family: 'uacce',
  doc: 'ioctl',
  fields: {
    fd: handle('fd', 'use', { doc: 'the queue' }),
    cmd: ioctlCmd(IOCTL_NAMES, { doc: 'START_Q, PUT_Q, PING (the test driver\'s command), or a command number' }),
  },
  result: 'return',
  resultDoc: "ioctl's return",
  c: (v) => ({ body: [`ret = ioctl(${v.fd('fd')}, ${v.v('cmd')}, 0UL);`, 'e = errno;'] }),
  call: (op) => `ioctl(${op.fd}, ${typeof op.cmd === 'string' ? op.cmd : hexOff(op.cmd)})`,
  comment: (op) =>
    op.cmd === 'START_Q'
      ? "UACCE_CMD_START_Q: uacce_start_queue() -> the driver's start_queue"
      : op.cmd === 'PUT_Q'
        ? 'UACCE_CMD_PUT_Q: uacce_put_queue() stops and puts the queue'
        : op.cmd === 'PING'
          ? "the driver's own ioctl (SVT_IOCTL_PING, with ioctl=1): returns the queue id"
          : `ioctl ${hexOff(ioctlNumber(op.cmd))}, which neither uacce nor the test driver knows`,
  describe: (op) => `ioctl ${op.fd} ${typeof op.cmd === 'number' ? hexOff(op.cmd) : op.cmd === 'PING' ? 'SVT_IOCTL_PING' : `UACCE_CMD_${op.cmd}`}`,
  title: (op) => `ioctl ${typeof op.cmd === 'number' ? hexOff(op.cmd) : op.cmd}`,
  sheet: 'ioctl',
  weight: 9,
});

export const poll = defineOp({
  op: 'poll',
  opcode: 12,
  family: 'uacce',
  doc: 'poll for POLLIN',
  fields: {
    fd: handle('fd', 'use', { doc: 'the queue' }),
    timeout_ms: int(0, LIMITS.maxPollMs, { doc: 'timeout (ms)', default: 0, simpler: [0] }),
  },
  result: 'data',
  resultDoc: "poll's return; `data`: revents `0x…` (events POLLIN is asked for, so `0x1` when readable, `0x0` at the timeout)",
  deadline: (v) => `${v.v('timeout_ms')} + POLL_EXTRA_MS`,
  c: (v) => ({
    body: [
      `pf.fd = ${v.fd('fd')};`,
      'pf.events = POLLIN;',
      `ret = poll(&pf, 1, ${v.v('timeout_ms')});`,
      'e = errno;',
      'DATAF(r, "0x%x", (unsigned int)(uint16_t)pf.revents);',
    ],
  }),
  call: (op) => `poll(${op.fd}, POLLIN, ${op.timeout_ms} ms)`,
  comment: (op) => `poll ${op.fd} for POLLIN: uacce_fops_poll() asks the driver's is_q_updated`,
  describe: (op) => `poll ${op.fd} for POLLIN, ${op.timeout_ms} ms`,
  sheet: 'Using mappings, poll, close',
  weight: 3,
});

export const remove = defineOp({
  op: 'remove',
  opcode: 15,
  family: 'uacce',
  doc: 'unbind the parent driver (device removal): `svadiff_test.N`, or with `sva` the PCI endpoint `0000:<N+1>:00.0`',
  fields: { dev: dev() },
  result: 'none',
  resultDoc: '0 or −1 from writing the unbind file (`/sys/bus/platform/drivers/svadiff_test`, or with sva `/sys/bus/pci/drivers/svadiff_test`)',
  c: (v) => ({ body: [`ret = write_file(driver_file("unbind"), ${v.devName('dev')});`, 'e = errno;', 'if (ret >= 0)', '\tret = 0;'] }),
  call: (op) => `unbind svadiff_test.${op.dev}`,
  comment: (op) => `remove device ${op.dev}: unbind the parent driver, whose remove calls uacce_remove()`,
  describe: (op) => `unbind svadiff_test.${op.dev} from its driver (device removal)`,
  sheet: 'Device removal',
  weight: 2,
});

export const add = defineOp({
  op: 'add',
  opcode: 16,
  family: 'uacce',
  doc: 'bind the parent driver again (a fresh device)',
  fields: { dev: dev() },
  result: 'none',
  resultDoc: '0 or −1 from writing the bind file (the same directory)',
  c: (v) => ({ body: [`ret = write_file(driver_file("bind"), ${v.devName('dev')});`, 'e = errno;', 'if (ret >= 0)', '\tret = 0;'] }),
  call: (op) => `bind svadiff_test.${op.dev}`,
  comment: (op) => `re-add device ${op.dev}: bind the parent driver again, a fresh uacce device`,
  describe: (op) => `bind svadiff_test.${op.dev} to its driver again`,
  sheet: 'Device removal',
  weight: 2,
});

const attr = () => oneOf(attrs, { doc: 'the attribute of /sys/class/uacce/<node>/' });
const SYSFS_RESOLVE = (v: { v(f: string): string }) => [`sysfs_path(${v.v('dev')}, ${v.v('attr')}, path);`];

export const sysfsRead = defineOp({
  op: 'sysfs_read',
  opcode: 17,
  family: 'uacce',
  doc: 'read `/sys/class/uacce/<node>/<attr>`',
  fields: { dev: dev(), attr: attr() },
  result: 'text',
  resultDoc: 'bytes read or −1; `data`: the content',
  c: (v) => ({ resolve: SYSFS_RESOLVE(v), body: ['ret = read_file(r, path);', 'e = errno;'] }),
  call: (op) => `read /sys/class/uacce/svt${op.dev}-<id>/${op.attr}`,
  comment: (op) => `read uacce's sysfs attribute ${op.attr} of svt${op.dev}`,
  describe: (op) => `read /sys/class/uacce/svt${op.dev}-<id>/${op.attr}`,
  title: (op) => `sysfs_read ${op.attr}`,
  sheet: 'sysfs',
  weight: 4,
});

export const sysfsWrite = defineOp({
  op: 'sysfs_write',
  opcode: 18,
  family: 'uacce',
  doc: 'write `value` to `/sys/class/uacce/<node>/<attr>`',
  fields: { dev: dev(), attr: attr(), value: text(LIMITS.maxString, { doc: 'what to write' }) },
  result: 'return',
  resultDoc: "write's return",
  c: (v) => ({ resolve: SYSFS_RESOLVE(v), body: [`ret = write_file(path, ${v.v('value')});`, 'e = errno;'] }),
  call: (op) => `write ${JSON.stringify(op.value)} to /sys/class/uacce/svt${op.dev}-<id>/${op.attr}`,
  comment: (op) => `write uacce's sysfs attribute ${op.attr} of svt${op.dev}`,
  describe: (op) => `write ${JSON.stringify(op.value)} to /sys/class/uacce/svt${op.dev}-<id>/${op.attr}`,
  title: (op) => `sysfs_write ${op.attr}`,
  sheet: 'sysfs',
  weight: 2,
});
