import { test } from 'node:test';
import assert from 'node:assert/strict';
import { aggregateEntities, getTag, softmax, type TokenPrediction } from '../src/tasks/ner.js';
import { assertEntities, assertScores, exact, LABELS, tokenize } from './helpers/ner-fixtures.js';

/* Hand-checked examples (see test/helpers/ner-fixtures.ts): softmax, get_tag and the aggregation strategies on a
 * sentence with no split words. */

test('softmax is stable and sums to 1', () => {
  const p = softmax([1000, 1000 + Math.log(3)]);
  // exp(0) = 1, exp(ln 3) = 3 -> 1/4, 3/4
  assert.ok(Math.abs(p[0] - 0.25) < 1e-12 && Math.abs(p[1] - 0.75) < 1e-12);
  const q = softmax([0, 0, 0, 0]);
  assert.deepEqual(Array.from(q), [0.25, 0.25, 0.25, 0.25]);
});

test('getTag follows HF get_tag', () => {
  assert.deepEqual(getTag('B-PER'), ['B', 'PER']);
  assert.deepEqual(getTag('I-LOC'), ['I', 'LOC']);
  assert.deepEqual(getTag('PER'), ['I', 'PER']);
  assert.deepEqual(getTag('O'), ['I', 'O']);
  assert.deepEqual(getTag('S-LOC'), ['I', 'S-LOC']);
});

// "Hugging Face is in New York City"
//  0      7 8  12 13 16 19 23  28  32  (hugging 0-7, face 8-12, is 13-15, in 16-18, new 19-22, york 23-27, city 28-32)
const HF_TEXT = 'Hugging Face is in New York City';
const HF_P: Record<string, number>[] = [
  { 'B-ORG': 0.7 }, // others (1 - 0.7) / 6 = 0.05
  { 'I-ORG': 0.9 },
  { O: 0.94 }, // others 0.01
  { O: 0.88 }, // others 0.02
  { 'B-LOC': 0.76 }, // others 0.04
  { 'I-LOC': 0.82 }, // others 0.03
  { 'I-LOC': 0.64 }, // others 0.06
];
const HF_PIECES = ['hugging', 'face', 'is', 'in', 'new', 'york', 'city'];
const hfTokens = (): TokenPrediction[] =>
  exact(
    tokenize(
      HF_TEXT,
      HF_PIECES.map((piece, i) => [piece, HF_P[i]]),
    ),
    LABELS,
    HF_P,
  );

test('offsets of the test tokenizer', () => {
  assert.deepEqual(
    hfTokens().map((t) => [t.start, t.end]),
    [
      [0, 7],
      [8, 12],
      [13, 15],
      [16, 18],
      [19, 22],
      [23, 27],
      [28, 32],
    ],
  );
});

test('none: one entity per non-O token, index counts [CLS] as 0, word is the piece', () => {
  const out = aggregateEntities(HF_TEXT, hfTokens(), LABELS, 'none');
  assertEntities(out, [
    { entity: 'B-ORG', score: 0.7, index: 1, word: 'hugging', start: 0, end: 7 },
    { entity: 'I-ORG', score: 0.9, index: 2, word: 'face', start: 8, end: 12 },
    // is (index 3), in (index 4) are O -> dropped
    { entity: 'B-LOC', score: 0.76, index: 5, word: 'new', start: 19, end: 22 },
    { entity: 'I-LOC', score: 0.82, index: 6, word: 'york', start: 23, end: 27 },
    { entity: 'I-LOC', score: 0.64, index: 7, word: 'city', start: 28, end: 32 },
  ]);
  assertScores(out, [0.7, 0.9, 0.76, 0.82, 0.64]);
  // HF key order: entity, score, index, word, start, end
  assert.deepEqual(Object.keys(out[0]), ['entity', 'score', 'index', 'word', 'start', 'end']);
});

test('simple: B-ORG I-ORG | O O | B-LOC I-LOC I-LOC, word is the original text slice', () => {
  const out = aggregateEntities(HF_TEXT, hfTokens(), LABELS, 'simple');
  // ORG: (0.7 + 0.9) / 2 = 0.8 ; LOC: (0.76 + 0.82 + 0.64) / 3 = 2.22 / 3 = 0.74
  assertEntities(out, [
    { entity_group: 'ORG', score: 0.8, word: 'Hugging Face', start: 0, end: 12 },
    { entity_group: 'LOC', score: 0.74, word: 'New York City', start: 19, end: 32 },
  ]);
  assertScores(out, [0.8, 0.74]);
  assert.deepEqual(Object.keys(out[0]), ['entity_group', 'score', 'word', 'start', 'end']);
});

test('first/average/max equal simple when no word is split', () => {
  const simple = aggregateEntities(HF_TEXT, hfTokens(), LABELS, 'simple');
  for (const strategy of ['first', 'average', 'max'] as const) {
    const out = aggregateEntities(HF_TEXT, hfTokens(), LABELS, strategy);
    assert.deepEqual(out, simple, strategy);
  }
});

test('ignore_labels = [] keeps the O group; custom ignore list filters by group type', () => {
  const out = aggregateEntities(HF_TEXT, hfTokens(), LABELS, 'simple', []);
  // O group "is in": (0.94 + 0.88) / 2 = 0.91
  assertEntities(out, [
    { entity_group: 'ORG', score: 0.8, word: 'Hugging Face', start: 0, end: 12 },
    { entity_group: 'O', score: 0.91, word: 'is in', start: 13, end: 18 },
    { entity_group: 'LOC', score: 0.74, word: 'New York City', start: 19, end: 32 },
  ]);
  assertScores(out, [0.8, 0.91, 0.74]);

  const noOrg = aggregateEntities(HF_TEXT, hfTokens(), LABELS, 'first', ['O', 'ORG']);
  assert.deepEqual(
    noOrg.map((e) => e.entity_group),
    ['LOC'],
  );

  // none compares the full label: 'LOC' does not drop B-LOC/I-LOC, 'I-LOC' does drop I-LOC.
  const none = aggregateEntities(HF_TEXT, hfTokens(), LABELS, 'none', ['O', 'LOC', 'I-LOC']);
  assert.deepEqual(
    none.map((e) => [e.entity, e.index]),
    [
      ['B-ORG', 1],
      ['I-ORG', 2],
      ['B-LOC', 5],
    ],
  );
  const all = aggregateEntities(HF_TEXT, hfTokens(), LABELS, 'none', []);
  assert.deepEqual(
    all.map((e) => e.entity),
    ['B-ORG', 'I-ORG', 'O', 'O', 'B-LOC', 'I-LOC', 'I-LOC'],
  );
});

test('float32 logits give the same entities (scores to float32 precision)', () => {
  const tokens = tokenize(
    HF_TEXT,
    HF_PIECES.map((piece, i) => [piece, HF_P[i]]),
  );
  const out = aggregateEntities(HF_TEXT, tokens, LABELS, 'average');
  assertEntities(out, [
    { entity_group: 'ORG', score: 0.8, word: 'Hugging Face', start: 0, end: 12 },
    { entity_group: 'LOC', score: 0.74, word: 'New York City', start: 19, end: 32 },
  ]);
});

test('empty input and mismatched logits', () => {
  for (const strategy of ['none', 'simple', 'first', 'average', 'max'] as const) {
    assert.deepEqual(aggregateEntities('', [], LABELS, strategy), []);
  }
  const bad = hfTokens();
  bad[2] = { ...bad[2], logits: [0, 1] };
  assert.throws(() => aggregateEntities(HF_TEXT, bad, LABELS, 'simple'), /2 logits but the model has 7 labels/);
});
