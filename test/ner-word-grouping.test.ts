import { test } from 'node:test';
import assert from 'node:assert/strict';
import { aggregateEntities, softmax, type TokenPrediction } from '../src/tasks/ner.js';
import { assertEntities, assertScores, exact, LABELS, tokenize } from './helpers/ner-fixtures.js';

/* Hand-checked examples (see test/helpers/ner-fixtures.ts): words split into pieces, and where entities start and
 * end (B- tags, type changes, labels without a B-/I- prefix). */

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
