/**
 * svadiff command line. Each command lives in harness/commands/; this file only dispatches,
 * and turns UserErrors into one line on stderr.
 */
import { isUserError, errorMessage } from './util/errors.js';

const USAGE = `usage: svadiff <command> [options]

commands:
  kernels list [--available] [--arch A] [--refresh] [--json]
                                  fetched kernels, or what Debian's archive offers
  kernels fetch <kernel> [--uacce-src S]
                                  fetch a kernel and build its modules (debian:6.12, debian:6.1.192, …)
  kernels build <kernel> [--jobs N] [--rebuild]
                                  build a kernel from source: src:debian:7.2+kasan+lockdep,
                                  git:~/linux@v6.13+iommufd (fragments: kernels/config/)
  qemu build [--force] [--refresh] [--json]
                                  build the SVA machine's QEMU from Debian's source (cached; done on first use)
  boot [<kernel>]                 boot, load uacce and the test device, print what the guest has
  run <program.json> [--kernel K] [--uacce-src S] [--json]
                                  run one program and compare every op with the model
  fuzz [--kernel K] [--uacce-src S] [--time 10m] [--seed N] [--out DIR] [--family uacce|vfio]
        [--jobs N] [--reset reset|reload] [--snapshot on|off] [--programs N] [--fresh] [--no-feedback]
                                  generate and run programs, keep findings in DIR/findings/
  repro <finding-dir> [--kernel K] [--uacce-src S] [--runs 5] [--no-minimize] [--total-time T]
                                  minimize a finding, write repro.c and report.txt next to it
  replay <program.json | finding-dir | repro.c> [--kernel K] [--uacce-src S] [--runs 3] [--expect-title T]
                                  run it N times on fresh guest state: reproduced k of N
  nightly [--config FILE] [--kernels K,K] [--time 20m] [--seeds 1,2] [--jobs N] [--shard i/N]
        [--out DIR] [--history DIR] [--no-repro]
                                  fuzz a matrix of kernels, reproduce new bugs, write summary.json,
                                  junit.xml, index.html; exit 0 no new bug, 1 new bugs, 2 failed
  nightly --report DIR [--history DIR]
                                  the summary of a (merged) night
  merge --out DIR SRC...          combine the output directories of runs or shards into DIR
  bisect <finding-dir | program.json | repro.c> --good K --bad K [--runs 3] [--expect-title T]
                                  the first Debian version that shows it (debian:6.12.95 .. debian:6.12.118)
  bisect <...> --tree PATH --good REV --bad REV [--kernel K] [--paths P,...] [--fragments F,...]
                                  the first commit of a git range that shows it (git bisect)
  fixcheck --patch FIX.patch [--kernels K,K] [--time 10m] [--claims NAME,...] [--runs 1] [--only NAME,...]
        [--findings DIR] [--seed N] [--out DIR]
                                  does a uacce patch fix what it claims and add nothing? both builds side
                                  by side per kernel; exit 0 yes, 1 no
  fixreport --patch FIX.patch --bug NAME --fixcheck DIR[,DIR...] [--out FILE]
                                  the mail for a checked fix: patch, steps, what the kernel did,
                                  the C reproducer's main(), the verification
  known add <finding-dir> (--link URL | --reason TEXT) --note TEXT [--series S]
  known list [--series S]         the reviewed known-issue lists (corpus/known/)

common options: --accel auto|kvm|tcg (default auto: KVM if it works here, else TCG)
default kernel: debian:6.12; any command takes debian:…, src:debian:… and git:… kernels
--uacce-src: uacce.c, a directory with it (or a kernel tree), or a patch to the kernel's uacce
`;

export const DEFAULT_KERNEL = 'debian:6.12';

/** The usage lines of one command (its entry in USAGE), for `svadiff <command> --help` and mistakes. */
function usageOf(cmd: string): string {
  const lines = USAGE.split('\n');
  const start = lines.findIndex((l) => l.startsWith(`  ${cmd} `) || l === `  ${cmd}`);
  if (start < 0) return USAGE;
  const out = [lines[start]!];
  for (const l of lines.slice(start + 1)) {
    if (!l.startsWith('      ')) break;
    out.push(l);
  }
  return `usage: svadiff${out.join('\n').replace(/^ {2}/, ' ')}\n`;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd !== undefined && (rest.includes('--help') || rest.includes('-h'))) {
    process.stdout.write(usageOf(cmd === 'kernels' || cmd === 'qemu' ? `${cmd} ${rest[0] ?? ''}`.trim() : cmd));
    return 0;
  }
  switch (cmd) {
    case 'kernels': {
      const [sub, ...args] = rest;
      const k = await import('../kernels/index.js');
      if (sub === 'list') await k.cmdKernelsList(args);
      else if (sub === 'fetch') await k.cmdKernelsFetch(args);
      else if (sub === 'build') await k.cmdKernelsBuild(args);
      else {
        process.stderr.write(`svadiff kernels: say list, fetch or build\n${USAGE}`);
        return 2;
      }
      return 0;
    }
    case 'qemu': {
      const [sub, ...args] = rest;
      if (sub !== 'build') {
        process.stderr.write(`svadiff qemu: say build\n${USAGE}`);
        return 2;
      }
      await (await import('../qemu/index.js')).cmdQemuBuild(args);
      return 0;
    }
    case 'boot':
      return (await import('./commands/boot.js')).cmdBoot(rest);
    case 'run':
      return (await import('./commands/run.js')).cmdRun(rest);
    case 'fuzz':
      return (await import('./commands/fuzz.js')).cmdFuzz(rest);
    case 'replay':
      return (await import('./commands/replay.js')).cmdReplay(rest);
    case 'repro':
      return (await import('./commands/repro.js')).cmdRepro(rest);
    case 'known':
      return (await import('./commands/known.js')).cmdKnown(rest);
    case 'nightly':
      return (await import('./commands/nightly.js')).cmdNightly(rest);
    case 'merge':
      return (await import('./commands/merge.js')).cmdMerge(rest);
    case 'bisect':
      return (await import('./commands/bisect.js')).cmdBisect(rest);
    case 'fixcheck':
      return (await import('./commands/fixcheck.js')).cmdFixcheck(rest);
    case 'fixreport':
      return (await import('./commands/fixreport.js')).cmdFixreport(rest);
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return cmd === undefined ? 2 : 0;
    default:
      process.stderr.write(`svadiff: unknown command "${cmd}"\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    const code = (e as { code?: unknown })?.code;
    if (isUserError(e)) {
      process.stderr.write(`svadiff: ${e.message}\n`);
      process.exitCode = e.exitCode;
    } else if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_')) {
      // node:util parseArgs: an unknown option, a missing value, a stray argument
      const what = errorMessage(e).split('. ')[0];
      const cmd = process.argv[2] ?? '';
      process.stderr.write(`svadiff: ${what}; see: svadiff ${cmd} --help\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`svadiff: internal error: ${errorMessage(e)}\n${(e as Error)?.stack ?? ''}\n`);
      process.exitCode = 70;
    }
  },
);
