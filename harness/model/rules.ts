import { CORE_RULES } from './core.js';
import { DMA_RULES } from './dma.js';
import { SVA_RULES } from './sva.js';
import { UACCE_RULES } from './uacce.js';
import { VFIO_RULES } from './vfio.js';
import { IOMMUFD_RULES } from './iommufd.js';

/**
 * Every rule the model applies (each op family's, next to its model), with where it comes from. A Prediction names the rule that
 * decided its outcome, so a report can say why the model expected what it expected.
 * Spec = the uacce semantics sheet (docs/uacce-semantics.md);
 * TD = docs/test-device.md; AP = docs/agent-protocol.md. Kernel files are cited with the
 * versions read (Debian 6.1.192, 6.12.117, 7.2.13 sources).
 */
export const RULES = { ...CORE_RULES, ...UACCE_RULES, ...SVA_RULES, ...VFIO_RULES, ...IOMMUFD_RULES, ...DMA_RULES } as const;

export type RuleId = keyof typeof RULES;

export function describeRule(id: string): string {
  return (RULES as Record<string, string>)[id] ?? `unknown rule ${id}`;
}
