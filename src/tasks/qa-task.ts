import type { ServedModel } from '../models/registry.js';
import { REFUSED_TOKENS_FACTOR, RequestError } from './errors.js';
import { bestAnswers, buildQaWindows, maxContextTokens, qaWindowCount, type QaAnswer } from './qa.js';
import type { RunContext } from './run-context.js';
import { runJob, type TaskJob } from './task-job.js';

export interface QaInput {
  question: string;
  context: string;
}

export interface QaOptions {
  topK: number;
  maxAnswerLen: number;
  /**
   * Context tokens two windows share. Given explicitly, it must be smaller than a window's context capacity whenever
   * the context needs more than one window (422 naming `doc_stride`, as the `tokenizers` truncation refuses it).
   * Left out: min(128, maxSeqLen / 2) like Hugging Face, lowered to capacity - 1 when the question leaves less room.
   */
  docStride?: number;
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
  maxQuestionLen: 64,
  handleImpossibleAnswer: false,
};

/**
 * Question answering over contexts of any length: overlapping windows (doc stride), every window of the request
 * queued together so they can share a batch, best span over all windows. Shared by the server and evaluation.
 *
 * Every limit is checked from token counts before the work it bounds: the question is tokenized only up to
 * `maxQuestionLen` tokens, the context only up to the tokens `maxWindows` windows can hold (times
 * `REFUSED_TOKENS_FACTOR` for the message), in slices that yield to the event loop, and windows are built only once
 * their count is known to be within the limit.
 */
export async function answerQuestion(
  model: ServedModel,
  input: QaInput,
  options: QaOptions,
  context: RunContext = {},
): Promise<QaAnswer[]> {
  return runJob(model, await prepareQuestion(model, input, options, context), context);
}

/** Tokenization, every limit check and the windows of one question; the job's rows are its windows. */
export async function prepareQuestion(
  model: ServedModel,
  input: QaInput,
  options: QaOptions,
  context: RunContext = {},
): Promise<TaskJob<QaAnswer[]>> {
  const { tokenizer, manifest } = model;
  // Like the Hugging Face pipeline: windows of min(model maximum, 384) tokens unless the request asks otherwise.
  const maxSeqLen = Math.min(options.maxSeqLen ?? 384, manifest.maxSequenceLength);
  const maxQuestionLen = Math.min(options.maxQuestionLen, maxSeqLen - 4);
  const questionRun = tokenizer.tokenizeUpTo(input.question, maxQuestionLen);
  const question = {
    ids: questionRun.ids.slice(0, maxQuestionLen),
    offsets: questionRun.offsets.slice(0, maxQuestionLen),
  };
  // maxQuestionLen <= maxSeqLen - 4, so at least one context token fits.
  const capacity = maxSeqLen - question.ids.length - 3;
  const explicitStride = options.docStride;
  const stride = explicitStride ?? Math.min(128, Math.floor(maxSeqLen / 2), capacity - 1);
  const strideFits = stride < capacity;
  // A stride that does not fit is fine as long as the context fits one window: tokenize just past that point.
  const allowed = strideFits ? maxContextTokens(capacity, stride, options.maxWindows) : capacity;
  const contextRun = await tokenizer.tokenizeAsync(
    input.context,
    strideFits ? allowed * REFUSED_TOKENS_FACTOR : allowed,
  );
  context.metrics?.tokenization.observe(
    { task: 'question-answering' },
    (questionRun.busyMs + contextRun.busyMs) / 1000,
  );
  const contextLength = contextRun.ids.length;
  const layout = `max_seq_len ${maxSeqLen} - ${question.ids.length} question tokens - 3`;
  if (!strideFits && contextLength > capacity) {
    throw new RequestError(
      422,
      `doc_stride ${stride} does not fit: it must be smaller than the ${capacity} context tokens a window holds ` +
        `(${layout}) when the context needs more than one window`,
    );
  }
  if (contextLength > allowed) {
    const windows = qaWindowCount(contextLength, capacity, stride);
    const size = contextRun.complete ? `${windows} windows` : `more than ${windows} windows`;
    throw new RequestError(
      422,
      `context is too long: ${size} of ${maxSeqLen} tokens, the limit is ${options.maxWindows} ` +
        `(--max-qa-windows; at most ${allowed} context tokens with ${layout} and doc_stride ${stride})`,
      'too_long',
    );
  }
  const windows = buildQaWindows(
    question,
    contextRun,
    { cls: tokenizer.clsId, sep: tokenizer.sepId, pad: tokenizer.padId },
    { maxSeqLen, docStride: strideFits ? stride : 0, maxQuestionLen },
  );
  return {
    rows: windows.map((window) => ({ ids: window.inputIds, typeIds: window.tokenTypeIds })),
    finish: (outputs) => {
      const started = performance.now();
      try {
        return bestAnswers(
          input.context,
          contextRun,
          windows,
          outputs.map((output) => ({ start: output.start_logits, end: output.end_logits })),
          {
            topK: options.topK,
            maxAnswerLen: options.maxAnswerLen,
            handleImpossibleAnswer: options.handleImpossibleAnswer,
          },
        );
      } finally {
        const seconds = (performance.now() - started) / 1000;
        context.metrics?.postprocessing.observe({ task: 'question-answering' }, seconds);
      }
    },
  };
}
