/**
 * The load test: payloads → target (a server it starts, or --url) → for each load level, each model in turn
 * (order alternating level by level): warm-up, then a timed autocannon run measured from both sides → report.
 * Whatever happens, the figures gathered so far are written, and anything short of complete is marked so.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describeEnvironment } from './environment.js';
import { drive } from './driver.js';
import { ProcessWatch, runFigures, scrapeMetrics, serverFigures } from './measure.js';
import { loadPayloads, type PayloadSet } from './payloads.js';
import { computeRatios, terminalSummary, writeReport } from './report.js';
import { connectTarget, httpGet, startServer, type Target } from './target.js';
import {
  levelLabel,
  LoadtestError,
  type LoadLevel,
  type LoadtestOptions,
  type LoadtestResults,
  type RunResult,
  type VariantInfo,
} from './types.js';
import { planLocal, resolveVariants, type ServedModelInfo } from './variants.js';

/** Fixed-rate levels open one connection per request per second (at most 64), so the rate can be sustained. */
export function loadLevels(concurrency: number[], rates: number[]): LoadLevel[] {
  return [
    ...concurrency.map((value) => ({ kind: 'concurrency' as const, value, connections: value })),
    ...rates.map((value) => ({
      kind: 'rate' as const,
      value,
      connections: Math.min(64, Math.max(1, Math.ceil(value))),
    })),
  ];
}

async function getJson<T>(target: Target, path: string): Promise<T> {
  const response = await httpGet(target.baseUrl, path);
  if (response.status !== 200) throw new LoadtestError(`${target.baseUrl}${path} answered ${response.status}`);
  return (await response.json()) as T;
}

/**
 * autocannon cuts the connections of in-flight requests when a run ends; the server drops their queued rows but
 * finishes the batch already running. One more request to the same model, answered only after that batch (one
 * session runs one batch at a time, queues are oldest-first), tells when the model is idle again, so the next run
 * starts clean. The server's counters cannot tell: a request cut during its batch is counted as answered (200).
 */
async function settle(baseUrl: string, path: string, body: string, timeoutMs: number): Promise<void> {
  try {
    const response = await fetch(`${baseUrl}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      signal: AbortSignal.timeout(timeoutMs),
    });
    await response.arrayBuffer();
  } catch {
    // A server that is gone shows in the next run; nothing to wait for here.
  }
}

interface Context {
  options: LoadtestOptions;
  target: Target;
  payloads: PayloadSet;
  abort: Promise<string>;
}

async function measureRun(ctx: Context, variant: string, level: LoadLevel): Promise<RunResult> {
  const { options, target } = ctx;
  const base = {
    baseUrl: target.baseUrl,
    path: `/models/${encodeURIComponent(variant)}/${options.task}`,
    bodies: ctx.payloads.bodies,
    level,
    maxRequests: options.maxRequests,
    timeoutSeconds: options.timeoutSeconds,
    abort: ctx.abort,
  };
  const idle = () => settle(target.baseUrl, base.path, ctx.payloads.bodies[0], (options.timeoutSeconds + 5) * 1000);
  const warmup = { durationSeconds: 0, responses: 0, non2xx: 0, errors: 0 };
  if (options.warmupSeconds > 0) {
    const warm = await drive({ ...base, durationSeconds: options.warmupSeconds });
    const r = warm.result;
    Object.assign(warmup, {
      durationSeconds: r.duration,
      responses: r.requests.total,
      non2xx: r.non2xx,
      errors: r.errors,
    });
    await idle();
  }
  const before = await scrapeMetrics(target.baseUrl);
  const watch = new ProcessWatch(target.pid);
  const startedAt = new Date().toISOString();
  let lastLog = 0;
  const outcome = await drive({
    ...base,
    durationSeconds: options.durationSeconds,
    onTick: (seconds, responses) => {
      watch.tick();
      if (seconds - lastLog >= 5) {
        lastLog = seconds;
        options.log(`    ${Math.round(seconds)} s: ${responses} responses`);
      }
    },
  });
  const cpu = watch.finish();
  const after = await scrapeMetrics(target.baseUrl);
  const figures = runFigures(variant, level, outcome, startedAt);
  if (!outcome.stoppedBecause) await idle();
  return {
    ...figures,
    server: before && after ? serverFigures(before, after, variant) : null,
    process: cpu.process,
    machine: cpu.machine,
    warmup,
  };
}

/** SIGINT/SIGTERM stop the current run; the report is still written and the started server stopped. */
function interruption(): { promise: Promise<string>; dispose(): void } {
  let handler: (signal: NodeJS.Signals) => void = () => {};
  const promise = new Promise<string>((resolve) => (handler = (signal) => resolve(`interrupted (${signal})`)));
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
  return {
    promise,
    dispose: () => {
      process.removeListener('SIGINT', handler);
      process.removeListener('SIGTERM', handler);
    },
  };
}

function settingsOf(options: LoadtestOptions, levels: LoadLevel[]): Record<string, unknown> {
  const { log: _log, ...settings } = options;
  return {
    ...settings,
    levels,
    autocannon: { pipelining: 1, bailoutErrors: 200, ignoreCoordinatedOmission: false, method: 'POST' },
    rateNote:
      'autocannon limits a rate in one-second windows per connection: a fixed-rate level sends its requests in bursts at the start of each second',
  };
}

export async function runLoadtest(options: LoadtestOptions): Promise<LoadtestResults> {
  const log = options.log;
  const startedAt = new Date().toISOString();
  const payloads = loadPayloads(options.task, options.dataset, options.seed);
  log(`payloads: ${payloads.source}`);
  const plan = options.url ? undefined : planLocal(options.modelsDir, options.task, options.models);
  const levels = loadLevels(options.concurrency, options.rates);
  let target = options.url ? await connectTarget(options.url) : undefined;
  mkdirSync(options.outDir, { recursive: true });
  const results: LoadtestResults = {
    tool: 'sparse-bert-serve loadtest',
    status: 'incomplete',
    problems: [],
    startedAt,
    finishedAt: startedAt,
    settings: settingsOf(options, levels),
    environment: describeEnvironment(null),
    target: { url: options.url ?? '', startedByLoadtest: !options.url, serverPid: null, serverCommand: null },
    payloads: {
      source: payloads.source,
      count: payloads.bodies.length,
      seed: options.seed,
      meanWords: payloads.meanWords,
    },
    variants: [],
    levels,
    runs: [],
    ratios: [],
  };
  const interrupt = interruption();
  let fatal: string | undefined;
  let unexpected: unknown;
  try {
    target ??= await startServer({
      modelsDir: options.modelsDir,
      folders: plan!.folders,
      precisions: plan!.precisions,
      serveArgs: options.serveArgs,
      logFile: join(options.outDir, 'server.log'),
      log,
    });
    Object.assign(results.target, { url: target.baseUrl, serverPid: target.pid, serverCommand: target.command });
    const served = await getJson<ServedModelInfo[]>(target, '/models');
    const variants: VariantInfo[] = resolveVariants(
      served,
      options.task,
      plan?.models ?? options.models,
      options.baseline,
    );
    results.variants = variants;
    const version = await getJson<{ version?: string }>(target, '/v2').catch(() => ({ version: undefined }));
    results.environment = describeEnvironment(version.version ?? null);
    const currentTarget = target;
    const abort = Promise.race([
      currentTarget.exited.then(() => currentTarget.exitReason() ?? 'the server exited'),
      interrupt.promise,
    ]);
    const ctx: Context = { options, target, payloads, abort };
    const total = levels.length * variants.length;
    levels: for (const [index, level] of levels.entries()) {
      const order = index % 2 === 0 ? variants : [...variants].reverse();
      for (const variant of order) {
        log(
          `[${results.runs.length + 1}/${total}] ${levelLabel(level)}, ${variant.name}: ${options.warmupSeconds} s warm-up, then up to ${options.durationSeconds} s`,
        );
        const run = await measureRun(ctx, variant.name, level);
        results.runs.push(run);
        log(
          `    ${run.status}: ${run.throughput.toFixed(2)} req/s, p50 ${run.latencyMs.p50} ms, p99 ${run.latencyMs.p99} ms${run.problems.length ? ` (${run.problems.join('; ')})` : ''}`,
        );
        if (run.status === 'incomplete') {
          fatal = run.problems[0].replace(/^stopped early: /, '');
          break levels;
        }
        if (run.status === 'errors' && options.url) {
          // Without a process to watch, a server that no longer answers shows as errors: check it is still there.
          const alive = await httpGet(target.baseUrl, '/healthz', 5_000).then(
            () => true,
            () => false,
          );
          if (!alive) {
            fatal = `the server at ${target.baseUrl} stopped answering during ${levelLabel(level)}, ${variant.name}`;
            run.status = 'incomplete';
            run.problems.push(fatal);
            break levels;
          }
        }
        writeReport(results, options.outDir);
      }
    }
  } catch (error) {
    fatal = error instanceof LoadtestError ? error.message : `unexpected error: ${(error as Error).message}`;
    // A bug still gets its stack trace, after the figures so far are written.
    if (!(error instanceof LoadtestError)) unexpected = error;
  } finally {
    interrupt.dispose();
    await target?.stop();
  }
  try {
    return finish(results, options, fatal);
  } finally {
    if (unexpected) throw unexpected;
  }
}

function finish(results: LoadtestResults, options: LoadtestOptions, fatal: string | undefined): LoadtestResults {
  const names = results.variants.map((v) => v.name);
  results.ratios = computeRatios(
    results.runs,
    results.levels,
    names,
    results.variants.find((v) => v.role === 'baseline')?.name,
  );
  if (fatal) results.problems.push(fatal);
  for (const run of results.runs.filter((r) => r.status !== 'ok'))
    results.problems.push(`${run.variant} at ${levelLabel(run.level)}: ${run.status}`);
  const missing = results.levels.length * names.length - results.runs.length;
  if (missing > 0) results.problems.push(`${missing} of ${results.levels.length * names.length} runs missing`);
  if (!names.length) results.problems.push('no model was measured');
  results.status = results.problems.length ? 'incomplete' : 'complete';
  results.finishedAt = new Date().toISOString();
  writeReport(results, options.outDir);
  if (results.runs.length) options.log(`\n${terminalSummary(results)}`);
  options.log(`\nreport: ${join(options.outDir, 'report.md')} (${results.status})`);
  if (fatal) throw new LoadtestError(`${fatal} (figures so far, marked incomplete: ${options.outDir})`);
  if (results.status !== 'complete')
    throw new LoadtestError(`the load test is incomplete: ${results.problems.join('; ')} (report: ${options.outDir})`);
  return results;
}
