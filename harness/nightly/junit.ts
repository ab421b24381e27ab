/**
 * JUnit XML of a night (the format CI systems read: Jenkins, GitLab, GitHub test reporters):
 * one <testsuite> per kernel; in it a "fuzzing" test case (an <error> when the kernel could not
 * be fetched or fuzzed) and one test case per bug, a <failure> for a new one; bugs of the last
 * night not seen tonight are passing test cases saying so. Titles come from guest output: every
 * text is stripped of characters XML cannot carry and escaped.
 */
import { escapeMarkup } from '../util/sanitize.js';
import type { NightlySummary, SummaryBug, SummaryKernel } from './summary.js';

const xmlText = escapeMarkup;

const secs = (ms: number) => (ms / 1000).toFixed(3);

function bugText(b: SummaryBug): string {
  return [
    `status: ${b.status}${b.first_night ? ` (first seen ${b.first_night}${b.last_night ? `, last before tonight ${b.last_night}` : ''})` : ''}`,
    `reports tonight: ${b.count}`,
    ...(b.known_note ? [`known issue: ${b.known_note}`] : []),
    'titles:',
    ...b.titles.map((t) => `  ${t}`),
    ...(b.why.length > 0 ? ['why one bug:', ...b.why.map((w) => `  ${w}`)] : []),
    `finding: ${b.links.finding}`,
    ...(b.links.report ? [`report: ${b.links.report}`] : []),
    ...(b.links.reproducer ? [`reproducer: ${b.links.reproducer}`] : []),
    ...(b.repro ? [`reproduction: ${b.repro.status} (${b.repro.note})`] : []),
  ].join('\n');
}

function suite(k: SummaryKernel, s: NightlySummary): string {
  const cls = `svadiff.nightly.${k.spec.replace(/[^A-Za-z0-9.]+/g, '_')}`;
  const fuzzMs = k.cells.reduce((t, c) => t + c.elapsed_ms, 0);
  const cases: string[] = [];
  const fuzzOut = `${k.programs} programs, ${k.checked_ops} checked ops (${k.checked_ops_per_s}/s), ${k.bugs.length} bugs, ${k.titles} distinct titles`;
  cases.push(
    `    <testcase classname="${xmlText(cls)}" name="fuzzing" time="${secs(fuzzMs)}">` +
      (k.status === 'failed' ? `\n      <error message="${xmlText(`the run failed on ${k.spec}`)}" type="run-failed">${xmlText(k.errors.join('\n'))}</error>` : '') +
      `\n      <system-out>${xmlText(fuzzOut)}</system-out>\n    </testcase>`,
  );
  for (const b of k.bugs) {
    const failure = b.status === 'new' ? `\n      <failure message="${xmlText(`new bug: ${b.title}`)}" type="new-bug">${xmlText(bugText(b))}</failure>` : '';
    cases.push(`    <testcase classname="${xmlText(cls)}" name="${xmlText(b.title)}" time="0">${failure}\n      <system-out>${xmlText(bugText(b))}</system-out>\n    </testcase>`);
  }
  for (const f of k.gone) {
    const what = f.status === 'fixed' ? `fixed: not seen tonight on a changed kernel (seen on ${f.last_night})` : `not seen tonight on the same kernel (seen on ${f.last_night}; not found, not fixed)`;
    cases.push(`    <testcase classname="${xmlText(cls)}" name="${xmlText(f.title)}" time="0">\n      <system-out>${xmlText(`${what}; titles: ${f.titles.join('; ')}`)}</system-out>\n    </testcase>`);
  }
  const failures = k.bugs.filter((b) => b.status === 'new').length;
  const errors = k.status === 'failed' ? 1 : 0;
  const props = [
    ['series', k.series],
    ['exact_spec', k.exact_spec ?? ''],
    ['release', k.release ?? ''],
    ['version', k.version ?? ''],
    ['previous_release', k.previous_release ?? ''],
    ['previous_version', k.previous_version ?? ''],
    ['night', s.night],
  ]
    .map(([n, v]) => `      <property name="${xmlText(n!)}" value="${xmlText(v!)}"/>`)
    .join('\n');
  const name = `${k.spec}${k.release ? ` (${k.release})` : ''}`;
  return (
    `  <testsuite name="${xmlText(name)}" tests="${cases.length}" failures="${failures}" errors="${errors}" skipped="0" time="${secs(fuzzMs)}" timestamp="${xmlText(s.started.replace(/\.\d+Z$/, ''))}">\n` +
    `    <properties>\n${props}\n    </properties>\n${cases.join('\n')}\n  </testsuite>`
  );
}

export function renderJunit(s: NightlySummary): string {
  const suites = s.kernels.map((k) => suite(k, s));
  const tests = s.kernels.reduce((t, k) => t + 1 + k.bugs.length + k.gone.length, 0);
  const failures = s.kernels.reduce((t, k) => t + k.bugs.filter((b) => b.status === 'new').length, 0);
  const errors = s.kernels.filter((k) => k.status === 'failed').length;
  const time = s.kernels.reduce((t, k) => t + k.cells.reduce((u, c) => u + c.elapsed_ms, 0), 0);
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<testsuites name="${xmlText(`svadiff nightly ${s.night}`)}" tests="${tests}" failures="${failures}" errors="${errors}" time="${secs(time)}">\n` +
    `${suites.join('\n')}\n</testsuites>\n`
  );
}
