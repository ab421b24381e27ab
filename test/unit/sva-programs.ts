/**
 * SVA programs shared by the model's unit tests (test/unit/model-sva.test.ts) and the SVA
 * integration test on a real debian:7.2 guest (test/integration/sva.test.ts), which asserts the
 * same outcomes on the kernel.
 */

/** The life of one address space's PASID: issue 9's "Done means" in one program (ops by index in the comments). */
export const SVA_LIFE_OPS = [
  { op: 'open', task: 't0', fd: 'q', dev: 0, via: 'path' },
  { op: 'open', task: 't0', fd: 'q2', dev: 0, via: 'path' },
  { op: 'open', task: 't0', fd: 'q3', dev: 1, via: 'path' },
  { op: 'open', task: 't0', fd: 'q5', dev: 1, via: 'path' },
  { op: 'mmap', task: 't0', map: 'r', fd: 'q', region: 0, pages: 1, prot: 'rw', shared: true },
  { op: 'mmap', task: 't0', map: 'd', fd: 'q', region: 1, pages: 1, prot: 'rw', shared: true },
  { op: 'mmap', task: 't0', map: 'r2', fd: 'q2', region: 0, pages: 1, prot: 'rw', shared: true },
  { op: 'mmap', task: 't0', map: 'r3', fd: 'q3', region: 0, pages: 1, prot: 'rw', shared: true },
  // 8: the three queues of t0 on two devices share one PASID
  { op: 'pasid', task: 't0', map: 'r' },
  { op: 'pasid', task: 't0', map: 'r2' },
  { op: 'pasid', task: 't0', map: 'r3' },
  { op: 'ioctl', task: 't0', fd: 'q', cmd: 'START_Q' },
  { op: 'alloc', task: 't0', map: 'a', pages: 2 },
  // 13: DMA into anonymous memory, read back by the process
  { op: 'submit', task: 't0', mmio: 'r', dus: 'd', work: 'write', target: 'a', page: 0, offset: 0, value: '0x1111', ack: true },
  { op: 'touch', task: 't0', map: 'a', page: 0, offset: 0, access: 'read' },
  // 15: a read-only target faults, and the page keeps its contents
  { op: 'mprotect', task: 't0', map: 'a', page: 1, pages: 1, prot: 'r' },
  { op: 'submit', task: 't0', mmio: 'r', dus: 'd', work: 'write', target: 'a', page: 1, offset: 0, value: '0x3333', ack: true },
  { op: 'touch', task: 't0', map: 'a', page: 1, offset: 0, access: 'read' },
  // 18: fork; the child maps and starts q5, which t0 opened: bound to t0's address space
  { op: 'fork', task: 't0', child: 't1' },
  { op: 'mmap', task: 't1', map: 'r5', fd: 'q5', region: 0, pages: 1, prot: 'rw', shared: true },
  { op: 'mmap', task: 't1', map: 'd5', fd: 'q5', region: 1, pages: 1, prot: 'rw', shared: true },
  { op: 'ioctl', task: 't1', fd: 'q5', cmd: 'START_Q' },
  { op: 'pasid', task: 't1', map: 'r5' }, // 22: the parent's PASID
  { op: 'open', task: 't1', fd: 'q6', dev: 0, via: 'path' },
  { op: 'mmap', task: 't1', map: 'r6', fd: 'q6', region: 0, pages: 1, prot: 'rw', shared: true },
  { op: 'pasid', task: 't1', map: 'r6' }, // 25: the child's own, a second one
  // 26: the child's work item lands in the parent's memory, not the child's
  { op: 'submit', task: 't1', mmio: 'r5', dus: 'd5', work: 'write', target: 'a', page: 0, offset: 8, value: '0x2222', ack: true },
  { op: 'touch', task: 't1', map: 'a', page: 0, offset: 8, access: 'read' },
  { op: 'touch', task: 't0', map: 'a', page: 0, offset: 8, access: 'read' },
  // 29: the opener exits; the child's work item faults and its memory stays as it was
  { op: 'exit', task: 't0' },
  { op: 'submit', task: 't1', mmio: 'r5', dus: 'd5', work: 'write', target: 'a', page: 0, offset: 16, value: '0x5555', ack: true },
  { op: 'touch', task: 't1', map: 'a', page: 0, offset: 16, access: 'read' },
  { op: 'touch', task: 't1', map: 'a', page: 0, offset: 0, access: 'read' },
  { op: 'touch', task: 't1', map: 'r5', page: 0, offset: 0x28, access: 'read' }, // FAULTS | ACK << 32
  { op: 'pasid', task: 't1', map: 'r5' }, // 34: the queue keeps its PASID number
] as const;

export const SVA_LIFE_DEVICE = { devices: 2, mmio_pages: 1, dus_pages: 1, sva: true };
