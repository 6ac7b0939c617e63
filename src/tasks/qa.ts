/**
 * Extractive question answering (SQuAD style) pre- and post-processing, following Hugging Face's
 * `QuestionAnsweringPipeline` (transformers/pipelines/question_answering.py) with a fast tokenizer:
 *
 * - `buildQaWindows` is `preprocess`: `[CLS] question [SEP] context-chunk [SEP]`, the context split into overlapping
 *   windows exactly like the `tokenizers` truncation with `stride` (`truncation="only_second"`,
 *   `return_overflowing_tokens=True`).
 * - `bestAnswers` is `postprocess` + `select_starts_ends` + `decode_spans`: p_mask, softmax, span scoring
 *   `p_start * p_end`, `max_answer_len`, `top_k`, `handle_impossible_answer`.
 *
 * Pure code: no I/O and no tokenizer. Callers hand in token ids and, for every token, its character offsets into the
 * original string. Offsets are JavaScript string indices (UTF-16 code units) so that `context.slice(start, end)` is the
 * exact original text; tokenizers that report Unicode code point offsets (Python `tokenizers`, HF `offset_mapping`)
 * differ as soon as the text holds a character outside the BMP (emoji...), convert them with `codePointOffsetsToUtf16`.
 */

export interface TokenizedText {
  ids: number[];
  /** `[start, end)` character offsets (UTF-16 code units) into the ORIGINAL string, one per token, no special tokens. */
  offsets: [number, number][];
}

export interface SpecialIds {
  cls: number;
  sep: number;
  pad: number;
}

export interface QaWindowOptions {
  /** Total tokens per window including `[CLS]` and the two `[SEP]`. HF default: min(model_max_length, 384). */
  maxSeqLen: number;
  /** Number of context tokens shared by two consecutive windows (HF `doc_stride`, default min(maxSeqLen / 2, 128)). */
  docStride: number;
  /** The question is cut to its first `maxQuestionLen` tokens (HF default 64). */
  maxQuestionLen: number;
}

export interface QaWindow {
  inputIds: number[];
  tokenTypeIds: number[];
  /** All ones: the window holds only used tokens, the batcher pads. */
  attentionMask: number[];
  /** Index in `inputIds` of the first context token (= question length + 2). */
  contextTokenStart: number;
  /** Index into the context's token list of that first token. */
  contextTokenOffset: number;
  /** How many context tokens the window holds. */
  contextTokenCount: number;
}

export interface QaOptions {
  /** Number of answers to return (HF `top_k`, default 1). Fewer are returned when fewer valid spans exist. */
  topK: number;
  /** Longest answer in tokens: spans with `end - start + 1 > maxAnswerLen` are invalid (HF default 15). */
  maxAnswerLen: number;
  /** Also propose the empty answer, scored with the smallest `p_start[CLS] * p_end[CLS]` over the windows. */
  handleImpossibleAnswer?: boolean;
}

export interface QaAnswer {
  answer: string;
  score: number;
  /** `[start, end)` in the context string (UTF-16 code units, `answer === context.slice(start, end)`). */
  start: number;
  end: number;
}

/** A span of token positions within one window, `end` inclusive. */
export interface Span {
  start: number;
  end: number;
  score: number;
}

export const QA_DEFAULTS = {
  maxSeqLen: 384,
  docStride: 128,
  maxQuestionLen: 64,
  maxAnswerLen: 15,
  topK: 1,
} as const;

/** The logit HF puts on tokens that cannot be part of an answer before the softmax. */
const MASKED_LOGIT = -10000;

/** HF's starting value of `min_null_score` ("large and positive"). */
const NULL_SCORE_START = 1000000;

function assertNonNegativeInt(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 0)
    throw new RangeError(`${name} must be a non-negative integer, got ${value}`);
}

function assertPositiveInt(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
}

function assertTokenized(name: string, text: TokenizedText): void {
  if (text.ids.length !== text.offsets.length) {
    throw new RangeError(`${name}: ${text.ids.length} ids but ${text.offsets.length} offsets`);
  }
}

/**
 * The `[start, end)` ranges of context tokens, one per window, as the `tokenizers` crate computes them
 * (`Encoding::truncate` with `Direction::Right`): windows start every `capacity - stride` tokens, each holds up to
 * `capacity` tokens, and the first window that reaches the end of the context is the last one (it may be shorter).
 * Consecutive windows therefore share exactly `stride` tokens, except that the last one may share more.
 */
export function contextWindowRanges(contextLength: number, capacity: number, stride: number): [number, number][] {
  assertNonNegativeInt('contextLength', contextLength);
  assertPositiveInt('capacity', capacity);
  assertNonNegativeInt('stride', stride);
  if (contextLength <= capacity) return [[0, contextLength]];
  if (stride >= capacity) {
    throw new RangeError(
      `docStride ${stride} must be smaller than the ${capacity} context tokens a window holds ` +
        '(maxSeqLen - question tokens - 3)',
    );
  }
  const step = capacity - stride;
  const ranges: [number, number][] = [];
  for (let start = 0; ; start += step) {
    const stop = Math.min(start + capacity, contextLength);
    ranges.push([start, stop]);
    if (stop === contextLength) return ranges;
  }
}

/**
 * How many windows `contextWindowRanges` gives, from counts alone (O(1), nothing allocated): 1 when the context fits
 * one window, else 1 + ceil((contextLength - capacity) / (capacity - stride)). Throws like `contextWindowRanges` when
 * the context must be split and `stride >= capacity`.
 */
export function qaWindowCount(contextLength: number, capacity: number, stride: number): number {
  assertNonNegativeInt('contextLength', contextLength);
  assertPositiveInt('capacity', capacity);
  assertNonNegativeInt('stride', stride);
  if (contextLength <= capacity) return 1;
  if (stride >= capacity) {
    throw new RangeError(`docStride ${stride} must be smaller than the ${capacity} context tokens a window holds`);
  }
  return 1 + Math.ceil((contextLength - capacity) / (capacity - stride));
}

/** The longest context (in tokens) that stays within `maxWindows` windows: the inverse of `qaWindowCount`. */
export function maxContextTokens(capacity: number, stride: number, maxWindows: number): number {
  assertPositiveInt('capacity', capacity);
  assertNonNegativeInt('stride', stride);
  assertPositiveInt('maxWindows', maxWindows);
  if (stride >= capacity) return capacity;
  return capacity + (maxWindows - 1) * (capacity - stride);
}

/**
 * HF `preprocess` for a fast tokenizer with the question first (BERT pads on the right): one window per context
 * chunk, `[CLS] question [SEP] chunk [SEP]`, token types 0 up to and including the first `[SEP]`, 1 after.
 * The question is truncated to `maxQuestionLen` tokens (what the slow-tokenizer path of HF does; the fast path leaves
 * it whole, which only matters for questions longer than the limit). Throws when the question leaves no room for
 * context, or, like `tokenizers`, when the context must be split and `docStride` is not smaller than a window's
 * context capacity. An empty context gives one window without context tokens.
 */
export function buildQaWindows(
  question: TokenizedText,
  context: TokenizedText,
  special: SpecialIds,
  options: QaWindowOptions,
): QaWindow[] {
  assertTokenized('question', question);
  assertTokenized('context', context);
  assertPositiveInt('maxSeqLen', options.maxSeqLen);
  assertNonNegativeInt('docStride', options.docStride);
  assertNonNegativeInt('maxQuestionLen', options.maxQuestionLen);

  const questionIds = question.ids.slice(0, options.maxQuestionLen);
  const capacity = options.maxSeqLen - questionIds.length - 3;
  if (capacity < 1) {
    throw new RangeError(
      `a question of ${questionIds.length} tokens leaves no room for context in maxSeqLen ${options.maxSeqLen}`,
    );
  }
  const contextTokenStart = questionIds.length + 2;
  const head = [special.cls, ...questionIds, special.sep];

  return contextWindowRanges(context.ids.length, capacity, options.docStride).map(([from, to]) => {
    const inputIds = [...head, ...context.ids.slice(from, to), special.sep];
    const tokenTypeIds = inputIds.map((_, i) => (i < contextTokenStart ? 0 : 1));
    return {
      inputIds,
      tokenTypeIds,
      attentionMask: new Array<number>(inputIds.length).fill(1),
      contextTokenStart,
      contextTokenOffset: from,
      contextTokenCount: to - from,
    };
  });
}

/**
 * HF `select_starts_ends` normalisation for one window: tokens outside the context get the logit -10000, except
 * `[CLS]` (position 0), which HF leaves unmasked (`p_mask[cls_index] = 0`) so it always takes part in the softmax
 * denominator, whether or not impossible answers are handled; then a softmax over the window. Padding positions beyond
 * the window length are ignored: HF masks them through the attention mask, which makes them contribute exp(-10000) = 0.
 * Computed in float64.
 */
export function windowProbabilities(window: QaWindow, logits: ArrayLike<number>): Float64Array {
  const length = window.inputIds.length;
  if (logits.length < length) throw new RangeError(`${logits.length} logits for a window of ${length} tokens`);
  const first = window.contextTokenStart;
  const last = first + window.contextTokenCount; // exclusive
  const masked = new Float64Array(length);
  let max = -Infinity;
  for (let i = 0; i < length; i++) {
    const value = i === 0 || (i >= first && i < last) ? logits[i] : MASKED_LOGIT;
    masked[i] = value;
    if (value > max) max = value;
  }
  let sum = 0;
  for (let i = 0; i < length; i++) {
    masked[i] = Math.exp(masked[i] - max);
    sum += masked[i];
  }
  for (let i = 0; i < length; i++) masked[i] /= sum;
  return masked;
}

/** Whether span (start, end, score) ranks before `b`: higher score first, then lower start, then lower end. */
function ranksBefore(start: number, end: number, score: number, b: Span): boolean {
  if (score !== b.score) return score > b.score;
  if (start !== b.start) return start < b.start;
  return end < b.end;
}

/** Inserts the span into `best` (kept in rank order, at most `k` long); allocates only when it enters. */
function offer(best: Span[], start: number, end: number, score: number, k: number): void {
  if (best.length === k && !ranksBefore(start, end, score, best[k - 1])) return;
  let i = best.length < k ? best.length : k - 1;
  while (i > 0 && ranksBefore(start, end, score, best[i - 1])) {
    best[i] = best[i - 1];
    i--;
  }
  best[i] = { start, end, score };
}

/**
 * The `count` positions of `from..to-1` with the highest probability, best first (ties: lower position first).
 * Bounded insertion: O(S) when most positions fall below the current `count`-th best, O(S x count) at worst.
 */
function topPositions(p: ArrayLike<number>, from: number, to: number, count: number): number[] {
  const top: number[] = [];
  for (let position = from; position < to; position++) {
    const value = p[position];
    // Equal values keep the earlier (lower) position first, so a later one must be strictly greater to move up.
    if (top.length === count && !(value > p[top[count - 1]])) continue;
    let i = top.length < count ? top.length : count - 1;
    while (i > 0 && value > p[top[i - 1]]) {
      top[i] = top[i - 1];
      i--;
    }
    top[i] = position;
  }
  return top;
}

/**
 * The `topK` best valid spans `start <= end`, `end - start + 1 <= maxAnswerLen`, both ends in `[from, to)`, by
 * `pStart[start] * pEnd[end]`, best first (ties: lower start, then lower end). The same result as scoring every pair
 * (HF's `decode_spans` builds the full S x S outer product), without doing so:
 *
 * Only the `n` most likely starts and `n` most likely ends are paired (n = `initialCandidates`, default
 * max(topK, 20)): n^2 products. Plain top-N can miss the right answer: when the likely starts all come after the
 * likely ends, or sit more than `maxAnswerLen` tokens before them, every top-N pair is invalid (or there are fewer than
 * `topK` valid ones) and the best valid span needs a start or an end of lower rank. So the result is accepted only when
 * it is provably complete: a pair left out has a start of rank >= n or an end of rank >= n, hence a score of at most
 * `max(pStart[rank n start] * maxEnd, maxStart * pEnd[rank n end])`; when the topK-th span found beats that bound
 * strictly, nothing left out can enter the top K. Otherwise n doubles. Once n^2 would exceed the band of valid pairs
 * (S x maxAnswerLen), the valid band is scanned directly, O(S x maxAnswerLen), never O(S^2).
 */
export function topSpans(
  pStart: ArrayLike<number>,
  pEnd: ArrayLike<number>,
  from: number,
  to: number,
  topK: number,
  maxAnswerLen: number,
  initialCandidates = Math.max(topK, 20),
): Span[] {
  assertPositiveInt('topK', topK);
  assertPositiveInt('maxAnswerLen', maxAnswerLen);
  assertPositiveInt('initialCandidates', initialCandidates);
  const size = to - from;
  if (size <= 0) return [];
  const band = size * Math.min(maxAnswerLen, size);

  for (let n = Math.min(initialCandidates, size); n * n < band; n = Math.min(2 * n, size)) {
    // n * n < band <= size * size, so n < size: ranks 0..n exist (rank n gives the bound below).
    const starts = topPositions(pStart, from, to, n + 1);
    const ends = topPositions(pEnd, from, to, n + 1);
    const best: Span[] = [];
    for (let i = 0; i < n; i++) {
      const start = starts[i];
      for (let j = 0; j < n; j++) {
        const end = ends[j];
        if (end < start || end - start + 1 > maxAnswerLen) continue;
        offer(best, start, end, pStart[start] * pEnd[end], topK);
      }
    }
    const bound = Math.max(pStart[starts[n]] * pEnd[ends[0]], pStart[starts[0]] * pEnd[ends[n]]);
    if (best.length === topK && best[topK - 1].score > bound) return best;
  }

  const best: Span[] = [];
  for (let start = from; start < to; start++) {
    const last = Math.min(to - 1, start + maxAnswerLen - 1);
    for (let end = start; end <= last; end++) offer(best, start, end, pStart[start] * pEnd[end], topK);
  }
  return best;
}

/**
 * HF `postprocess`: per window, probabilities as in `windowProbabilities`, `p_start[CLS] * p_end[CLS]` kept as the
 * null score, `[CLS]` then excluded, and the `topK` best context spans taken; answers of all windows merged, the same
 * character span found in several (overlapping) windows reported once with its best score (HF would list it twice),
 * sorted by score and cut to `topK`. With `handleImpossibleAnswer`, the empty answer `{ answer: '', start: 0, end: 0 }`
 * competes with the smallest null score over the windows (sorted after real answers of equal score, like HF's stable
 * sort). `logits[w]` holds the model's start / end logits for `windows[w]`; entries past the window length (padding)
 * are ignored. HF's `align_to_words` (widening a span to whole words) needs word ids and is not done: answers are cut
 * at token offsets.
 */
export function bestAnswers(
  context: string,
  contextTokens: TokenizedText,
  windows: QaWindow[],
  logits: { start: ArrayLike<number>; end: ArrayLike<number> }[],
  options: QaOptions,
): QaAnswer[] {
  assertTokenized('contextTokens', contextTokens);
  assertPositiveInt('topK', options.topK);
  assertPositiveInt('maxAnswerLen', options.maxAnswerLen);
  if (windows.length !== logits.length) {
    throw new RangeError(`${windows.length} windows but ${logits.length} logit pairs`);
  }

  const byChars = new Map<string, QaAnswer>();
  let minNullScore = NULL_SCORE_START;
  windows.forEach((window, w) => {
    const { contextTokenStart: first, contextTokenOffset: offset, contextTokenCount: count } = window;
    if (offset + count > contextTokens.ids.length) {
      throw new RangeError(`window ${w} reaches context token ${offset + count} of ${contextTokens.ids.length}`);
    }
    if (first + count > window.inputIds.length) {
      throw new RangeError(`window ${w}: context tokens run past the window`);
    }
    const pStart = windowProbabilities(window, logits[w].start);
    const pEnd = windowProbabilities(window, logits[w].end);
    minNullScore = Math.min(minNullScore, pStart[0] * pEnd[0]);

    const toAnswer = (span: Span): QaAnswer => {
      const start = contextTokens.offsets[offset + span.start - first][0];
      const end = contextTokens.offsets[offset + span.end - first][1];
      return { answer: context.slice(start, end), score: span.score, start, end };
    };
    // Distinct token spans normally have distinct character spans; tokens sharing offsets (several tokens for one
    // character) can collapse some, so ask for more until topK distinct character spans (or all spans) are found.
    // Taking each window's topK distinct character spans is enough for the merged topK to be exact.
    for (let want = options.topK; ; want *= 2) {
      const spans = topSpans(pStart, pEnd, first, first + count, want, options.maxAnswerLen);
      const local = new Map<string, QaAnswer>();
      for (const span of spans) {
        const answer = toAnswer(span);
        const key = `${answer.start}:${answer.end}`;
        if (!local.has(key)) local.set(key, answer); // spans come best first
      }
      if (local.size >= options.topK || spans.length < want) {
        for (const [key, answer] of local) {
          const seen = byChars.get(key);
          if (seen === undefined || answer.score > seen.score) byChars.set(key, answer);
        }
        break;
      }
    }
  });

  const answers = [...byChars.values()].sort((a, b) => b.score - a.score || a.start - b.start || a.end - b.end);
  if (options.handleImpossibleAnswer && windows.length > 0) {
    const at = answers.findIndex((a) => a.score < minNullScore);
    answers.splice(at === -1 ? answers.length : at, 0, { answer: '', score: minNullScore, start: 0, end: 0 });
  }
  return answers.slice(0, options.topK);
}

/**
 * Converts offsets counted in Unicode code points (Python / HF `offset_mapping`) into UTF-16 code unit offsets (JS
 * string indices) for `text`. Identical unless `text` holds characters outside the BMP.
 */
export function codePointOffsetsToUtf16(text: string, offsets: [number, number][]): [number, number][] {
  const unitAt: number[] = [0]; // unitAt[codePoint] = UTF-16 index
  for (let i = 0; i < text.length;) {
    i += (text.codePointAt(i) ?? 0) > 0xffff ? 2 : 1;
    unitAt.push(i);
  }
  return offsets.map(([start, end]) => {
    if (start > end || end >= unitAt.length) {
      throw new RangeError(`offsets [${start}, ${end}) do not fit a text of ${unitAt.length - 1} code points`);
    }
    return [unitAt[start], unitAt[end]];
  });
}
