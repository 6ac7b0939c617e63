import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { EvalOutcome, EvalReport, ModelResult } from './evaluate.js';

const fixed = (value: number, digits = 2) => value.toFixed(digits);
const signed = (value: number, digits = 2) => `${value >= 0 ? '+' : ''}${value.toFixed(digits)}`;
const small = (value: number) => (value === 0 ? '0' : value < 0.001 ? value.toExponential(2) : value.toPrecision(3));

const standardFidelityKeys = new Set([
  'reference',
  'items',
  'identicalItems',
  'identicalShare',
  'meanAbsLogitDelta',
  'maxAbsLogitDelta',
  'meanAbsReferenceLogit',
  'logitsCompared',
]);

const extraLabels: Record<string, string> = { entityAgreementF1: 'entity agreement F1 vs fp32' };

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** The Markdown tables: per dataset, every model side by side with its differences and fidelity. */
export function toMarkdown(report: EvalReport): string {
  const sections: string[] = [];
  for (const dataset of report.datasets) {
    const results = report.results.filter((r) => r.dataset === dataset.name);
    const modelInfo = new Map(report.models.map((m) => [m.name, m]));
    const baselines = [...new Set(results.map((r) => r.baseline).filter((b): b is string => b !== undefined))];
    const versus = baselines.length === 1 ? ` vs ${baselines[0]}` : '';
    const extras = [
      ...new Set(results.flatMap((r) => Object.keys(r.fidelity ?? {}).filter((k) => !standardFidelityKeys.has(k)))),
    ];
    const header = [
      'model',
      'precision',
      'encoder sparsity',
      ...dataset.metrics.map((m) => m.label),
      ...dataset.metrics.map((m) => `Δ ${m.label}${versus}`),
      'identical to fp32',
      ...extras.map((key) => extraLabels[key] ?? key),
      'mean abs Δ logit',
      'max abs Δ logit',
      'mean abs logit (fp32)',
      `${dataset.unit}/s`,
      'rows/batch',
    ];
    const rows = results.map((r: ModelResult) => {
      const info = modelInfo.get(r.model);
      const diff = (key: string) => {
        const d = r.difference?.[key];
        if (!d) return r.baseline === undefined && baselines.includes(r.model) ? 'baseline' : '—';
        return `${signed(d.absolute)} (${d.relative === null ? 'n/a' : `${signed(d.relative, 1)}%`})`;
      };
      const f = r.fidelity;
      return [
        r.model,
        r.precision,
        info ? `${fixed(100 * info.encoderSparsity, 1)}%` : '',
        ...dataset.metrics.map((m) => fixed(r.metrics[m.key])),
        ...dataset.metrics.map((m) => diff(m.key)),
        f ? `${fixed(f.identicalShare, 1)}% (${f.identicalItems}/${f.items})` : '—',
        ...extras.map((key) => (f && typeof f[key] === 'number' ? fixed(f[key] as number) : '—')),
        f ? small(f.meanAbsLogitDelta) : '—',
        f ? small(f.maxAbsLogitDelta) : '—',
        f ? small(f.meanAbsReferenceLogit) : '—',
        fixed(r.itemsPerSecond, 1),
        fixed(r.meanBatchRows, 1),
      ];
    });
    const parts = [
      `### ${dataset.name} — ${basename(dataset.file)}, ${dataset.selection} ${dataset.unit}`,
      '',
      table(header, rows),
    ];
    const types = [...new Set(results.flatMap((r) => Object.keys(r.perType ?? {})))].sort();
    if (types.length) {
      parts.push(
        '',
        `Per entity type F1 (support: ${types.map((t) => `${t} ${results[0].perType?.[t]?.support ?? 0}`).join(', ')}):`,
        '',
        table(
          ['model', ...types],
          results.map((r) => [r.model, ...types.map((t) => (r.perType?.[t] ? fixed(r.perType[t].f1) : '—'))]),
        ),
      );
    }
    sections.push(parts.join('\n'));
  }
  const settings = report.settings as { selection?: { seed?: number } };
  return (
    `## ${report.task === 'squad' ? 'SQuAD v1.1' : report.task === 'glue' ? 'GLUE' : 'CoNLL-2003'} evaluation\n\n` +
    sections.join('\n\n') +
    `\n\nMetrics in percent. Δ: absolute (relative) difference against the baseline (default: the fp32 model of the ` +
    `same folder). "identical to fp32" and the logit deltas compare each quantized model with the dense model of its ` +
    `folder on the same token rows. sparse-bert-serve ${report.version}, ${report.createdAt}` +
    (settings.selection?.seed !== undefined ? `, seed ${settings.selection.seed}` : '') +
    '.\n'
  );
}

/**
 * Writes `<task>.json`, `<task>.md` and the predictions files into `dir`. Everything goes to a staging folder first
 * and is moved in at the end, so a failure never leaves a result that looks complete.
 */
export function writeResults(dir: string, outcome: EvalOutcome): string[] {
  mkdirSync(dir, { recursive: true });
  const staging = join(dir, `.eval-${process.pid}-${Date.now()}`);
  mkdirSync(staging);
  try {
    const files: [string, string][] = [
      [`${outcome.report.task}.json`, JSON.stringify(outcome.report, null, 2) + '\n'],
      [`${outcome.report.task}.md`, toMarkdown(outcome.report)],
      ...outcome.predictions.map((p): [string, string] => [join('predictions', p.file), p.content]),
    ];
    mkdirSync(join(staging, 'predictions'));
    for (const [name, content] of files) writeFileSync(join(staging, name), content);
    mkdirSync(join(dir, 'predictions'), { recursive: true });
    // Predictions first, the summary last: the summary's presence means the set is whole.
    for (const [name] of [...files.slice(2), ...files.slice(0, 2).reverse()])
      renameSync(join(staging, name), join(dir, name));
    return files.map(([name]) => join(dir, name));
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}
