/**
 * Every rule the model applies, with where it comes from. A Prediction names the rule that
 * decided its outcome, so a report can say why the model expected what it expected.
 * Spec = the uacce semantics sheet (docs/uacce-semantics.md);
 * TD = docs/test-device.md; AP = docs/agent-protocol.md. Kernel files are cited with the
 * versions read (Debian 6.1.192, 6.12.117, 7.2.13 sources).
 */
export const RULES = {
  // ---- program / agent
  'task.dead': 'AP "Tasks": an op sent to a task that has exited (or never existed) gets ESRCH',
  'program.malformed': 'the program reuses a name or names a missing object; parse.ts rejects such programs',
  'fd.ebadf': 'fget() of the fd the task does not have (the agent passes -1): EBADF',

  // ---- open
  'open.path-gone':
    'Spec "open": removed device: the agent opens the last node name, which device_del() removed from devtmpfs: ENOENT',
  'open.procfd-nofd': 'the agent opens /proc/self/fd/-1 when the task lacks the descriptor `of`: ENOENT',
  'open.no-cdev':
    'fs/char_dev.c chrdev_open() 6.1-7.2: inode->i_cdev unset and kobj_lookup() finds no cdev for i_rdev (the device is gone): ENXIO',
  'open.no-device':
    'uacce_fops_open() 6.1-7.2: xa_load(&uacce_xa, iminor(inode)) is NULL (stale node of a removed device): ENODEV; Spec "open"',
  'open.sva-nogroup':
    'uacce_bind_queue() -> iommu_sva_bind_device(): parent without IOMMU group: ENODEV (drivers/iommu/iommu-sva.c 7.2); Spec "open" 6.16+',
  'open.sva-killswitch': 'Debian x86 6.1/6.12 stable patch: every SVA bind fails with EOPNOTSUPP (profile fact)',
  'open.busy': 'TD "get_queue": -EBUSY once queue_limit queues are live; uacce_fops_open() returns it',
  'open.ok': 'uacce_fops_open(): new queue in UACCE_Q_INIT bound to the opener mm; TD get_queue initialises its pages',
  'close.ok': 'close() drops one file reference; the queue is released at the last one (Spec "Lifetimes")',
  'dup.ok': 'dup() shares the open file description (Spec "Objects")',

  // ---- mmap family
  'mmap.region-invalid':
    'uacce_fops_mmap() 6.1-7.2: vm_pgoff >= UACCE_MAX_REGION -> -EINVAL before any state check (Spec "mmap")',
  'mmap.zombie': 'uacce_fops_mmap(): !uacce_queue_is_valid(q) -> -ENXIO (Spec "Device removal")',
  'mmap.exists': 'uacce_fops_mmap(): q->qfrs[type] set -> -EEXIST: one live mapping per region per queue (Spec "mmap")',
  'mmap.no-region': 'TD "mmap": -EINVAL if the region has 0 pages',
  'mmap.too-long': 'TD "mmap": -EINVAL if the vma is longer than the region',
  'mmap.ok': 'uacce_fops_mmap() + TD mmap: remap_pfn_range of the region from its first page; the region is mapped',
  'alloc.ok': 'mmap(MAP_PRIVATE|MAP_ANONYMOUS) at the slot address: zero-filled anonymous memory',
  'munmap.ok':
    'munmap() returns 0 for any page-aligned range; a region stays mapped until every page of its mapping is gone (Spec "mmap")',
  'mremap.dontunmap-resize':
    'mm/mremap.c (6.1/6.12 SYSCALL mremap, 7.2 check_mremap_params): MREMAP_DONTUNMAP with old_len != new_len -> -EINVAL',
  'mremap.overlap': 'mm/mremap.c: source and destination ranges overlap -> -EINVAL',
  'mremap.no-vma': 'mm/mremap.c: no vma at addr (vma_lookup / check_prep_vma / remap_move gap at start) -> -EFAULT',
  'mremap.cross-vma': 'mm/mremap.c vma_to_resize / check_prep_vma: old_len > vm_end - addr -> -EFAULT',
  'mremap.dontunmap-special':
    'mm/mremap.c vma_to_resize (6.1/6.12) / check_prep_vma (7.2): MREMAP_DONTUNMAP on VM_DONTEXPAND|VM_PFNMAP -> -EINVAL (Spec "mremap")',
  'mremap.grow-special':
    'mm/mremap.c: growing a VM_DONTEXPAND|VM_PFNMAP vma (remap_pfn_range sets both) -> -EFAULT (Spec "mremap")',
  'mremap.grow-nospace': 'mm/mremap.c: cannot expand in place and no MREMAP_MAYMOVE -> -ENOMEM',
  'mremap.move-uacce':
    'move_vma()/copy_vma_and_data(): uacce_vma_mremap() returns -EPERM, page tables move back, the original stays intact and its region mapped (Spec "mremap")',
  'mremap.shrink': 'mm/mremap.c: a shrink unmaps the tail; a region stays mapped while a piece remains (Spec "mmap")',
  'mremap.same': 'mm/mremap.c: old_len == new_len without a move is a no-op returning addr',
  'mremap.grow': 'mm/mremap.c: anonymous vma expanded in place (vma_expandable)',
  'mremap.move': 'mm/mremap.c move_vma(): anonymous pages move to the new address',
  'madvise.dofork-io':
    'mm/madvise.c MADV_DOFORK: VM_IO (6.1/6.12) / VM_SPECIAL (7.2) vma -> -EINVAL (Spec "mmap")',
  'madvise.unmapped': 'mm/madvise.c madvise_walk_vmas(): part of the range unmapped -> -ENOMEM after the walk',
  'madvise.ok': 'MADV_DOFORK on anonymous memory clears VM_DONTCOPY: 0',

  // ---- memory access
  'touch.unmapped': 'no vma at the address (never mapped, unmapped, not inherited by fork): SIGSEGV',
  'touch.prot': 'access not allowed by the vma protection: SIGSEGV',
  'touch.zombie':
    'uacce_remove(): unmap_mapping_range() zapped the mapping and uacce_vm_ops has no .fault: SIGBUS (Spec "Device removal")',
  'touch.read': 'a 64-bit load: device page (TD contents), private COW copy, or anonymous memory',
  'touch.write': 'a 64-bit store; to a private mapping it goes to a private copy of the page',
  'submit.signal': 'the agent faulted touching the mmio or dus mapping (AP "submit")',
  'submit.done': 'AP "submit" + TD "The engine": the work item completed; data from its descriptor',
  'submit.timeout': 'AP "submit": CQ_HEAD did not pass the new tail within 200 ms (queue not started, or no device doorbell): ETIMEDOUT',
  'submit.race':
    'the agent\'s wait ended before the engine finished (CQ_HEAD was already past the tail): what it read is timing-dependent',
  'submit.unknown': 'the engine runs asynchronously on this queue (doorbell rung outside a submit): completion and data are timing-dependent',

  // ---- ioctl
  'ioctl.vfs': 'fs/ioctl.c do_vfs_ioctl(): generic command handled before the driver (argument 0)',
  'ioctl.vfs-env': 'fs/ioctl.c do_vfs_ioctl(): generic command whose result depends on the agent environment or filesystem',
  'ioctl.zombie': 'uacce_fops_unl_ioctl(): !uacce_queue_is_valid(q) -> -ENXIO for every command (Spec "ioctl")',
  'ioctl.start': 'uacce_start_queue(): INIT -> driver start_queue -> STARTED, 0 (TD start_queue)',
  'ioctl.start-started': 'uacce_start_queue(): state != UACCE_Q_INIT -> -EINVAL (Spec "ioctl")',
  'ioctl.put-stop': 'UACCE_CMD_PUT_Q -> uacce_stop_queue(): driver stop_queue, back to INIT, 0 (Spec "ioctl")',
  'ioctl.put-init': 'UACCE_CMD_PUT_Q on an INIT queue: 0, nothing changes (Spec "ioctl")',
  'ioctl.driver': 'uacce_fops_unl_ioctl() default: the driver ioctl (TD: PING returns the queue id, others -ENOTTY)',
  'ioctl.no-driver-op': 'uacce_fops_unl_ioctl() default without ops->ioctl: -EINVAL, not -ENOTTY (Spec "ioctl")',

  // ---- poll
  'poll.nofd': 'fs/select.c do_pollfd(): a negative fd is ignored (the agent passes -1): poll times out with 0',
  'poll.zombie': 'uacce_fops_poll(): invalid queue -> no events, poll times out (Spec "Device removal")',
  'poll.news': 'uacce_fops_poll(): is_q_updated (TD: CQ_HEAD != ACK) -> EPOLLIN|EPOLLRDNORM; do_pollfd() keeps the requested POLLIN',
  'poll.none': 'uacce_fops_poll(): no news and nothing can complete during the wait: timeout, 0',
  'poll.maybe': 'news depends on an asynchronously running engine: either readable or a timeout',

  // ---- tasks
  'fork.ok':
    'fork: the child shares every queue through inherited fds, copies anonymous memory, gets no uacce mapping (VM_DONTCOPY) (Spec "fork and exit")',
  'exit.ok': 'exit: mappings are closed first (exit_mm), then files (exit_files) (Spec "fork and exit")',

  // ---- device removal / re-adding
  'remove.ok':
    'uacce_remove(): every queue stopped, put, ZOMBIE; every mapping zapped; cdev deleted; id freed (Spec "Device removal")',
  'remove.unbound': 'drivers/base/bus.c unbind_store(): device not bound to the driver -> -ENODEV',
  'add.ok': 'drivers/base/bus.c bind_store() -> probe: a fresh uacce device; uacce_alloc() xa_alloc gives the lowest free id',
  'add.bound': 'drivers/base/dd.c __driver_probe_device(): dev->driver already set -> -EBUSY',
  'dev.nonexistent': 'bus_find_device_by_name() finds no svadiff_test.<N>: -ENODEV',

  // ---- sysfs
  'sysfs.gone': 'the device\'s class directory is gone after removal (the agent uses the last name): ENOENT',
  'sysfs.hidden':
    'uacce_dev_is_visible(): region size without pages, isolate without get_isolate_state, isolate_strategy without either op, isolate files before 6.2: ENOENT',
  'sysfs.read': 'uacce attribute show functions (sysfs_emit "%s\\n" / "%u\\n" / "%d\\n")',
  'sysfs.read-noop': 'isolate_strategy_show(): no isolate_err_threshold_read -> -ENOENT',
  'sysfs.readonly':
    'fs/kernfs/file.c kernfs_fop_open() (KERNFS_ROOT_EXTRA_OPEN_PERM_CHECK): opening a read-only attribute for writing -> EACCES',
  'sysfs.write-empty': 'fs/sysfs/file.c sysfs_kf_write(): a zero-length write returns 0 before the store',
  'sysfs.write-noop': 'isolate_strategy_store(): no isolate_err_threshold_write -> -ENOENT',
  'sysfs.write-invalid': 'isolate_strategy_store(): kstrtoul() fails or value > UACCE_MAX_ERR_THRESHOLD (65535) -> -EINVAL',
  'sysfs.write': 'isolate_strategy_store(): the driver stores the threshold; the write returns count',
} as const;

export type RuleId = keyof typeof RULES;

export function describeRule(id: string): string {
  return (RULES as Record<string, string>)[id] ?? `unknown rule ${id}`;
}
