import { parseArgs } from 'node:util';
import { runLoadtest } from '../../loadtest/run-loadtest.js';
import { loopbackProblem } from '../../loadtest/target.js';
import type { LoadtestTask } from '../../loadtest/types.js';
import { UsageError, listFlag, numberFlag } from './flags.js';

export { LoadtestError } from '../../loadtest/types.js';

export const loadtestUsage = `sbs loadtest [options]     (npm run loadtest)

Compares the sparse int8 model with its dense fp32 baseline under load (autocannon): for each load level, each
model gets a warm-up and a timed run; models alternate level by level. Writes results.json, report.md (a table per
level with sparse/dense ratios) and latency-throughput.svg to --out, and prints a summary.
Target (one of):
  --models-dir <dir>      [MODELS_DIR] start "sbs serve" on these converted models (default ./models)
  --url <url>             a running server on this machine (127.0.0.0/8, localhost, [::1] only)
What to compare:
  --task qa|classify|ner  route and payloads (default qa)
  --models a,b            served model names (default: <folder>-fp32 and <folder>-int8 of the first folder of the task;
                          <folder>-int8-ort is onnxruntime int8 beside the engine: --serve-args="--backend engine,onnxruntime")
  --baseline <name>       ratios are computed against it (default: the fp32 model)
  --dataset <path>        payloads: SQuAD JSON (qa), GLUE .tsv (classify), CoNLL-2003 (ner); default: generated
                          English-like text of SQuAD-like lengths (contexts 120-150 words, questions ~10 words)
  --seed <n>              order of the payloads (default 1)
Load (every run is bounded by both its duration and its request count):
  --concurrency 1,4,16    fixed numbers of connections (default 1,4,16)
  --rates 5,10            also fixed arrival rates, requests per second (default none)
  --duration <s>          timed run per model and level (default 20)
  --warmup <s>            warm-up before each timed run (default 5)
  --max-requests <n>      request budget of a timed run (default 10000)
  --timeout <s>           per-request timeout (default 30)
  --quick                 a few seconds per model: concurrency 1,4, duration 3, warm-up 1 (flags still override)
  --serve-args="<flags>"  extra flags for the started server, e.g. --serve-args="--threads 2 --max-batch-size 8"
Output:
  --out <dir>             report folder (default reports/loadtest-<timestamp>)
Exit codes: 0 complete; 1 bad input, unreachable or failed server, or a run with errors (the report is still
written, marked incomplete); 2 usage mistake.`;

const tasks: LoadtestTask[] = ['qa', 'classify', 'ner'];

export async function loadtestCommand(args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      'models-dir': { type: 'string' },
      url: { type: 'string' },
      task: { type: 'string' },
      models: { type: 'string' },
      baseline: { type: 'string' },
      dataset: { type: 'string' },
      seed: { type: 'string' },
      concurrency: { type: 'string' },
      rates: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      'max-requests': { type: 'string' },
      timeout: { type: 'string' },
      quick: { type: 'boolean' },
      'serve-args': { type: 'string' },
      out: { type: 'string' },
    },
  });
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`, loadtestUsage);
  const task = (values.task ?? 'qa') as LoadtestTask;
  if (!tasks.includes(task)) throw new UsageError(`--task must be qa, classify or ner, got "${values.task}"`, '');
  if (values.url && values['models-dir'])
    throw new UsageError('give either --url (a running server) or --models-dir (start one), not both', '');
  if (values.url) {
    const problem = loopbackProblem(values.url);
    if (problem) throw new UsageError(problem, '');
  }
  if (values.url && values['serve-args']) throw new UsageError('--serve-args needs a server started by loadtest', '');
  const quick = values.quick ?? false;
  const models = values.models
    ?.split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  if (models && !models.length) throw new UsageError('--models needs at least one model name', '');
  const stamp = new Date().toISOString().slice(0, 19).replace(/:/g, '-');
  await runLoadtest({
    task,
    models,
    baseline: values.baseline,
    url: values.url,
    modelsDir: values['models-dir'] ?? env.MODELS_DIR ?? 'models',
    serveArgs: values['serve-args']?.split(/\s+/).filter(Boolean) ?? [],
    dataset: values.dataset,
    seed: numberFlag(values.seed, '--seed', { min: 0, integer: true }) ?? 1,
    concurrency: listFlag(values.concurrency, '--concurrency', quick ? [1, 4] : [1, 4, 16]),
    rates: listFlag(values.rates, '--rates', []),
    durationSeconds: numberFlag(values.duration, '--duration', { min: 1, integer: true }) ?? (quick ? 3 : 20),
    warmupSeconds: numberFlag(values.warmup, '--warmup', { min: 0, integer: true }) ?? (quick ? 1 : 5),
    maxRequests: numberFlag(values['max-requests'], '--max-requests', { min: 1, integer: true }) ?? 10_000,
    timeoutSeconds: numberFlag(values.timeout, '--timeout', { min: 1, integer: true }) ?? 30,
    outDir: values.out ?? `reports/loadtest-${stamp}`,
    quick,
    log: (line) => console.log(line),
  });
}
