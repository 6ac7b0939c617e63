import { parseArgs } from 'node:util';
import { evaluate, type EvalOptions } from '../../eval/evaluate.js';
import { toMarkdown, writeResults } from '../../eval/report.js';
import type { EvalTask } from '../../eval/tasks.js';
import { parseServerConfig, type Precision } from '../config.js';
import { AGGREGATION_STRATEGIES, type AggregationStrategy } from '../tasks/ner.js';
import { UsageError, numberFlag } from './flags.js';

export const evalUsage = `sbs eval <model-dir>... --data <file> [--data <file>...] [options]

Accuracy of converted models, sparse int8 and dense fp32 side by side, through the server's own task code, batcher
and runtime. SQuAD v1.1 EM/F1 (official normalization), GLUE accuracy (+F1 for QQP/MRPC), CoNLL-2003 entity-level
P/R/F1 (seqeval default mode) with per-type F1; fidelity of each int8 model against the fp32 model of its folder
(identical predictions, mean/max |Δ logit| on the same rows).
  --data <file>              dataset file, repeatable (each file is its own evaluation: MNLI matched/mismatched):
                             SQuAD v1.1 .json, GLUE .tsv (header row) or Hugging Face .parquet, CoNLL-2003 text
  --task squad|glue|conll    (also qa|classification|ner) default: the models' manifest task
  --glue-task <name>         sst2|qqp|mrpc|mnli|qnli|rte|wnli when header and path do not tell
  --precisions int8,fp32     artifacts of each folder to evaluate (default int8,fp32)
  --limit <n>                the first n items (questions, examples, sentences) of each file
  --sample <n>               a seeded random subset of n items instead (kept in file order)
  --seed <n>                 seed for --sample (default 42)
  --out <dir>                write <task>.json, <task>.md and predictions/ (only when everything finished)
  --baseline <model>         compare every model with this one (default: the fp32 model of its own folder)
  --concurrency <n>          items in flight per model, so the batcher can batch (default 32)
  --threads <n>              threads per onnxruntime session / engine instance (default 2)
  --backend <b>              where int8 runs, as serve --backend; engine,onnxruntime evaluates both
                             (<folder>-int8 on the engine, <folder>-int8-ort on onnxruntime) against fp32
  --max-batch-size <n>       rows per batch (default 16)    --max-batch-tokens <n>  padded tokens per batch (default 4096)
  --max-seq-len <n>          QA window length (default 384, capped by the model)
  --doc-stride <n>           QA window overlap (default 128)
  --max-answer-len <n>       QA longest answer in tokens (default 30, as run_qa.py; the server's default is 15)
  --max-question-len <n>     QA question tokens kept (default 64)
  --aggregation <strategy>   NER entity aggregation: first|simple|average|max (default first)
  --quiet                    no progress on stderr`;

const taskNames: Record<string, EvalTask> = {
  squad: 'squad',
  qa: 'squad',
  'question-answering': 'squad',
  glue: 'glue',
  classification: 'glue',
  'text-classification': 'glue',
  conll: 'conll',
  ner: 'conll',
  'token-classification': 'conll',
};

/** Where the command prints: the tables (stdout) and progress (stderr). Tests pass their own streams. */
export interface EvalIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

export function parseEvalArgs(
  args: string[],
  env: NodeJS.ProcessEnv,
  io: EvalIo = { stdout: process.stdout, stderr: process.stderr },
): { options: EvalOptions; out?: string } {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      data: { type: 'string', multiple: true },
      task: { type: 'string' },
      'glue-task': { type: 'string' },
      precisions: { type: 'string' },
      limit: { type: 'string' },
      sample: { type: 'string' },
      seed: { type: 'string' },
      out: { type: 'string' },
      baseline: { type: 'string' },
      concurrency: { type: 'string' },
      threads: { type: 'string' },
      'max-batch-size': { type: 'string' },
      'max-batch-tokens': { type: 'string' },
      'max-seq-len': { type: 'string' },
      'doc-stride': { type: 'string' },
      'max-answer-len': { type: 'string' },
      'max-question-len': { type: 'string' },
      aggregation: { type: 'string' },
      quiet: { type: 'boolean' },
      backend: { type: 'string' },
    },
  });
  const usage = (message: string) => new UsageError(message, evalUsage);
  if (positionals.length === 0) throw usage('give at least one converted model folder');
  if (!values.data?.length) throw usage('--data <file> is required');
  const task = values.task === undefined ? undefined : taskNames[values.task];
  if (values.task !== undefined && task === undefined)
    throw usage(`--task must be squad, glue or conll, got "${values.task}"`);
  const precisions = (values.precisions ?? 'int8,fp32').split(',').map((p) => p.trim());
  if (!precisions.length || precisions.some((p) => p !== 'int8' && p !== 'fp32')) {
    throw usage(`--precisions must list int8 and/or fp32, got "${values.precisions}"`);
  }
  const aggregation = (values.aggregation ?? 'first') as AggregationStrategy;
  if (!AGGREGATION_STRATEGIES.includes(aggregation) || aggregation === 'none') {
    throw usage(`--aggregation must be first, simple, average or max, got "${values.aggregation}"`);
  }
  const int = (value: string | undefined, flag: string, min = 1) => {
    try {
      return numberFlag(value, flag, { min, integer: true });
    } catch (error) {
      throw usage((error as Error).message);
    }
  };
  const limit = int(values.limit, '--limit');
  const sample = int(values.sample, '--sample');
  if (limit !== undefined && sample !== undefined) throw usage('--limit and --sample exclude each other');
  // The server's defaults for runtime and batching; the queue is unbounded here because --concurrency bounds it.
  const server = parseServerConfig(values.backend ? ['--backend', values.backend] : [], env);
  const options: EvalOptions = {
    modelDirs: positionals,
    dataFiles: values.data,
    task,
    glueTask: values['glue-task']?.toLowerCase().replace(/[-_]/g, ''),
    precisions: [...new Set(precisions)] as Precision[],
    selection: { limit, sample, seed: int(values.seed, '--seed', 0) ?? 42 },
    concurrency: int(values.concurrency, '--concurrency') ?? 32,
    runtime: { ...server.runtime, threads: int(values.threads, '--threads') ?? server.runtime.threads },
    batching: {
      ...server.batching,
      maxBatchSize: int(values['max-batch-size'], '--max-batch-size') ?? server.batching.maxBatchSize,
      maxBatchTokens: int(values['max-batch-tokens'], '--max-batch-tokens') ?? server.batching.maxBatchTokens,
      maxQueueRows: Number.MAX_SAFE_INTEGER,
    },
    qa: {
      maxSeqLen: int(values['max-seq-len'], '--max-seq-len', 8) ?? 384,
      docStride: int(values['doc-stride'], '--doc-stride', 0) ?? 128,
      maxAnswerLen: int(values['max-answer-len'], '--max-answer-len') ?? 30,
      maxQuestionLen: int(values['max-question-len'], '--max-question-len') ?? 64,
    },
    aggregation,
    baseline: values.baseline,
    progress: values.quiet ? undefined : io.stderr,
    log: values.quiet ? undefined : (line) => io.stderr.write(`${line}\n`),
  };
  return { options, out: values.out };
}

/**
 * `sbs eval`: runs the evaluation, prints the Markdown tables on stdout and, with --out, writes the JSON report,
 * the tables and the predictions. A bad dataset or model raises EvalError (exit 1) before anything is written.
 */
export async function evalCommand(
  args: string[],
  env: NodeJS.ProcessEnv,
  io: EvalIo = { stdout: process.stdout, stderr: process.stderr },
): Promise<void> {
  const { options, out } = parseEvalArgs(args, env, io);
  const outcome = await evaluate(options);
  io.stdout.write(toMarkdown(outcome.report));
  if (out !== undefined) {
    const written = writeResults(out, outcome);
    options.log?.(`wrote ${written.slice(0, 2).join(', ')} and ${written.length - 2} predictions file(s)`);
  }
}
