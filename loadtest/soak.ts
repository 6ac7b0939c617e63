/**
 * A bounded soak: one model, a fixed number of connections for a fixed time (both capped), on loopback only.
 * Reports the errors other than deliberate 429s (connection errors, timeouts, any other non-2xx), p50/p99 latency,
 * and the server's RSS at the start, after one minute and at the end (with its peak), sampled from /proc when the
 * soak started the server itself. Exit code 0 when there was no such error, 1 otherwise, 2 for a usage mistake.
 *
 *   npm run soak -- --models-dir models-lt --model squad90-int8 --duration 120 --connections 16
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { drive } from './driver.js';
import { runFigures, scrapeMetrics, serverFigures } from './measure.js';
import { loadPayloads } from './payloads.js';
import { sampleProcess, type ProcSample } from './proc-stats.js';
import { connectTarget, loopbackProblem, startServer, type Target } from './target.js';
import { LoadtestError, type LoadLevel, type LoadtestTask } from './types.js';
import { planLocal } from './variants.js';

export const soakUsage = `npm run soak -- [options]

A bounded soak of one model through the server (autocannon, fixed connections, fixed duration, loopback only).
Target (one of):
  --models-dir <dir>      start "sbs serve" on these converted models (default ./models)
  --url <url>             a running server on this machine (127.0.0.0/8, localhost, [::1]); RSS is then not measured
What:
  --task qa|classify|ner  route and payloads (default qa)
  --model <name>          served model (default <first folder of the task>-int8)
  --dataset <path>        payloads: SQuAD JSON, GLUE .tsv or CoNLL-2003 (default: generated English-like text)
  --seed <n>              payload order (default 1)
  --api-key <key>         sent as "Authorization: Bearer <key>" (and given to a server the soak starts)
  --serve-args="<flags>"  extra flags for the started server
Load (both bounded):
  --duration <s>          10..3600 (default 120)
  --connections <n>       1..256 (default 16)
  --timeout <s>           per-request timeout, 1..120 (default 30)
Output:
  --out <dir>             soak.json and server.log (default reports/soak-<timestamp>)`;

class UsageError extends Error {}

const tasks: LoadtestTask[] = ['qa', 'classify', 'ner'];

function bounded(value: string | undefined, flag: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < min || parsed > max)
    throw new UsageError(`${flag} must be an integer from ${min} to ${max}, got "${value}"`);
  return parsed;
}

export interface SoakOptions {
  task: LoadtestTask;
  model?: string;
  url?: string;
  modelsDir: string;
  serveArgs: string[];
  dataset?: string;
  seed: number;
  apiKey?: string;
  durationSeconds: number;
  connections: number;
  timeoutSeconds: number;
  outDir: string;
  log: (line: string) => void;
}

export function parseSoakArgs(args: string[], env: NodeJS.ProcessEnv = process.env): SoakOptions {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      'models-dir': { type: 'string' },
      url: { type: 'string' },
      task: { type: 'string' },
      model: { type: 'string' },
      dataset: { type: 'string' },
      seed: { type: 'string' },
      'api-key': { type: 'string' },
      'serve-args': { type: 'string' },
      duration: { type: 'string' },
      connections: { type: 'string' },
      timeout: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(soakUsage);
    process.exit(0);
  }
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const task = (values.task ?? 'qa') as LoadtestTask;
  if (!tasks.includes(task)) throw new UsageError(`--task must be qa, classify or ner, got "${values.task}"`);
  if (values.url && values['models-dir'])
    throw new UsageError('give either --url (a running server) or --models-dir (start one), not both');
  if (values.url) {
    const problem = loopbackProblem(values.url);
    if (problem) throw new UsageError(problem);
  }
  if (values.url && values['serve-args']) throw new UsageError('--serve-args needs a server started by the soak');
  const stamp = new Date().toISOString().slice(0, 19).replace(/:/g, '-');
  return {
    task,
    model: values.model,
    url: values.url,
    modelsDir: values['models-dir'] ?? env.MODELS_DIR ?? 'models',
    serveArgs: values['serve-args']?.split(/\s+/).filter(Boolean) ?? [],
    dataset: values.dataset,
    seed: bounded(values.seed, '--seed', 0, 2 ** 31, 1),
    apiKey: values['api-key'],
    durationSeconds: bounded(values.duration, '--duration', 10, 3600, 120),
    connections: bounded(values.connections, '--connections', 1, 256, 16),
    timeoutSeconds: bounded(values.timeout, '--timeout', 1, 120, 30),
    outDir: values.out ?? `reports/soak-${stamp}`,
    log: (line) => console.log(line),
  };
}

export interface RssPoint {
  atSeconds: number;
  rssMb: number;
}

export interface SoakResult {
  settings: Omit<SoakOptions, 'log' | 'apiKey'> & { model: string; path: string; payloads: string };
  target: { url: string; pid: number | null };
  stoppedBecause?: string;
  durationSeconds: number;
  responses: number;
  ok2xx: number;
  throughput: number;
  statusCodes: Record<string, number>;
  /** 429 answers: the queue said "retry later", as designed. */
  deliberate429: number;
  /** Connection errors and timeouts (autocannon counts timeouts among errors). */
  requestErrors: number;
  timeouts: number;
  /** Non-2xx answers other than 429. */
  otherNon2xx: number;
  /** requestErrors + otherNon2xx: what must be 0. */
  unexpectedErrors: number;
  latencyMs: { mean: number; p50: number; p90: number; p99: number; max: number };
  rss: { startMb: number | null; after1MinMb: number | null; endMb: number | null; peakMb: number | null };
  /** RSS every 10 s of the run. */
  rssTimeline: RssPoint[];
  /** From the server's /metrics, between a scrape before and one after: answers by status and rejections by reason. */
  server: { requestsByStatus: Record<string, number>; rejections: Record<string, number> } | null;
}

const mb = (sample: ProcSample | undefined) => (sample ? Math.round(sample.rssMb * 10) / 10 : null);

export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const { log } = options;
  const payloads = loadPayloads(options.task, options.dataset, options.seed);
  const plan = options.url
    ? undefined
    : planLocal(options.modelsDir, options.task, options.model ? [options.model] : undefined);
  // planLocal's default is <folder>-fp32 and <folder>-int8: a soak runs one model, the sparse one.
  const model = options.model ?? plan!.models.find((name) => name.endsWith('-int8')) ?? plan!.models[0];
  mkdirSync(options.outDir, { recursive: true });
  let target: Target | undefined;
  let interrupted: (reason: string) => void = () => {};
  const interruption = new Promise<string>((resolve) => (interrupted = resolve));
  const onSignal = (signal: NodeJS.Signals) => interrupted(`interrupted (${signal})`);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    target = options.url
      ? await connectTarget(options.url)
      : await startServer({
          modelsDir: options.modelsDir,
          folders: plan!.folders,
          precisions: [model.endsWith('-fp32') ? 'fp32' : 'int8'],
          serveArgs: [...(options.apiKey ? ['--api-key', options.apiKey] : []), ...options.serveArgs],
          logFile: join(options.outDir, 'server.log'),
          log,
        });
    const path = `/models/${encodeURIComponent(model)}/${options.task}`;
    const pid = target.pid;
    const sample = () => (pid === null ? undefined : sampleProcess(pid));
    const level: LoadLevel = { kind: 'concurrency', value: options.connections, connections: options.connections };
    const before = await scrapeMetrics(target.baseUrl);
    const start = sample();
    let after1Min: ProcSample | undefined;
    const timeline: RssPoint[] = [];
    log(
      `soak: ${model} at ${target.baseUrl}${path}, ${options.connections} connections for ${options.durationSeconds} s; ` +
        `payloads ${payloads.source}; server RSS at start ${mb(start) ?? 'n/a'} MB`,
    );
    const currentTarget = target;
    const outcome = await drive({
      baseUrl: target.baseUrl,
      path,
      bodies: payloads.bodies,
      level,
      durationSeconds: options.durationSeconds,
      // The duration is the bound; the request budget only guards against a runaway.
      maxRequests: options.durationSeconds * 100_000,
      timeoutSeconds: options.timeoutSeconds,
      headers: options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : undefined,
      abort: Promise.race([
        currentTarget.exited.then(() => currentTarget.exitReason() ?? 'the server exited'),
        interruption,
      ]),
      onTick: (seconds, responses) => {
        const now = sample();
        if (!after1Min && seconds >= 60) after1Min = now;
        if (timeline.length === 0 || seconds - timeline[timeline.length - 1].atSeconds >= 10) {
          const rss = mb(now);
          if (rss !== null) timeline.push({ atSeconds: Math.round(seconds), rssMb: rss });
          log(`  ${Math.round(seconds)} s: ${responses} responses${rss !== null ? `, server RSS ${rss} MB` : ''}`);
        }
      },
    });
    const end = sample();
    const after = await scrapeMetrics(target.baseUrl);
    const figures = runFigures(model, level, outcome, new Date().toISOString());
    const deliberate429 = figures.statusCodes['429'] ?? 0;
    const otherNon2xx = figures.non2xx - deliberate429;
    const server = before && after ? serverFigures(before, after, model) : null;
    const result: SoakResult = {
      settings: {
        task: options.task,
        model,
        path,
        url: options.url,
        modelsDir: options.modelsDir,
        serveArgs: options.serveArgs,
        dataset: options.dataset,
        seed: options.seed,
        durationSeconds: options.durationSeconds,
        connections: options.connections,
        timeoutSeconds: options.timeoutSeconds,
        outDir: options.outDir,
        payloads: payloads.source,
      },
      target: { url: target.baseUrl, pid },
      stoppedBecause: outcome.stoppedBecause,
      durationSeconds: figures.durationSeconds,
      responses: figures.responses,
      ok2xx: figures.ok2xx,
      throughput: figures.throughput,
      statusCodes: figures.statusCodes,
      deliberate429,
      requestErrors: figures.errors,
      timeouts: figures.timeouts,
      otherNon2xx,
      unexpectedErrors: figures.errors + otherNon2xx,
      latencyMs: figures.latencyMs,
      rss: {
        startMb: mb(start),
        after1MinMb: mb(after1Min),
        endMb: mb(end),
        peakMb: end ? Math.round(end.peakRssMb * 10) / 10 : null,
      },
      rssTimeline: timeline,
      server: server ? { requestsByStatus: server.requestsByStatus, rejections: server.rejections } : null,
    };
    writeFileSync(join(options.outDir, 'soak.json'), `${JSON.stringify(result, null, 2)}\n`);
    log(summary(result));
    return result;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    await target?.stop();
  }
}

export function summary(r: SoakResult): string {
  const rss = (value: number | null) => (value === null ? 'n/a' : `${value} MB`);
  return [
    `soak of ${r.settings.model} (${r.settings.connections} connections, ${r.durationSeconds.toFixed(1)} s${r.stoppedBecause ? `, STOPPED EARLY: ${r.stoppedBecause}` : ''}):`,
    `  responses ${r.responses}, 2xx ${r.ok2xx} (${r.throughput} req/s), status codes ${JSON.stringify(r.statusCodes)}`,
    `  errors other than deliberate 429s: ${r.unexpectedErrors} (request errors ${r.requestErrors}, of which timeouts ${r.timeouts}; other non-2xx ${r.otherNon2xx}); 429s: ${r.deliberate429}`,
    `  latency p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms (mean ${r.latencyMs.mean}, max ${r.latencyMs.max})`,
    `  server RSS: start ${rss(r.rss.startMb)}, after 1 min ${rss(r.rss.after1MinMb)}, end ${rss(r.rss.endMb)}, peak ${rss(r.rss.peakMb)}`,
    `  report: ${join(r.settings.outDir, 'soak.json')}`,
  ].join('\n');
}

async function main(): Promise<void> {
  let options: SoakOptions;
  try {
    options = parseSoakArgs(process.argv.slice(2));
  } catch (error) {
    console.error(`error: ${(error as Error).message}\n\n${soakUsage}`);
    process.exit(2);
  }
  try {
    const result = await runSoak(options);
    process.exit(result.unexpectedErrors === 0 && !result.stoppedBecause ? 0 : 1);
  } catch (error) {
    if (error instanceof LoadtestError) {
      console.error(`error: ${error.message}`);
      process.exit(1);
    }
    throw error;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) await main();
