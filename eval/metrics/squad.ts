/**
 * SQuAD v1.1 exact match and F1, with the semantics of the official `evaluate-v1.1.py` (also what the Hugging Face
 * `squad` metric runs):
 *
 * - `normalize_answer`: lower case, drop ASCII punctuation (`string.punctuation`), replace the words a / an / the by a
 *   space (`re.sub(r'\b(a|an|the)\b', ' ', text)`), collapse whitespace (`' '.join(text.split())`) — in that order.
 * - EM: the normalized strings are equal. F1: bag-of-tokens overlap of the normalized strings; 0 when nothing is
 *   shared — so an empty prediction against a gold answer that normalizes to nothing (e.g. "the") gets EM 1 and F1 0,
 *   exactly as the v1.1 script does (the v2.0 script differs there).
 * - Each question takes the maximum over its gold answers; the totals are averaged over the questions and x100.
 *
 * Python's regular expressions and `str.split()` are Unicode-aware, JavaScript's `\b`, `\w` and `\s` are not the same
 * sets, so both are spelled out: a word character is what Python's `\w` matches for `str` (letters, numbers and `_`),
 * whitespace is what `str.isspace()` accepts.
 */

const PUNCTUATION = new Set('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~');

/** Python `str.isspace()` characters (Unicode White_Space plus the ASCII separators U+001C..U+001F). */
const PY_WHITESPACE = '\\t\\n\\v\\f\\r \\x1c-\\x1f\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const WHITESPACE_RUN = new RegExp(`[${PY_WHITESPACE}]+`, 'gu');

/** `\b(a|an|the)\b` with Python 3 `str` word boundaries (word characters: letters, numbers, underscore). */
const ARTICLES = /(?<![\p{L}\p{N}_])(?:a|an|the)(?![\p{L}\p{N}_])/gu;

/** Python's `str.split()` without arguments: split on whitespace runs, drop empty strings. */
function pySplit(text: string): string[] {
  return text.split(WHITESPACE_RUN).filter((part) => part.length > 0);
}

export function normalizeAnswer(text: string): string {
  const lower = text.toLowerCase();
  let withoutPunctuation = '';
  for (const ch of lower) if (!PUNCTUATION.has(ch)) withoutPunctuation += ch;
  return pySplit(withoutPunctuation.replace(ARTICLES, ' ')).join(' ');
}

export function exactMatchScore(prediction: string, groundTruth: string): number {
  return normalizeAnswer(prediction) === normalizeAnswer(groundTruth) ? 1 : 0;
}

export function f1Score(prediction: string, groundTruth: string): number {
  const predictionTokens = pySplit(normalizeAnswer(prediction));
  const truthTokens = pySplit(normalizeAnswer(groundTruth));
  const counts = new Map<string, number>();
  for (const token of truthTokens) counts.set(token, (counts.get(token) ?? 0) + 1);
  let same = 0;
  for (const token of predictionTokens) {
    const left = counts.get(token) ?? 0;
    if (left > 0) {
      same++;
      counts.set(token, left - 1);
    }
  }
  if (same === 0) return 0;
  const precision = same / predictionTokens.length;
  const recall = same / truthTokens.length;
  return (2 * precision * recall) / (precision + recall);
}

/** `metric_max_over_ground_truths`. */
export function maxOverGroundTruths(
  metric: (prediction: string, truth: string) => number,
  prediction: string,
  groundTruths: readonly string[],
): number {
  if (groundTruths.length === 0) throw new RangeError('a SQuAD v1.1 question needs at least one gold answer');
  return Math.max(...groundTruths.map((truth) => metric(prediction, truth)));
}

export interface SquadScores {
  /** Percent, as the official script prints it. */
  exactMatch: number;
  f1: number;
  questions: number;
}

/** Official `evaluate`: one prediction per question, the maxima averaged over all questions, x100. */
export function squadScores(items: readonly { prediction: string; answers: readonly string[] }[]): SquadScores {
  if (items.length === 0) throw new RangeError('no questions to score');
  let exactMatch = 0;
  let f1 = 0;
  for (const item of items) {
    exactMatch += maxOverGroundTruths(exactMatchScore, item.prediction, item.answers);
    f1 += maxOverGroundTruths(f1Score, item.prediction, item.answers);
  }
  return { exactMatch: (100 * exactMatch) / items.length, f1: (100 * f1) / items.length, questions: items.length };
}
