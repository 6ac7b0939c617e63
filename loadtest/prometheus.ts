/**
 * A small parser for the Prometheus text exposition format (what GET /metrics returns) and the arithmetic the load
 * test needs on it: counter and histogram deltas between two scrapes, filtered by labels.
 */
import type { HistogramDelta } from './types.js';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export class PrometheusParseError extends Error {
  constructor(line: number, problem: string) {
    super(`metrics line ${line}: ${problem}`);
    this.name = 'PrometheusParseError';
  }
}

const namePattern = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const labelNamePattern = /^[a-zA-Z_][a-zA-Z0-9_]*/;

/** Values as Prometheus reads them (Go's ParseFloat): case-insensitive NaN and [+-]Inf too — prom-client writes "Nan". */
function parseValue(text: string, line: number): number {
  const lower = text.toLowerCase();
  if (lower === 'nan') return NaN;
  if (/^\+?inf(inity)?$/.test(lower)) return Infinity;
  if (/^-inf(inity)?$/.test(lower)) return -Infinity;
  const value = Number(text);
  if (text === '' || Number.isNaN(value)) throw new PrometheusParseError(line, `"${text}" is not a number`);
  return value;
}

/** Parses every sample line; `# HELP`/`# TYPE`/comments and blank lines are skipped. Optional timestamps ignored. */
export function parsePrometheusText(text: string): Sample[] {
  const samples: Sample[] = [];
  text.split('\n').forEach((raw, index) => {
    const lineNo = index + 1;
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const nameMatch = namePattern.exec(line);
    if (!nameMatch) throw new PrometheusParseError(lineNo, `no metric name in "${line}"`);
    const name = nameMatch[0];
    let pos = name.length;
    const labels: Record<string, string> = {};
    if (line[pos] === '{') {
      pos++;
      for (;;) {
        while (line[pos] === ' ' || line[pos] === ',') pos++;
        if (line[pos] === '}') {
          pos++;
          break;
        }
        const labelMatch = labelNamePattern.exec(line.slice(pos));
        if (!labelMatch) throw new PrometheusParseError(lineNo, `bad label name at column ${pos + 1}`);
        pos += labelMatch[0].length;
        while (line[pos] === ' ') pos++;
        if (line[pos] !== '=' || line[pos + 1] !== '"')
          throw new PrometheusParseError(lineNo, `expected ="..." after label ${labelMatch[0]}`);
        pos += 2;
        let value = '';
        for (;;) {
          const ch = line[pos];
          if (ch === undefined) throw new PrometheusParseError(lineNo, `unterminated value of label ${labelMatch[0]}`);
          pos++;
          if (ch === '"') break;
          if (ch === '\\') {
            const next = line[pos++];
            value += next === 'n' ? '\n' : (next ?? '');
          } else value += ch;
        }
        labels[labelMatch[0]] = value;
      }
    }
    const rest = line.slice(pos).trim().split(/\s+/);
    if (rest.length < 1 || rest.length > 2 || rest[0] === '')
      throw new PrometheusParseError(lineNo, `expected "<value> [timestamp]" after ${name}`);
    samples.push({ name, labels, value: parseValue(rest[0], lineNo) });
  });
  return samples;
}

export type LabelFilter = Record<string, string>;

const matches = (sample: Sample, name: string, filter: LabelFilter) =>
  sample.name === name && Object.entries(filter).every(([key, value]) => sample.labels[key] === value);

/** Sum of every sample of `name` whose labels include `filter` (0 when there is none). */
export function sumOf(samples: Sample[], name: string, filter: LabelFilter = {}): number {
  let total = 0;
  for (const sample of samples) if (matches(sample, name, filter)) total += sample.value;
  return total;
}

/** Whether any sample of `name` exists (a metric that is absent is reported as such, not as 0). */
export function hasMetric(samples: Sample[], name: string): boolean {
  return samples.some((sample) => sample.name === name);
}

/** Counter increase between two scrapes, grouped by one label's value; zero groups are left out. */
export function counterDeltaBy(
  before: Sample[],
  after: Sample[],
  name: string,
  filter: LabelFilter,
  byLabel: string,
): Record<string, number> {
  const groups = new Set(after.filter((s) => matches(s, name, filter)).map((s) => s.labels[byLabel] ?? ''));
  const result: Record<string, number> = {};
  for (const group of [...groups].sort()) {
    const where = { ...filter, [byLabel]: group };
    const delta = sumOf(after, name, where) - sumOf(before, name, where);
    if (delta !== 0) result[group] = delta;
  }
  return result;
}

/** Buckets of one histogram (summed over label sets matching the filter), cumulative, sorted by upper bound. */
function buckets(samples: Sample[], base: string, filter: LabelFilter): Map<number, number> {
  const byBound = new Map<number, number>();
  for (const sample of samples) {
    if (!matches(sample, `${base}_bucket`, filter)) continue;
    const bound = parseValue(sample.labels.le ?? '', 0);
    byBound.set(bound, (byBound.get(bound) ?? 0) + sample.value);
  }
  return new Map([...byBound].sort((a, b) => a[0] - b[0]));
}

/**
 * Quantile from cumulative bucket counts as Prometheus' histogram_quantile computes it: linear interpolation inside
 * the bucket that holds the rank (lower bound 0 for the first bucket); a rank in the +Inf bucket gives the highest
 * finite bound.
 */
export function bucketQuantile(cumulative: Map<number, number>, q: number): number | null {
  const entries = [...cumulative];
  const total = entries.length ? entries[entries.length - 1][1] : 0;
  if (total <= 0) return null;
  const rank = q * total;
  let previousBound = 0;
  let previousCount = 0;
  for (const [bound, count] of entries) {
    if (count >= rank) {
      if (bound === Infinity) return previousBound;
      if (count === previousCount) return bound;
      return previousBound + ((bound - previousBound) * (rank - previousCount)) / (count - previousCount);
    }
    previousBound = bound;
    previousCount = count;
  }
  return previousBound;
}

/** What one histogram recorded between two scrapes. */
export function histogramDelta(before: Sample[], after: Sample[], base: string, filter: LabelFilter): HistogramDelta {
  const count = sumOf(after, `${base}_count`, filter) - sumOf(before, `${base}_count`, filter);
  const sum = sumOf(after, `${base}_sum`, filter) - sumOf(before, `${base}_sum`, filter);
  const start = buckets(before, base, filter);
  const delta = new Map([...buckets(after, base, filter)].map(([bound, n]) => [bound, n - (start.get(bound) ?? 0)]));
  return {
    count,
    sum,
    mean: count > 0 ? sum / count : null,
    p50: bucketQuantile(delta, 0.5),
    p99: bucketQuantile(delta, 0.99),
  };
}
