/*
 * Fixtures for the hand-checked examples of the HF TokenClassificationPipeline post-processing (test/ner-*.test.ts).
 *
 * Logits are built as ln(p) from a probability vector p that sums to 1, so softmax(logits) = p exactly (up to float
 * rounding): exp(ln p_i - ln p_max) / sum_j exp(ln p_j - ln p_max) = (p_i / p_max) / (1 / p_max) = p_i.
 * `probs(labels, { X: a, Y: b })` gives X probability a, Y probability b and spreads the rest evenly over the other
 * labels, so every expected score in the tests is a small hand computation.
 */
import assert from 'node:assert/strict';
import type { Entity, TokenPrediction } from '../../src/tasks/ner.js';

export const LABELS = ['O', 'B-PER', 'I-PER', 'B-ORG', 'I-ORG', 'B-LOC', 'I-LOC'];

export function probs(labels: string[], fixed: Record<string, number>): number[] {
  const fixedSum = Object.values(fixed).reduce((a, b) => a + b, 0);
  const others = labels.filter((l) => !(l in fixed)).length;
  const rest = others === 0 ? 0 : (1 - fixedSum) / others;
  return labels.map((l) => (l in fixed ? fixed[l] : rest));
}

/** Tokens of `text`, located by successive search; a piece starting with "##" is a subword. */
export function tokenize(text: string, pieces: [string, Record<string, number>][], labels = LABELS): TokenPrediction[] {
  const lower = text.toLowerCase();
  let cursor = 0;
  let word = -1;
  return pieces.map(([piece, p], i) => {
    const isSubword = piece.startsWith('##');
    const bare = isSubword ? piece.slice(2) : piece;
    const start = lower.indexOf(bare, cursor);
    assert.ok(start >= 0, `piece ${piece} not found`);
    cursor = start + bare.length;
    if (!isSubword) word++;
    return {
      logits: Float32Array.from(probs(labels, p).map(Math.log)), // float32 logits, like ORT output
      tokenId: 1000 + i,
      token: piece,
      start,
      end: cursor,
      isSubword,
      wordIndex: Math.max(word, 0),
    };
  });
}

/** Same fields and key sets, scores to 1e-6 (float32 logits); assertScores checks 1e-9 on float64 logits. */
export function assertEntities(actual: Entity[], expected: Entity[]): void {
  assert.equal(actual.length, expected.length, `entity count: ${JSON.stringify(actual)}`);
  actual.forEach((a, i) => {
    const e = expected[i];
    assert.deepEqual(Object.keys(a).sort(), Object.keys(e).sort(), `keys of entity ${i}`);
    assert.ok(Math.abs(a.score - e.score) < 1e-6, `score of entity ${i}: ${a.score} vs ${e.score}`);
    assert.deepEqual({ ...a, score: 0 }, { ...e, score: 0 }, `entity ${i}`);
  });
}

// Float32 logits perturb the probabilities by ~1e-7; for the 1e-9 checks use float64 logits.
export function exact(tokens: TokenPrediction[], labels = LABELS, fixed: Record<string, number>[]): TokenPrediction[] {
  return tokens.map((t, i) => ({ ...t, logits: probs(labels, fixed[i]).map(Math.log) }));
}

export function assertScores(actual: Entity[], expected: number[]): void {
  assert.equal(actual.length, expected.length);
  actual.forEach((a, i) =>
    assert.ok(Math.abs(a.score - expected[i]) < 1e-9, `score ${i}: ${a.score} vs ${expected[i]}`),
  );
}
