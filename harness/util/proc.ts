/**
 * Child processes that must not outlive svadiff, however it ends (SIGKILL, the OOM killer, a
 * crash: nothing of svadiff runs then, so cleanup handlers cannot help). They are started
 * through util-linux `setpriv --pdeathsig KILL`, which sets PR_SET_PDEATHSIG (prctl(2)) and
 * execs the program: same pid, and the kernel sends it SIGKILL when its parent goes away.
 * (Newer QEMUs have `-run-with exit-with-parent=on`; bookworm's QEMU 7.2 rejects `-run-with`,
 * and setpriv works for every program and every QEMU.)
 *
 * Used for what runs long or holds resources: QEMU (a guest uses a whole core until it is
 * killed), module builds (make), debootstrap, the private apt state's downloads. Not for
 * `apt-get install` on the host (host.ts): a dpkg killed half way leaves the host's package
 * state broken, so that one finishes by itself.
 *
 * The signal follows the thread that forked the child: Node forks from the thread that calls
 * spawn, the main thread for svadiff (a test running svadiff code in a worker thread would tie
 * its children to that worker, which ends with the test file). setpriv sets the signal a few
 * microseconds after the fork; a harness killed within that window leaves the child to its
 * own exit.
 */
import { execa, type Options, type ResultPromise } from 'execa';
import { UserError } from './errors.js';
import { which } from './host.js';

let setprivChecked = false;

/** execa(file, args, options), with the child killed when svadiff dies. */
export function execaTiedToParent<O extends Options = {}>(file: string, args: readonly string[], options?: O): ResultPromise<{} & O> {
  if (!setprivChecked) {
    // util-linux is Essential on Debian: this only fails on a host that is not a normal Debian
    if (which('setpriv') === undefined) {
      throw new UserError(`setpriv is missing (needed to run ${file} so that it dies with svadiff); install util-linux: apt-get install util-linux`);
    }
    setprivChecked = true;
  }
  return execa('setpriv', ['--pdeathsig', 'KILL', '--', file, ...args], options);
}
