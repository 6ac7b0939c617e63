import type { ServedModel } from '../models/registry.js';
import { inputTooLong } from './errors.js';
import { bestAnswers, buildQaWindows, type QaAnswer } from './qa.js';
import { timed, type RunContext } from './run-context.js';

export interface QaInput {
  question: string;
  context: string;
}

export interface QaOptions {
  topK: number;
  maxAnswerLen: number;
  docStride: number;
  /** Capped by the model's own maximum. */
  maxSeqLen?: number;
  maxQuestionLen: number;
  handleImpossibleAnswer: boolean;
  /** Windows one context may produce before it is refused (422). */
  maxWindows: number;
}

export const defaultQaOptions: Omit<QaOptions, 'maxWindows'> = {
  topK: 1,
  maxAnswerLen: 15,
  docStride: 128,
  maxQuestionLen: 64,
  handleImpossibleAnswer: false,
};

/**
 * Question answering over contexts of any length: overlapping windows (doc stride), every window of the request
 * queued together so they can share a batch, best span over all windows. Shared by the server and evaluation.
 */
export async function answerQuestion(
  model: ServedModel,
  input: QaInput,
  options: QaOptions,
  context: RunContext = {},
): Promise<QaAnswer[]> {
  const { tokenizer, manifest } = model;
  // Like the Hugging Face pipeline: windows of min(model maximum, 384) tokens unless the request asks otherwise.
  const maxSeqLen = Math.min(options.maxSeqLen ?? 384, manifest.maxSequenceLength);
  const prepared = timed(
    (seconds) => context.metrics?.tokenization.observe({ task: 'question-answering' }, seconds),
    () => {
      const questionTokens = tokenizer.tokenize(input.question);
      const contextTokens = tokenizer.tokenize(input.context);
      const maxQuestionLen = Math.min(options.maxQuestionLen, maxSeqLen - 4);
      const docStride = Math.min(
        options.docStride,
        Math.max(0, maxSeqLen - 3 - Math.min(questionTokens.ids.length, maxQuestionLen) - 1),
      );
      const windows = buildQaWindows(
        questionTokens,
        contextTokens,
        { cls: tokenizer.clsId, sep: tokenizer.sepId, pad: tokenizer.padId },
        { maxSeqLen, docStride, maxQuestionLen },
      );
      return { contextTokens, windows };
    },
  );
  if (prepared.windows.length > options.maxWindows) {
    throw inputTooLong('context', prepared.windows.length, options.maxWindows, `windows of ${maxSeqLen} tokens`);
  }
  const outputs = await model.batcher.submit(
    prepared.windows.map((window) => ({ ids: window.inputIds, typeIds: window.tokenTypeIds })),
    context.signal,
  );
  return timed(
    (seconds) => context.metrics?.postprocessing.observe({ task: 'question-answering' }, seconds),
    () =>
      bestAnswers(
        input.context,
        prepared.contextTokens,
        prepared.windows,
        outputs.map((output) => ({ start: output.start_logits, end: output.end_logits })),
        {
          topK: options.topK,
          maxAnswerLen: options.maxAnswerLen,
          handleImpossibleAnswer: options.handleImpossibleAnswer,
        },
      ),
  );
}
