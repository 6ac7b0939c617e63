import { test } from 'node:test';
import assert from 'node:assert/strict';
import { aggregateEntities, getTag, softmax, type Entity, type TokenPrediction } from '../src/tasks/ner.js';

/*
 * Hand-checked examples for the HF TokenClassificationPipeline post-processing.
 *
 * Logits are built as ln(p) from a probability vector p that sums to 1, so softmax(logits) = p exactly (up to float
 * rounding): exp(ln p_i - ln p_max) / sum_j exp(ln p_j - ln p_max) = (p_i / p_max) / (1 / p_max) = p_i.
 * `probs(labels, { X: a, Y: b })` gives X probability a, Y probability b and spreads the rest evenly over the other
 * labels, so every expected score below is a small hand computation.
 */

const LABELS = ['O', 'B-PER', 'I-PER', 'B-ORG', 'I-ORG', 'B-LOC', 'I-LOC'];

function probs(labels: string[], fixed: Record<string, number>): number[] {
  const fixedSum = Object.values(fixed).reduce((a, b) => a + b, 0);
  const others = labels.filter((l) => !(l in fixed)).length;
  const rest = others === 0 ? 0 : (1 - fixedSum) / others;
  return labels.map((l) => (l in fixed ? fixed[l] : rest));
}

/** Tokens of `text`, located by successive search; a piece starting with "##" is a subword. */
function tokenize(text: string, pieces: [string, Record<string, number>][], labels = LABELS): TokenPrediction[] {
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
function assertEntities(actual: Entity[], expected: Entity[]): void {
  assert.equal(actual.length, expected.length, `entity count: ${JSON.stringify(actual)}`);
  actual.forEach((a, i) => {
    const e = expected[i];
    assert.deepEqual(Object.keys(a).sort(), Object.keys(e).sort(), `keys of entity ${i}`);
    assert.ok(Math.abs(a.score - e.score) < 1e-6, `score of entity ${i}: ${a.score} vs ${e.score}`);
    assert.deepEqual({ ...a, score: 0 }, { ...e, score: 0 }, `entity ${i}`);
  });
}

// Float32 logits perturb the probabilities by ~1e-7; for the 1e-9 checks use float64 logits.
function exact(tokens: TokenPrediction[], labels = LABELS, fixed: Record<string, number>[]): TokenPrediction[] {
  return tokens.map((t, i) => ({ ...t, logits: probs(labels, fixed[i]).map(Math.log) }));
}

function assertScores(actual: Entity[], expected: number[]): void {
  assert.equal(actual.length, expected.length);
  actual.forEach((a, i) =>
    assert.ok(Math.abs(a.score - expected[i]) < 1e-9, `score ${i}: ${a.score} vs ${expected[i]}`),
  );
}

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

// "Mandela visited Johannesburg": mandela 0-7, visited 8-15, johannes 16-24, ##burg 24-28 (subword).
const JO_TEXT = 'Mandela visited Johannesburg';
const JO_P: Record<string, number>[] = [
  { 'B-PER': 0.8 }, // others 0.2 / 6
  { O: 0.94 }, // others 0.01
  { 'B-LOC': 0.45, 'B-ORG': 0.4 }, // others 0.15 / 5 = 0.03
  { 'I-ORG': 0.55, 'B-ORG': 0.4 }, // others 0.05 / 5 = 0.01
];
const joTokens = (): TokenPrediction[] =>
  exact(
    tokenize(JO_TEXT, [
      ['mandela', JO_P[0]],
      ['visited', JO_P[1]],
      ['johannes', JO_P[2]],
      ['##burg', JO_P[3]],
    ]),
    LABELS,
    JO_P,
  );

test('split word: none reports both pieces', () => {
  const out = aggregateEntities(JO_TEXT, joTokens(), LABELS, 'none');
  assertEntities(out, [
    { entity: 'B-PER', score: 0.8, index: 1, word: 'mandela', start: 0, end: 7 },
    { entity: 'B-LOC', score: 0.45, index: 3, word: 'johannes', start: 16, end: 24 },
    { entity: 'I-ORG', score: 0.55, index: 4, word: '##burg', start: 24, end: 28 },
  ]);
  assertScores(out, [0.8, 0.45, 0.55]);
});

test('split word: simple splits the word on the type change B-LOC -> I-ORG', () => {
  const out = aggregateEntities(JO_TEXT, joTokens(), LABELS, 'simple');
  assertEntities(out, [
    { entity_group: 'PER', score: 0.8, word: 'Mandela', start: 0, end: 7 },
    { entity_group: 'LOC', score: 0.45, word: 'Johannes', start: 16, end: 24 },
    { entity_group: 'ORG', score: 0.55, word: 'burg', start: 24, end: 28 },
  ]);
});

test('split word: first takes the first piece (B-LOC 0.45)', () => {
  const out = aggregateEntities(JO_TEXT, joTokens(), LABELS, 'first');
  assertEntities(out, [
    { entity_group: 'PER', score: 0.8, word: 'Mandela', start: 0, end: 7 },
    { entity_group: 'LOC', score: 0.45, word: 'Johannesburg', start: 16, end: 28 },
  ]);
  assertScores(out, [0.8, 0.45]);
});

test('split word: max takes the piece with the highest max (##burg 0.55 > johannes 0.45 -> I-ORG)', () => {
  const out = aggregateEntities(JO_TEXT, joTokens(), LABELS, 'max');
  assertEntities(out, [
    { entity_group: 'PER', score: 0.8, word: 'Mandela', start: 0, end: 7 },
    { entity_group: 'ORG', score: 0.55, word: 'Johannesburg', start: 16, end: 28 },
  ]);
  assertScores(out, [0.8, 0.55]);
});

test('split word: average argmaxes the mean vector (B-ORG 0.40)', () => {
  // mean over the two pieces:
  //   O     (0.03 + 0.01) / 2 = 0.02     B-PER (0.03 + 0.01) / 2 = 0.02   I-PER 0.02
  //   B-ORG (0.40 + 0.40) / 2 = 0.40     I-ORG (0.03 + 0.55) / 2 = 0.29
  //   B-LOC (0.45 + 0.01) / 2 = 0.23     I-LOC (0.03 + 0.01) / 2 = 0.02
  const out = aggregateEntities(JO_TEXT, joTokens(), LABELS, 'average');
  assertEntities(out, [
    { entity_group: 'PER', score: 0.8, word: 'Mandela', start: 0, end: 7 },
    { entity_group: 'ORG', score: 0.4, word: 'Johannesburg', start: 16, end: 28 },
  ]);
  assertScores(out, [0.8, 0.4]);
});

test('a B- tag inside a run of the same type starts a new entity; B- B- are two entities', () => {
  // "Alice Bob Carol Dave": I-PER 0.6, B-PER 0.7, I-PER 0.8, B-PER 0.9
  const text = 'Alice Bob Carol Dave';
  const p: Record<string, number>[] = [{ 'I-PER': 0.6 }, { 'B-PER': 0.7 }, { 'I-PER': 0.8 }, { 'B-PER': 0.9 }];
  const tokens = exact(
    tokenize(text, [
      ['alice', p[0]],
      ['bob', p[1]],
      ['carol', p[2]],
      ['dave', p[3]],
    ]),
    LABELS,
    p,
  );
  for (const strategy of ['simple', 'first', 'average', 'max'] as const) {
    const out = aggregateEntities(text, tokens, LABELS, strategy);
    // [Alice] 0.6 | [Bob Carol] (0.7 + 0.8) / 2 = 0.75 | [Dave] 0.9
    assertEntities(out, [
      { entity_group: 'PER', score: 0.6, word: 'Alice', start: 0, end: 5 },
      { entity_group: 'PER', score: 0.75, word: 'Bob Carol', start: 6, end: 15 },
      { entity_group: 'PER', score: 0.9, word: 'Dave', start: 16, end: 20 },
    ]);
    assertScores(out, [0.6, 0.75, 0.9]);
  }
});

test('a type change mid-run without B- starts a new entity', () => {
  // "Paris Hilton Hotel": I-LOC 0.5, I-PER 0.6, I-PER 0.9 -> LOC "Paris" 0.5, PER "Hilton Hotel" 0.75
  const text = 'Paris Hilton Hotel';
  const p: Record<string, number>[] = [{ 'I-LOC': 0.5 }, { 'I-PER': 0.6 }, { 'I-PER': 0.9 }];
  const tokens = exact(
    tokenize(text, [
      ['paris', p[0]],
      ['hilton', p[1]],
      ['hotel', p[2]],
    ]),
    LABELS,
    p,
  );
  const out = aggregateEntities(text, tokens, LABELS, 'simple');
  assertEntities(out, [
    { entity_group: 'LOC', score: 0.5, word: 'Paris', start: 0, end: 5 },
    { entity_group: 'PER', score: 0.75, word: 'Hilton Hotel', start: 6, end: 18 },
  ]);
  assertScores(out, [0.5, 0.75]);
});

test('labels without a B-/I- prefix behave as I- of their own type', () => {
  // labels O, PER, LOC. "Ann Lee in Rome": PER 0.5, PER 0.7, O 0.9, LOC 0.6 (rest split over the 2 others)
  const labels = ['O', 'PER', 'LOC'];
  const text = 'Ann Lee in Rome';
  const p: Record<string, number>[] = [{ PER: 0.5 }, { PER: 0.7 }, { O: 0.9 }, { LOC: 0.6 }];
  const tokens = exact(
    tokenize(
      text,
      [
        ['ann', p[0]],
        ['lee', p[1]],
        ['in', p[2]],
        ['rome', p[3]],
      ],
      labels,
    ),
    labels,
    p,
  );
  const out = aggregateEntities(text, tokens, labels, 'simple');
  // PER run: (0.5 + 0.7) / 2 = 0.6
  assertEntities(out, [
    { entity_group: 'PER', score: 0.6, word: 'Ann Lee', start: 0, end: 7 },
    { entity_group: 'LOC', score: 0.6, word: 'Rome', start: 11, end: 15 },
  ]);
  assertScores(out, [0.6, 0.6]);
});

test('entity_group strips up to the first dash, but get_tag only knows B-/I- (S-LOC then I-LOC: two groups)', () => {
  const labels = ['O', 'S-LOC', 'I-LOC'];
  const text = 'Rome Milan';
  const p: Record<string, number>[] = [{ 'S-LOC': 0.8 }, { 'I-LOC': 0.6 }];
  const tokens = exact(
    tokenize(
      text,
      [
        ['rome', p[0]],
        ['milan', p[1]],
      ],
      labels,
    ),
    labels,
    p,
  );
  const out = aggregateEntities(text, tokens, labels, 'simple');
  // get_tag('S-LOC') = (I, 'S-LOC') != (I, 'LOC') -> two groups, both named LOC
  assertEntities(out, [
    { entity_group: 'LOC', score: 0.8, word: 'Rome', start: 0, end: 4 },
    { entity_group: 'LOC', score: 0.6, word: 'Milan', start: 5, end: 10 },
  ]);
});

test('max: ties go to the first piece; average over three pieces', () => {
  // "Ouagadougou" -> "ouaga", "##dou", "##gou" (one word)
  const text = 'Ouagadougou';
  // piece 1: B-LOC 0.5, others 0.5 / 6 = 1/12 ; piece 2: I-ORG 0.5, others 1/12 ; piece 3: I-ORG 0.3, I-PER 0.2,
  // others 0.5 / 5 = 0.1
  const p: Record<string, number>[] = [{ 'B-LOC': 0.5 }, { 'I-ORG': 0.5 }, { 'I-ORG': 0.3, 'I-PER': 0.2 }];
  const tokens = exact(
    tokenize(text, [
      ['ouaga', p[0]],
      ['##dou', p[1]],
      ['##gou', p[2]],
    ]),
    LABELS,
    p,
  );
  // Precondition: the two maxes are bit-identical, so this really is a tie.
  assert.equal(Math.max(...softmax(tokens[0].logits)), Math.max(...softmax(tokens[1].logits)));
  // max: pieces 1 and 2 tie at 0.5 (> 0.3) -> Python max() keeps the first -> B-LOC
  const max = aggregateEntities(text, tokens, LABELS, 'max');
  assertEntities(max, [{ entity_group: 'LOC', score: 0.5, word: 'Ouagadougou', start: 0, end: 11 }]);
  assertScores(max, [0.5]);
  // average: B-LOC (0.5 + 1/12 + 0.1) / 3 = 0.2278 ; I-ORG (1/12 + 0.5 + 0.3) / 3 = (53/60) / 3 = 53/180 = 0.2944 ;
  //          I-PER (1/12 + 1/12 + 0.2) / 3 = 0.1222 ; the rest (1/12 + 1/12 + 0.1) / 3 = 0.0889 -> I-ORG
  const avg = aggregateEntities(text, tokens, LABELS, 'average');
  assertEntities(avg, [{ entity_group: 'ORG', score: 53 / 180, word: 'Ouagadougou', start: 0, end: 11 }]);
  assertScores(avg, [53 / 180]);
  // first: B-LOC 0.5
  const first = aggregateEntities(text, tokens, LABELS, 'first');
  assertEntities(first, [{ entity_group: 'LOC', score: 0.5, word: 'Ouagadougou', start: 0, end: 11 }]);
});

test('first/average/max: the first token starts a word even when flagged subword', () => {
  const text = 'burg Berlin';
  const p: Record<string, number>[] = [{ 'I-LOC': 0.7 }, { 'B-LOC': 0.9 }];
  const tokens = exact(
    tokenize(text, [
      ['##burg', p[0]],
      ['berlin', p[1]],
    ]),
    LABELS,
    p,
  );
  const out = aggregateEntities(text, tokens, LABELS, 'first');
  assertEntities(out, [
    { entity_group: 'LOC', score: 0.7, word: 'burg', start: 0, end: 4 },
    { entity_group: 'LOC', score: 0.9, word: 'Berlin', start: 5, end: 11 },
  ]);
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
