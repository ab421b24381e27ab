/**
 * A text plot of a count over time (rules reached during a fuzz run): a few lines that read in a
 * terminal and in a log, no dependencies.
 */

export interface Point {
  ms: number;
  value: number;
}

/** Rows of a step plot of `points` (time on x, value on y), `width` columns by `height` rows. */
export function plotSteps(points: readonly Point[], opts: { width?: number; height?: number; label: string; unit?: (ms: number) => string }): string[] {
  const width = opts.width ?? 60;
  const height = opts.height ?? 8;
  if (points.length === 0) return [`${opts.label}: no data`];
  const tMax = Math.max(1, points[points.length - 1]!.ms);
  const vMax = Math.max(1, ...points.map((p) => p.value));
  const vMin = Math.min(...points.map((p) => p.value));
  const lo = Math.max(0, vMin - Math.ceil((vMax - vMin) * 0.1) - 1);
  // the value at each column: the last point at or before its time
  const cols: number[] = [];
  let j = 0;
  for (let c = 0; c < width; c++) {
    const t = ((c + 1) / width) * tMax;
    while (j + 1 < points.length && points[j + 1]!.ms <= t) j++;
    cols.push(points[j]!.value);
  }
  const rows: string[] = [];
  const lab = (v: number) => String(Math.round(v)).padStart(5);
  for (let r = height - 1; r >= 0; r--) {
    const at = lo + ((r + 1) / height) * (vMax - lo);
    const prev = lo + (r / height) * (vMax - lo);
    const line = cols.map((v) => (v >= at ? '#' : v > prev ? '.' : ' ')).join('');
    rows.push(`${r === height - 1 ? lab(vMax) : r === 0 ? lab(lo) : '     '} |${line}`);
  }
  const unit = opts.unit ?? ((ms: number) => `${Math.round(ms / 1000)}s`);
  const axis = `      +${'-'.repeat(width)}`;
  const ticks = `       0${' '.repeat(Math.max(1, width - 1 - unit(tMax).length))}${unit(tMax)}`;
  return [opts.label, ...rows, axis, ticks];
}
