import type { ServedModel } from '../models/registry.js';
import { inputTooLong, REFUSED_TOKENS_FACTOR } from './errors.js';
import { aggregateEntities, type AggregationStrategy, type Entity } from './ner.js';
import { timed, type RunContext } from './run-context.js';
import { runJob, type TaskJob } from './task-job.js';

export interface NerOptions {
  aggregationStrategy: AggregationStrategy;
  ignoreLabels?: string[];
}

/** Token classification with entity aggregation and character offsets. Shared by server and evaluation. */
export async function recognizeEntities(
  model: ServedModel,
  text: string,
  options: NerOptions,
  context: RunContext = {},
): Promise<Entity[]> {
  return runJob(model, prepareEntities(model, text, options, context), context);
}

/** Tokenization and the length check of one text: one row. */
export function prepareEntities(
  model: ServedModel,
  text: string,
  options: NerOptions,
  context: RunContext = {},
): TaskJob<Entity[]> {
  const { tokenizer, manifest } = model;
  const tokens = timed(
    (seconds) => context.metrics?.tokenization.observe({ task: 'token-classification' }, seconds),
    () => {
      // Tokenized only up to a bounded multiple of what fits: the limit is checked before any more work is done.
      const limit = manifest.maxSequenceLength;
      const tokenized = tokenizer.tokenizeUpTo(text, limit * REFUSED_TOKENS_FACTOR);
      if (!tokenized.complete) throw inputTooLong('text', limit * REFUSED_TOKENS_FACTOR, limit, 'tokens or more');
      if (tokenized.ids.length + 2 > limit) throw inputTooLong('text', tokenized.ids.length + 2, limit);
      return tokenized;
    },
  );
  return {
    rows: [{ ids: [tokenizer.clsId, ...tokens.ids, tokenizer.sepId] }],
    finish: ([output]) =>
      timed(
        (seconds) => context.metrics?.postprocessing.observe({ task: 'token-classification' }, seconds),
        () => {
          const labelCount = manifest.labels.length;
          const predictions = tokens.ids.map((tokenId, i) => ({
            // +1: row position 0 is [CLS].
            logits: output.logits.subarray((i + 1) * labelCount, (i + 2) * labelCount),
            tokenId,
            // Like Hugging Face, an unknown token is shown as the text it stands for.
            token:
              tokenId === tokenizer.unkId
                ? text.slice(tokens.offsets[i][0], tokens.offsets[i][1])
                : (tokenizer.idToToken(tokenId) ?? ''),
            start: tokens.offsets[i][0],
            end: tokens.offsets[i][1],
            isSubword: i > 0 && tokens.wordIds[i] === tokens.wordIds[i - 1],
            wordIndex: tokens.wordIds[i],
          }));
          return aggregateEntities(
            text,
            predictions,
            manifest.labels,
            options.aggregationStrategy,
            options.ignoreLabels,
          );
        },
      ),
  };
}
