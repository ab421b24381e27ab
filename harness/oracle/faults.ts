/**
 * DMA remapping faults the model predicted are the expected behaviour, not findings: an ep_dma
 * to an IOVA its endpoint's domain does not map makes the IOMMU log a fault for that endpoint
 * (docs/ownership-semantics.md "The endpoint's engine"), and so does a work item of a bound
 * queue whose opener's address space is gone (its PASID entry torn down: docs/test-device.md
 * "The endpoint", harness/model/sva.ts submit.sva-mm-gone). Only faults of endpoints the model
 * named (CheckResult.dmaFaults) are set apart; any other IOMMU fault stays a report.
 */
import type { CrashReport } from './report.js';

/** A PCI address without segment 0: "0000:01:00.0" and "01:00.0" are the same device. */
const bdf = (a: string): string => a.toLowerCase().replace(/^0000:/, '');

/**
 * The reports split into the ones that stay (findings) and the DMA remapping faults of the
 * endpoints in `faulting` (indexes into the machine's `endpointAddresses`).
 */
export function splitExpectedFaults(
  reports: readonly CrashReport[],
  faulting: readonly number[],
  endpointAddresses: readonly string[],
): { reports: CrashReport[]; expected: CrashReport[] } {
  const devices = new Set(faulting.flatMap((ep) => (endpointAddresses[ep] === undefined ? [] : [bdf(endpointAddresses[ep]!)])));
  const expected: CrashReport[] = [];
  const kept: CrashReport[] = [];
  for (const r of reports) {
    const dev = r.pattern === 'dmar-fault' ? r.details?.device : undefined;
    (dev !== undefined && devices.has(bdf(dev)) ? expected : kept).push(r);
  }
  return { reports: kept, expected };
}
