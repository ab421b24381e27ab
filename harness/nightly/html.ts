/**
 * The night as a static HTML page (index.html next to the findings): the result at the top, a
 * bugs-by-kernel table (new, regressed, known, seen before, fixed since the last night) with
 * every title of each bug, why they are one bug, and links to the finding, its report and its
 * reproducer; per kernel, small plots of checked ops/s and bugs over the nights of the history.
 * No script, no external resource: the page opens from a CI artifact or a file system as it is.
 * Every text from a run (titles come from guest output) is escaped.
 */
import { escapeMarkup } from '../util/sanitize.js';
import type { ReproRecord } from './run.js';
import type { BugStatus, GoneBug, NightlySummary, SummaryBug, SummaryKernel } from './summary.js';

const esc = escapeMarkup;

const STATUS_TEXT: Record<BugStatus | GoneBug['status'], string> = {
  new: 'new',
  regressed: 'regressed',
  known: 'known',
  'seen-before': 'seen before',
  fixed: 'fixed since last night',
  'not-seen': 'not seen tonight',
};

const REPRO_TEXT: Record<ReproRecord['status'], string> = {
  reproduced: 'reproduced',
  flaky: 'flaky, not every run shows it',
  'not-reproduced': 'did not reproduce',
  failed: 'failed',
  skipped: 'skipped',
};

/** A URL path relative to the page, each segment percent-encoded. */
function href(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

function badge(status: BugStatus | GoneBug['status']): string {
  return `<span class="badge ${status}">${esc(STATUS_TEXT[status])}</span>`;
}

interface Point {
  night: string;
  value: number;
  /** a second value drawn over the first (new bugs over all bugs) */
  part?: number;
}

/**
 * A small SVG chart: a line (`kind` line) or bars (`kind` bars, with `part` drawn darker), the
 * last point tonight. Labels: the maximum on the axis, the first and last night under it.
 */
export function plot(title: string, points: readonly Point[], kind: 'line' | 'bars', unit: string): string {
  const W = 280;
  const H = 110;
  const L = 34;
  const R = 8;
  const T = 18;
  const B = 22;
  const w = W - L - R;
  const h = H - T - B;
  const max = Math.max(1, ...points.map((p) => p.value));
  const n = points.length;
  // points of a line span the width; bars sit in equal slots so that none covers an axis
  const x = kind === 'bars' ? (i: number) => L + ((i + 0.5) * w) / Math.max(1, n) : (i: number) => L + (n <= 1 ? w / 2 : (i * w) / (n - 1));
  const y = (v: number) => T + h - (v / max) * h;
  const parts: string[] = [];
  parts.push(`<svg class="plot" role="img" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" xmlns="http://www.w3.org/2000/svg">`);
  parts.push(`<title>${esc(title)}</title>`);
  parts.push(`<text x="${L}" y="12" class="ptitle">${esc(title)}</text>`);
  parts.push(`<line x1="${L}" y1="${T + h}" x2="${L + w}" y2="${T + h}" class="axis"/><line x1="${L}" y1="${T}" x2="${L}" y2="${T + h}" class="axis"/>`);
  parts.push(`<text x="${L - 4}" y="${T + 4}" class="tick" text-anchor="end">${esc(fmtNum(max))}</text>`);
  parts.push(`<text x="${L - 4}" y="${T + h}" class="tick" text-anchor="end">0</text>`);
  if (n > 0) {
    parts.push(`<text x="${L}" y="${H - 6}" class="tick">${esc(shortNight(points[0]!.night))}</text>`);
    if (n > 1) parts.push(`<text x="${L + w}" y="${H - 6}" class="tick" text-anchor="end">${esc(shortNight(points[n - 1]!.night))}</text>`);
  }
  if (kind === 'line') {
    if (n > 1) parts.push(`<polyline class="line" fill="none" points="${points.map((p, i) => `${x(i).toFixed(1)},${y(p.value).toFixed(1)}`).join(' ')}"/>`);
    points.forEach((p, i) => parts.push(`<circle class="dot" cx="${x(i).toFixed(1)}" cy="${y(p.value).toFixed(1)}" r="3"><title>${esc(`${p.night}: ${fmtNum(p.value)} ${unit}`)}</title></circle>`));
  } else {
    const bw = Math.max(3, Math.min(18, (w / Math.max(1, n)) * 0.6));
    points.forEach((p, i) => {
      const cx = x(i);
      parts.push(`<rect class="bar" x="${(cx - bw / 2).toFixed(1)}" y="${y(p.value).toFixed(1)}" width="${bw.toFixed(1)}" height="${(T + h - y(p.value)).toFixed(1)}"><title>${esc(`${p.night}: ${p.value} ${unit}${p.part ? `, ${p.part} new` : ''}`)}</title></rect>`);
      if (p.part) parts.push(`<rect class="bar new" x="${(cx - bw / 2).toFixed(1)}" y="${y(p.part).toFixed(1)}" width="${bw.toFixed(1)}" height="${(T + h - y(p.part)).toFixed(1)}"/>`);
    });
  }
  parts.push('</svg>');
  return parts.join('');
}

function fmtNum(v: number): string {
  return v >= 100 ? String(Math.round(v)) : String(Math.round(v * 10) / 10);
}

/** "12-04 15:02" for a night named by its start time, else the night's name. */
function shortNight(night: string): string {
  const m = /^\d{4}-(\d{2}-\d{2})T(\d{2})-(\d{2})/.exec(night);
  return m ? `${m[1]} ${m[2]}:${m[3]}` : night.slice(0, 16);
}

function bugCell(b: SummaryBug | undefined, gone: GoneBug['status'] | undefined): string {
  if (gone === 'fixed') return `<td class="k">${badge('fixed')}</td>`;
  if (gone) return `<td class="k" title="the same kernel as last night: fuzzing did not find it tonight, which says nothing about a fix">${badge(gone)}</td>`;
  if (!b) return '<td class="k none">–</td>';
  const links = [
    b.links.report ? `<a href="${href(b.links.report)}">report</a>` : '',
    b.links.reproducer ? `<a href="${href(b.links.reproducer)}">repro.c</a>` : '',
    b.links.program ? `<a href="${href(b.links.program)}">program</a>` : '',
    `<a href="${href(b.links.finding)}">finding</a>`,
  ].filter(Boolean);
  const repro = b.repro ? `<div class="repro">reproduction: ${esc(REPRO_TEXT[b.repro.status])} (${esc(b.repro.note)})</div>` : '';
  const since = b.first_night ? `<div class="since">first seen ${esc(shortNight(b.first_night))}</div>` : '';
  return `<td class="k">${badge(b.status)} <span class="count">${b.count} report${b.count === 1 ? '' : 's'}</span><div class="links">${links.join(' · ')}</div>${since}${repro}</td>`;
}

/** What ran tonight: "6.1.192 (6.1.0-57-amd64)"; Debian's release names stay the same over several versions. */
function kernelText(k: SummaryKernel): string {
  if (!k.release) return 'not run';
  return k.version ? `${k.version} (${k.release})` : k.release;
}

/** The kernel changed since the last night of its series: "was 6.1.191". */
function changedText(k: SummaryKernel): string {
  const was =
    k.previous_version && k.version && k.previous_version !== k.version
      ? k.previous_version
      : k.previous_release && k.release && k.previous_release !== k.release
        ? k.previous_release
        : undefined;
  return was ? `<div class="since">was ${esc(was)} in the last night</div>` : '';
}

export function renderHtml(s: NightlySummary, history: readonly NightlySummary[]): string {
  const nights = [...history.filter((n) => n.night < s.night), s];
  // rows: every bug of tonight (by id), then the last night's not seen tonight
  interface Row {
    title: string;
    kind: string;
    titles: Set<string>;
    why: Set<string>;
    known?: string;
    per: Map<string, SummaryBug>;
    gone: Map<string, GoneBug['status']>;
  }
  const rows = new Map<string, Row>();
  for (const k of s.kernels) {
    for (const b of k.bugs) {
      const r: Row = rows.get(b.id) ?? { title: b.title, kind: b.kind, titles: new Set<string>(), why: new Set<string>(), per: new Map(), gone: new Map() };
      for (const t of b.titles) r.titles.add(t);
      for (const w of b.why) r.why.add(w);
      if (b.known_note) r.known = b.known_note;
      r.per.set(k.spec, b);
      rows.set(b.id, r);
    }
  }
  for (const k of s.kernels) {
    for (const f of k.gone) {
      const id = `gone:${f.id}`;
      const r: Row = rows.get(id) ?? { title: f.title, kind: '', titles: new Set<string>(f.titles), why: new Set<string>(), per: new Map(), gone: new Map() };
      r.gone.set(k.spec, f.status);
      rows.set(id, r);
    }
  }
  // the table's rows are bugs (one on several kernels is one row); the totals count per kernel
  const bugRows = [...rows.values()].filter((r) => r.per.size > 0);
  const newBugs = bugRows.filter((r) => [...r.per.values()].some((b) => b.status === 'new')).length;
  const resultText = s.result === 'failed' ? 'the run failed' : s.result === 'new-bugs' ? `${newBugs} new bug${newBugs === 1 ? '' : 's'}` : 'no new bugs';
  const order: Record<string, number> = { new: 0, regressed: 1, 'seen-before': 2, known: 3 };
  const rank = (r: { per: Map<string, SummaryBug> }) => Math.min(4, ...[...r.per.values()].map((b) => order[b.status] ?? 4));
  const sorted = [...rows.entries()].sort(([, a], [, b]) => rank(a) - rank(b) || a.title.localeCompare(b.title));

  const head = s.kernels
    .map((k) => {
      return `<th class="k">${esc(k.spec)}<div class="rel">${esc(kernelText(k))}</div>${changedText(k)}</th>`;
    })
    .join('');
  const body = sorted
    .map(([id, r]) => {
      const others = [...r.titles].filter((t) => t !== r.title);
      const details =
        others.length > 0 || r.why.size > 0 || r.known
          ? `<details><summary>${others.length > 0 ? `${others.length + 1} titles` : 'details'}${r.why.size > 0 ? ', why one bug' : ''}</summary>` +
            (others.length > 0 ? `<div class="sub">also reported as</div><ul class="titles">${others.map((t) => `<li>${esc(t)}</li>`).join('')}</ul>` : '') +
            (r.why.size > 0 ? `<div class="sub">why one bug</div><ul class="why">${[...r.why].map((w) => `<li>${esc(w)}</li>`).join('')}</ul>` : '') +
            (r.known ? `<div class="known-note">known issue: ${esc(r.known)}</div>` : '') +
            '</details>'
          : '';
      const cells = s.kernels.map((k) => bugCell(r.per.get(k.spec), r.gone.get(k.spec))).join('');
      return `<tr data-bug="${esc(id)}"><td class="bug"><div class="title">${esc(r.title)}</div><div class="kind">${esc(r.kind)}</div>${details}</td>${cells}</tr>`;
    })
    .join('\n');

  const kernelBlocks = s.kernels
    .map((k) => {
      const series = nights.map((n) => ({ night: n.night, k: n.kernels.find((x) => x.series === k.series && x.status === 'ok') ?? (n === s ? k : undefined) })).filter((x) => x.k);
      const ops = plot(`${k.spec}: checked ops/s`, series.map((x) => ({ night: x.night, value: x.k!.checked_ops_per_s })), 'line', 'checked ops/s');
      const bugs = plot(`${k.spec}: bugs (red: new)`, series.map((x) => ({ night: x.night, value: x.k!.bugs.length, part: x.k!.counts.new })), 'bars', 'bugs');
      const errs = k.errors.length > 0 ? `<ul class="errors">${k.errors.map((e) => `<li>${esc(e)}</li>`).join('')}</ul>` : '';
      const c = k.counts;
      return (
        `<section class="kernel" data-kernel="${esc(k.spec)}"><h3>${esc(k.spec)} <span class="rel">${esc(kernelText(k))}</span></h3>${changedText(k)}` +
        `<p>${k.programs} programs, ${k.checked_ops} checked ops (${k.checked_ops_per_s}/s), ${k.cells.length} cell${k.cells.length === 1 ? '' : 's'} (seeds ${k.cells.map((x) => x.seed).join(', ')}); ` +
        `<b>${k.bugs.length} bug${k.bugs.length === 1 ? '' : 's'}</b> under ${k.titles} distinct title${k.titles === 1 ? '' : 's'}: ${c.new} new, ${c.regressed} regressed, ${c.known} known, ${c['seen-before']} seen before, ${c.fixed} fixed since the last night (the kernel changed), ${c['not-seen']} not seen tonight (the same kernel).</p>` +
        errs +
        `<div class="plots">${ops}${bugs}</div></section>`
      );
    })
    .join('\n');

  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>svadiff nightly ${esc(s.night)}: ${esc(resultText)}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; margin: 0 0 .3em; }
.result { display: inline-block; padding: .2em .7em; border-radius: 4px; font-weight: bold; color: #fff; }
.result.no-new-bugs { background: #2e7d32; } .result.new-bugs { background: #c62828; } .result.failed { background: #616161; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: .35em .5em; vertical-align: top; text-align: left; }
th { background: #f3f3f3; }
td.bug { max-width: 34em; } .title { font-family: ui-monospace, monospace; } .kind, .rel, .since, .repro, .links { font-size: .85em; color: #555; }
td.none { color: #aaa; text-align: center; }
.badge { display: inline-block; padding: 0 .45em; border-radius: 3px; font-size: .85em; color: #fff; }
.badge.new { background: #c62828; } .badge.regressed { background: #ef6c00; } .badge.known { background: #546e7a; }
.badge.seen-before { background: #9e9e9e; } .badge.fixed { background: #2e7d32; } .badge.not-seen { background: #78909c; }
.count { color: #555; } details { margin-top: .3em; } ul { margin: .2em 0; padding-left: 1.2em; }
ul.titles li { font-family: ui-monospace, monospace; font-size: .9em; } ul.why li { font-size: .85em; color: #444; }
section.kernel { margin: 1.2em 0; } .plots { display: flex; gap: 1.5em; flex-wrap: wrap; }
svg.plot .axis { stroke: #888; stroke-width: 1; } svg.plot .line { stroke: #1565c0; stroke-width: 2; } svg.plot .dot { fill: #1565c0; }
svg.plot .bar { fill: #90a4ae; } svg.plot .bar.new { fill: #c62828; } svg.plot .tick { font-size: 10px; fill: #555; } svg.plot .ptitle { font-size: 11px; fill: #222; }
ul.errors { color: #b71c1c; } .sub { font-size: .8em; font-weight: bold; color: #666; margin-top: .3em; } .known-note { font-size: .85em; color: #444; margin-top: .3em; }
</style>
</head>
<body>
<h1>svadiff nightly ${esc(s.night)}</h1>
<p><span class="result ${esc(s.result)}">${esc(resultText)}</span>
${bugRows.length} bug${bugRows.length === 1 ? '' : 's'} on ${s.kernels.length} kernel${s.kernels.length === 1 ? '' : 's'}; counted per kernel: ${s.totals.new} new, ${s.totals.regressed} regressed, ${s.totals.known} known, ${s.totals['seen-before']} seen before, ${s.totals.fixed} fixed since the last night, ${s.totals['not-seen']} not seen tonight.
${s.compared_with.length > 0 ? `Compared with ${s.compared_with.length} earlier night${s.compared_with.length === 1 ? '' : 's'} (last: ${esc(s.compared_with[s.compared_with.length - 1]!)}).` : 'No earlier night in the history: every bug not known is new.'}</p>
<h2>Bugs by kernel</h2>
<table class="bugs">
<thead><tr><th>bug (lead title)</th>${head}</tr></thead>
<tbody>
${body || `<tr><td colspan="${s.kernels.length + 1}">no bugs tonight</td></tr>`}
</tbody>
</table>
<h2>Kernels</h2>
${kernelBlocks}
<p class="since">Files: <a href="summary.json">summary.json</a> · <a href="junit.xml">junit.xml</a> · <a href="bugs.json">bugs.json</a> · <a href="night.json">night.json</a>. Statuses: new (not known, not seen on the series before), regressed (seen before, not in the last night), known (corpus/known), seen before (in the last night), fixed since the last night (not seen tonight, and the kernel changed), not seen tonight (the same kernel: not found, which is not a fix).</p>
</body>
</html>
`;
}
