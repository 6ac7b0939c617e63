/**
 * Turns the runs into what a person reads: sparse/dense ratios per load level, results.json (every figure and the
 * exact settings), report.md (a table per level), the latency-throughput SVG, and a short terminal summary.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { latencyThroughputSvg, type ChartSeries } from './svg-chart.js';
import { levelLabel, type LoadLevel, type LoadtestResults, type Ratio, type RunResult } from './types.js';

export const reportFiles = { json: 'results.json', markdown: 'report.md', chart: 'latency-throughput.svg' };

const sameLevel = (a: LoadLevel, b: LoadLevel) => a.kind === b.kind && a.value === b.value;

export const findRun = (runs: RunResult[], variant: string, level: LoadLevel) =>
  runs.find((run) => run.variant === variant && sameLevel(run.level, level));

const ratioOf = (a: number, b: number) => (b > 0 ? Math.round((a / b) * 1000) / 1000 : null);

/** For each level and each compared model: throughput, p50 and p99 relative to the baseline, only from `ok` runs. */
export function computeRatios(runs: RunResult[], levels: LoadLevel[], variants: string[], baseline?: string): Ratio[] {
  if (!baseline) return [];
  const ratios: Ratio[] = [];
  for (const level of levels) {
    const base = findRun(runs, baseline, level);
    for (const variant of variants.filter((name) => name !== baseline)) {
      const run = findRun(runs, variant, level);
      const missing = !run ? `${variant} has no run` : !base ? `${baseline} has no run` : undefined;
      const bad = [run, base].find((r) => r && r.status !== 'ok');
      if (missing || bad || !run || !base) {
        const note = missing ?? `${bad!.variant} run is ${bad!.status}: ${bad!.problems.join('; ')}`;
        ratios.push({ level, variant, baseline, throughputRatio: null, p50Ratio: null, p99Ratio: null, note });
        continue;
      }
      ratios.push({
        level,
        variant,
        baseline,
        throughputRatio: ratioOf(run.throughput, base.throughput),
        p50Ratio: ratioOf(run.latencyMs.p50, base.latencyMs.p50),
        p99Ratio: ratioOf(run.latencyMs.p99, base.latencyMs.p99),
      });
    }
  }
  return ratios;
}

const num = (value: number | null | undefined, digits = 1) =>
  value === null || value === undefined || Number.isNaN(value) ? 'n/a' : value.toFixed(digits);
const ms = (seconds: number | null | undefined) =>
  seconds === null || seconds === undefined ? 'n/a' : (seconds * 1000).toFixed(1);
const x = (ratio: number | null) => (ratio === null ? 'n/a' : `${ratio.toFixed(2)}x`);

const shortLevel = (level: LoadLevel) => (level.kind === 'concurrency' ? `c${level.value}` : `r${level.value}`);

function markdownTable(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

function runRow(run: RunResult, role: string): string[] {
  const s = run.server;
  return [
    `${run.variant}${role}`,
    run.status === 'ok' ? 'ok' : `**${run.status}**`,
    num(run.throughput, 2),
    num(run.latencyMs.p50),
    num(run.latencyMs.p90),
    num(run.latencyMs.p99),
    num(run.latencyMs.max),
    String(run.ok2xx),
    String(run.non2xx),
    String(run.errors),
    ms(s?.queueWait.mean),
    ms(s?.inference.mean),
    num(s?.batchSize.mean, 2),
    run.process ? num(run.process.cpuCores, 2) : 'n/a',
    run.process ? num(run.process.rssMbPeak, 0) : 'n/a',
  ];
}

/** Other processes that kept more than a quarter of a core busy during a run disturbed its figures. */
export function disturbed(run: RunResult): string | undefined {
  const other = run.machine?.otherCores;
  if (other === null || other === undefined || other <= 0.25) return undefined;
  return `other processes on the machine kept ${other.toFixed(2)} cores busy during this run: its figures are disturbed`;
}

export function renderMarkdown(results: LoadtestResults): string {
  const settings = results.settings as Record<string, unknown>;
  const env = results.environment as Record<string, unknown>;
  const baseline = results.variants.find((v) => v.role === 'baseline')?.name;
  const out: string[] = [
    `# Load test: ${results.variants.map((v) => v.name).join(' vs ')} (${settings.task})`,
    '',
    results.status === 'complete'
      ? `Status: **complete** — every model x level ran without errors.`
      : `Status: **INCOMPLETE** — ${results.problems.join('; ') || 'the load test is still running or was stopped'}. Runs marked \`errors\` or \`incomplete\` are shown but never averaged into ratios.`,
    '',
    `- started ${results.startedAt}, finished ${results.finishedAt}`,
    `- target ${results.target.url}${results.target.startedByLoadtest ? ` (server started by the load test, pid ${results.target.serverPid})` : ' (a running server, --url: no /proc figures)'}`,
    `- payloads: ${results.payloads.source}; ${results.payloads.count} request bodies, mean words ${Object.entries(
      results.payloads.meanWords,
    )
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
    `- per model and level: ${settings.warmupSeconds} s warm-up, then a timed run of at most ${settings.durationSeconds} s and ${settings.maxRequests} requests; request timeout ${settings.timeoutSeconds} s; models alternate their order level by level`,
    `- ${env.cpu}, ${env.cores} cores, Node ${env.node}, onnxruntime-node ${env.onnxruntimeNode}, autocannon ${env.autocannon}; the load generator shares the machine with the server`,
    '',
    `Columns: req/s = 2xx responses per second; latency in ms as autocannon measured it (client side); queue wait and inference are the server's histogram means over the run (inference per batch); CPU = server CPU seconds per wall second (cores busy); RSS = peak resident MB of the server during the run.`,
  ];
  for (const level of results.levels) {
    out.push('', `## ${levelLabel(level)}${level.kind === 'rate' ? ` (${level.connections} connections)` : ''}`, '');
    const rows = results.variants
      .map((variant) => findRun(results.runs, variant.name, level))
      .filter((run): run is RunResult => run !== undefined)
      .map((run) => runRow(run, run.variant === baseline ? ' (baseline)' : ''));
    if (!rows.length) {
      out.push('Not run: the load test stopped before this level.');
      continue;
    }
    out.push(
      markdownTable(
        [
          'model',
          'status',
          'req/s',
          'p50',
          'p90',
          'p99',
          'max',
          '2xx',
          'non-2xx',
          'errors',
          'queue wait ms',
          'inference ms',
          'batch size',
          'CPU',
          'RSS MB',
        ],
        rows,
      ),
    );
    for (const ratio of results.ratios.filter((r) => sameLevel(r.level, level))) {
      out.push(
        '',
        ratio.note
          ? `${ratio.variant} / ${ratio.baseline}: no ratios (${ratio.note})`
          : `**${ratio.variant} / ${ratio.baseline}: throughput ${x(ratio.throughputRatio)}, p50 ${x(ratio.p50Ratio)}, p99 ${x(ratio.p99Ratio)}**`,
      );
    }
    for (const run of results.runs.filter((r) => sameLevel(r.level, level) && r.problems.length)) {
      out.push('', `- ${run.variant}: ${run.problems.join('; ')}`);
    }
    for (const run of results.runs.filter((r) => sameLevel(r.level, level) && disturbed(r))) {
      out.push('', `- ${run.variant}: ${disturbed(run)}`);
    }
  }
  out.push(
    '',
    '## Latency vs throughput',
    '',
    `![latency vs throughput](${reportFiles.chart})`,
    '',
    'p50 solid, p99 dashed, one point per level (c = connections, r = fixed rate); runs with errors are not drawn.',
    '',
    `Every figure, the settings and the server's histograms are in \`${reportFiles.json}\`; the server's log (when the load test started it) in \`server.log\`.`,
    '',
  );
  return out.join('\n');
}

export function chartSeries(results: LoadtestResults): ChartSeries[] {
  return results.variants.map((variant) => ({
    name: variant.name,
    points: results.runs
      .filter((run) => run.variant === variant.name && run.status === 'ok')
      .map((run) => ({
        label: shortLevel(run.level),
        throughput: run.throughput,
        p50: run.latencyMs.p50,
        p99: run.latencyMs.p99,
      }))
      .sort((a, b) => a.throughput - b.throughput),
  }));
}

export function writeReport(results: LoadtestResults, outDir: string): void {
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, reportFiles.json), JSON.stringify(results, null, 2) + '\n');
  writeFileSync(join(outDir, reportFiles.markdown), renderMarkdown(results));
  const env = results.environment as Record<string, unknown>;
  writeFileSync(
    join(outDir, reportFiles.chart),
    latencyThroughputSvg(chartSeries(results), {
      title: `Latency vs throughput: ${results.variants.map((v) => v.name).join(' vs ')}`,
      subtitle: `${results.settings.task}, ${env.cpu}, ${env.cores} cores; ${results.status === 'complete' ? 'complete' : 'INCOMPLETE'}`,
    }),
  );
}

/** The few lines printed at the end: one row per level and model, ratios beside the compared models. */
export function terminalSummary(results: LoadtestResults): string {
  const header = ['level', 'model', 'status', 'req/s', 'p50 ms', 'p99 ms', 'tput ratio', 'p50 ratio', 'p99 ratio'];
  const rows: string[][] = [];
  for (const level of results.levels) {
    for (const variant of results.variants) {
      const run = findRun(results.runs, variant.name, level);
      if (!run) continue;
      const ratio = results.ratios.find((r) => r.variant === variant.name && sameLevel(r.level, level));
      rows.push([
        shortLevel(level),
        variant.name,
        run.status,
        num(run.throughput, 2),
        num(run.latencyMs.p50),
        num(run.latencyMs.p99),
        ratio ? x(ratio.throughputRatio) : variant.role === 'baseline' ? 'baseline' : '',
        ratio ? x(ratio.p50Ratio) : '',
        ratio ? x(ratio.p99Ratio) : '',
      ]);
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((cell, i) => cell.padEnd(widths[i])).join('  ');
  const noisy = results.runs.filter((run) => disturbed(run)).length;
  const note = noisy ? `\nnote: other processes kept the machine busy during ${noisy} run(s); see report.md` : '';
  return [line(header), ...rows.map(line)].join('\n') + note;
}
