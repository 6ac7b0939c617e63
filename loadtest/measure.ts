/**
 * What one run measured: the client side (autocannon's result), the server's Prometheus histograms and counters as
 * deltas between a scrape before and one after the run for one model, the server's CPU time and memory from /proc
 * (when the load test started it), and how busy the whole machine was.
 */
import { machineBusySeconds, sampleProcess, type ProcSample } from './proc-stats.js';
import { counterDeltaBy, hasMetric, histogramDelta, parsePrometheusText, sumOf, type Sample } from './prometheus.js';
import type { DriveOutcome } from './driver.js';
import { httpGet } from './target.js';
import {
  LoadtestError,
  type LoadLevel,
  type MachineFigures,
  type ProcessFigures,
  type RunResult,
  type ServerFigures,
} from './types.js';

/** Parsed /metrics, or undefined when the server has none (not this server, or it is gone). */
export async function scrapeMetrics(baseUrl: string): Promise<Sample[] | undefined> {
  let text: string;
  try {
    const response = await httpGet(baseUrl, '/metrics', 10_000);
    if (response.status !== 200) return undefined;
    text = await response.text();
  } catch {
    return undefined;
  }
  try {
    return parsePrometheusText(text);
  } catch (error) {
    throw new LoadtestError(`${baseUrl}/metrics cannot be read: ${(error as Error).message}`);
  }
}

/** The server's metric prefix (src/metrics.ts), spelled out so the load generator does not load prom-client. */
const p = 'sbs_';

export function serverFigures(before: Sample[], after: Sample[], model: string): ServerFigures {
  const filter = { model };
  const cpu = `${p}process_cpu_seconds_total`;
  return {
    queueWait: histogramDelta(before, after, `${p}queue_wait_seconds`, filter),
    inference: histogramDelta(before, after, `${p}inference_duration_seconds`, filter),
    batchSize: histogramDelta(before, after, `${p}batch_size`, filter),
    batchPaddedTokens: histogramDelta(before, after, `${p}batch_padded_tokens`, filter),
    requestDuration: histogramDelta(before, after, `${p}http_request_duration_seconds`, filter),
    requestsByStatus: counterDeltaBy(before, after, `${p}http_requests_total`, filter, 'status'),
    rejections: counterDeltaBy(before, after, `${p}rejections_total`, filter, 'reason'),
    droppedRows: counterDeltaBy(before, after, `${p}dropped_rows_total`, filter, 'reason'),
    processCpuSeconds: hasMetric(after, cpu) ? sumOf(after, cpu) - sumOf(before, cpu) : null,
  };
}

/**
 * Samples the server process (when its pid is known) about once a second during a run: CPU time at both ends, RSS
 * at the end and peak; and the whole machine's busy time, to show how much other processes took.
 */
export class ProcessWatch {
  private readonly first: ProcSample | undefined;
  private readonly machineStart = machineBusySeconds();
  private readonly selfStart = process.cpuUsage();
  private readonly started = performance.now();
  private peakRss = 0;

  constructor(private readonly pid: number | null) {
    this.first = pid === null ? undefined : sampleProcess(pid);
    this.peakRss = this.first?.rssMb ?? 0;
  }

  tick(): void {
    const sample = this.pid === null ? undefined : sampleProcess(this.pid);
    if (sample) this.peakRss = Math.max(this.peakRss, sample.rssMb);
  }

  finish(): { process: ProcessFigures | null; machine: MachineFigures | null } {
    const last = this.pid === null ? undefined : sampleProcess(this.pid);
    const wall = (performance.now() - this.started) / 1000;
    const busy = machineBusySeconds();
    const self = process.cpuUsage(this.selfStart);
    const selfSeconds = (self.user + self.system) / 1e6;
    const serverSeconds = this.first && last ? last.cpuSeconds - this.first.cpuSeconds : undefined;
    const machine =
      busy === undefined || this.machineStart === undefined || wall <= 0
        ? null
        : {
            busyCores: round((busy - this.machineStart) / wall, 2),
            loadGeneratorCores: round(selfSeconds / wall, 2),
            otherCores:
              serverSeconds === undefined
                ? null
                : round(Math.max(0, busy - this.machineStart - selfSeconds - serverSeconds) / wall, 2),
          };
    if (!this.first || !last || serverSeconds === undefined) return { process: null, machine };
    return {
      process: {
        cpuSeconds: round(serverSeconds, 2),
        cpuCores: round(wall > 0 ? serverSeconds / wall : 0, 2),
        rssMbEnd: round(last.rssMb, 1),
        rssMbPeak: round(Math.max(this.peakRss, last.rssMb), 1),
      },
      machine,
    };
  }
}

export const round = (value: number, digits: number) => {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
};

/** The client side of a run, from autocannon's result: status, latency, throughput, what went wrong. */
export function runFigures(
  variant: string,
  level: LoadLevel,
  outcome: DriveOutcome,
  startedAt: string,
): Omit<RunResult, 'server' | 'process' | 'machine' | 'warmup'> {
  const r = outcome.result;
  const statusCodes: Record<string, number> = {};
  for (const [code, stats] of Object.entries(r.statusCodeStats ?? {})) statusCodes[code] = stats.count ?? 0;
  const problems: string[] = [];
  if (outcome.stoppedBecause) problems.push(`stopped early: ${outcome.stoppedBecause}`);
  if (r.non2xx) {
    const codes = Object.entries(statusCodes).filter(([code]) => !code.startsWith('2'));
    problems.push(`${r.non2xx} non-2xx responses (${codes.map(([code, n]) => `${code}: ${n}`).join(', ')})`);
  }
  if (r.errors) problems.push(`${r.errors} request errors${r.timeouts ? ` (${r.timeouts} timeouts)` : ''}`);
  if (!r['2xx']) problems.push('no successful response');
  return {
    variant,
    level,
    status: outcome.stoppedBecause ? 'incomplete' : problems.length ? 'errors' : 'ok',
    problems,
    startedAt,
    durationSeconds: r.duration,
    requestsSent: r.requests.sent,
    responses: r['1xx'] + r['2xx'] + r['3xx'] + r['4xx'] + r['5xx'],
    ok2xx: r['2xx'],
    non2xx: r.non2xx,
    statusCodes,
    errors: r.errors,
    timeouts: r.timeouts,
    throughput: r.duration > 0 ? round(r['2xx'] / r.duration, 3) : 0,
    latencyMs: {
      mean: round(r.latency.mean, 2),
      p50: r.latency.p50,
      p90: r.latency.p90,
      p99: r.latency.p99,
      max: r.latency.max,
    },
  };
}
