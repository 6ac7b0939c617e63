import type { ServedModel } from '../models/registry.js';
import { inputTooLong, REFUSED_TOKENS_FACTOR } from './errors.js';
import { timed, type RunContext } from './run-context.js';
import { runJob, type TaskJob } from './task-job.js';

export interface ClassifyInput {
  text: string;
  textPair?: string;
}

export interface LabelScore {
  label: string;
  score: number;
}

/** Softmax over the labels, or a sigmoid for single-logit heads, as the Hugging Face pipeline does. */
export function labelScores(logits: ArrayLike<number>, labels: string[]): LabelScore[] {
  if (logits.length === 1) return [{ label: labels[0] ?? 'LABEL_0', score: 1 / (1 + Math.exp(-logits[0])) }];
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  let sum = 0;
  const exp = Array.from(
    { length: logits.length },
    (_, i) => ((sum += Math.exp(logits[i] - max)), Math.exp(logits[i] - max)),
  );
  return exp
    .map((value, i) => ({ label: labels[i] ?? `LABEL_${i}`, score: value / sum }))
    .sort((a, b) => b.score - a.score);
}

/** Single sentences and pairs (GLUE style: [CLS] a [SEP] b [SEP], token types 0/1). Shared by server and evaluation. */
export async function classify(
  model: ServedModel,
  input: ClassifyInput,
  topK: number,
  context: RunContext = {},
): Promise<LabelScore[]> {
  return runJob(model, prepareClassify(model, input, topK, context), context);
}

/** Tokenization and the length check of one text (or pair): one row. */
export function prepareClassify(
  model: ServedModel,
  input: ClassifyInput,
  topK: number,
  context: RunContext = {},
): TaskJob<LabelScore[]> {
  const { tokenizer, manifest } = model;
  const row = timed(
    (seconds) => context.metrics?.tokenization.observe({ task: 'text-classification' }, seconds),
    () => {
      // Tokenized only up to a bounded multiple of what fits: the limit is checked before any more work is done.
      const limit = manifest.maxSequenceLength;
      const bound = limit * REFUSED_TOKENS_FACTOR;
      const firstRun = tokenizer.tokenizeUpTo(input.text, bound);
      const first = firstRun.ids;
      const secondRun =
        input.textPair !== undefined && firstRun.complete
          ? tokenizer.tokenizeUpTo(input.textPair, Math.max(0, bound - first.length))
          : undefined;
      const second = secondRun?.ids;
      const length = first.length + 2 + (second ? second.length + 1 : 0);
      const complete = firstRun.complete && (secondRun?.complete ?? true);
      if (length > limit || !complete) {
        const field = input.textPair !== undefined ? 'text + text_pair' : 'text';
        throw complete ? inputTooLong(field, length, limit) : inputTooLong(field, bound, limit, 'tokens or more');
      }
      const ids = [tokenizer.clsId, ...first, tokenizer.sepId, ...(second ? [...second, tokenizer.sepId] : [])];
      const typeIds = ids.map((_, i) => (i < first.length + 2 ? 0 : 1));
      return { ids, typeIds };
    },
  );
  return {
    rows: [row],
    finish: ([output]) =>
      timed(
        (seconds) => context.metrics?.postprocessing.observe({ task: 'text-classification' }, seconds),
        () => labelScores(output.logits, manifest.labels).slice(0, topK),
      ),
  };
}
