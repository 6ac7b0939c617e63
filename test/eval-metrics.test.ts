/*
 * Metric functions against hand-computed cases: SQuAD v1.1 (official evaluate-v1.1.py semantics, incl. its edge
 * cases), seqeval default mode (get_entities chunk rules for IOB1/IOB2/IOBES, micro and per-type scores), GLUE
 * accuracy / F1, plus the helpers evaluation relies on (label mapping, entities → word tags, selection, bounded map).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mapLabels } from '../eval/labels.js';
import { accuracy, binaryF1, glueScores } from '../eval/metrics/glue.js';
import { entityScores, getEntities } from '../eval/metrics/seqeval.js';
import { exactMatchScore, f1Score, maxOverGroundTruths, normalizeAnswer, squadScores } from '../eval/metrics/squad.js';
import { entitiesToWordTags } from '../eval/ner-words.js';
import { mapBounded } from '../eval/pool.js';
import { selectItems } from '../eval/select.js';

const close = (actual: number, expected: number, message?: string) =>
  assert.ok(Math.abs(actual - expected) < 1e-9, `${message ?? ''} ${actual} vs ${expected}`);

test('SQuAD normalization: lower case, ASCII punctuation, articles, whitespace — in the official order', () => {
  assert.equal(normalizeAnswer('The Quick, Brown Fox!'), 'quick brown fox');
  assert.equal(normalizeAnswer('A man and an apple'), 'man and apple');
  // Only whole words are articles; "then", "theater", "another" stay.
  assert.equal(normalizeAnswer('then the theater, another'), 'then theater another');
  assert.equal(normalizeAnswer('the'), '');
  // Punctuation goes first, so "the-end" becomes one word and "U.S.A." becomes "usa".
  assert.equal(normalizeAnswer('the-end of U.S.A.'), 'theend of usa');
  // string.punctuation is ASCII: curly quotes and dashes stay, as in the official script.
  assert.equal(normalizeAnswer('“Zürich’s” — café'), '“zürich’s” — café');
  // Python's \b is Unicode-aware: "éthe" has no article in it; "the_x" neither (underscore is a word character,
  // but punctuation removal drops it first: "thex").
  assert.equal(normalizeAnswer('éthe x'), 'éthe x');
  assert.equal(normalizeAnswer('the_x'), 'thex');
  // Python str.split(): NBSP, ideographic space and U+001C separate words; a zero-width space does not.
  assert.equal(normalizeAnswer('new\u00a0york\u3000city\u001cnow'), 'new york city now');
  assert.equal(normalizeAnswer('new\u200byork'), 'new\u200byork');
});

test('SQuAD EM and F1: hand-computed token overlaps', () => {
  assert.equal(exactMatchScore('the Eiffel Tower.', 'Eiffel tower'), 1);
  assert.equal(exactMatchScore('Eiffel Tower in Paris', 'Eiffel tower'), 0);
  // pred [big, red, dog], gold [red, dog, house]: 2 shared, P = R = 2/3.
  close(f1Score('the big red dog', 'red dog house'), 2 / 3);
  // Counts are a multiset intersection: pred [x, x, y], gold [x, y, y] share one x and one y.
  close(f1Score('x x y', 'x y y'), 2 / 3);
  // P = 1, R = 1/3 → F1 = 0.5.
  close(f1Score('Zurich', 'the city of Zurich'), 0.5);
  assert.equal(f1Score('Paris', 'London'), 0);
});

test('SQuAD: maximum over several gold answers, empty predictions, average x100', () => {
  const golds = ['Denver Broncos', 'Broncos', 'the Denver Broncos'];
  assert.equal(maxOverGroundTruths(exactMatchScore, 'Denver Broncos', golds), 1);
  // "Broncos team" vs "Denver Broncos": P = R = 1/2 → 0.5; vs "Broncos": P = 1/2, R = 1 → 2/3. The max wins.
  close(maxOverGroundTruths(f1Score, 'Broncos team', golds), 2 / 3);
  // An empty prediction scores 0, except that against a gold answer normalizing to nothing it is an exact match —
  // yet F1 stays 0 (no shared token): the v1.1 script's behaviour.
  assert.equal(exactMatchScore('', 'Paris'), 0);
  assert.equal(f1Score('', 'Paris'), 0);
  assert.equal(exactMatchScore('', 'The'), 1);
  assert.equal(f1Score('', 'The'), 0);
  const scores = squadScores([
    { prediction: 'Denver Broncos', answers: golds },
    { prediction: 'Broncos team', answers: golds },
    { prediction: '', answers: ['Paris'] },
  ]);
  close(scores.exactMatch, 100 / 3);
  close(scores.f1, (100 * (1 + 2 / 3 + 0)) / 3);
  assert.equal(scores.questions, 3);
  assert.throws(() => squadScores([]), /no questions/);
});

test('seqeval get_entities: IOB2, a B- inside a run, an I- without B-, a type change, IOB1, IOBES', () => {
  assert.deepEqual(getEntities(['B-PER', 'I-PER', 'O', 'B-LOC']), [
    ['PER', 0, 1],
    ['LOC', 3, 3],
  ]);
  // A B- inside a run of the same type starts a second entity.
  assert.deepEqual(getEntities(['B-PER', 'I-PER', 'B-PER', 'I-PER']), [
    ['PER', 0, 1],
    ['PER', 2, 3],
  ]);
  // An I- after O (or at the start) starts an entity.
  assert.deepEqual(getEntities(['O', 'I-PER', 'I-PER', 'O', 'I-LOC']), [
    ['PER', 1, 2],
    ['LOC', 4, 4],
  ]);
  // A type change in the middle of an entity closes it and opens another.
  assert.deepEqual(getEntities(['B-PER', 'I-PER', 'I-LOC', 'I-LOC']), [
    ['PER', 0, 1],
    ['LOC', 2, 3],
  ]);
  // IOB1 (original CoNLL-2003): I- everywhere, B- only between two adjacent entities of the same type.
  assert.deepEqual(getEntities(['I-ORG', 'I-ORG', 'B-ORG', 'O', 'I-PER']), [
    ['ORG', 0, 1],
    ['ORG', 2, 2],
    ['PER', 4, 4],
  ]);
  assert.deepEqual(getEntities(['S-LOC', 'B-PER', 'E-PER', 'O', 'E-MISC']), [
    ['LOC', 0, 0],
    ['PER', 1, 2],
    ['MISC', 4, 4],
  ]);
  // Sentences are flattened with an O between them: an entity never runs across a sentence boundary.
  assert.deepEqual(getEntities([['B-PER'], ['I-PER']]), [
    ['PER', 0, 0],
    ['PER', 2, 2],
  ]);
  // seqeval's reading of a tag: type = everything after the first "-".
  assert.deepEqual(getEntities(['B-A-B', 'I-A-B']), [['A-B', 0, 1]]);
});

test('seqeval scores: micro P/R/F1 and per type, zero divisions give 0', () => {
  // seqeval's own docstring example: MISC is found with the wrong span, PER right → 0.5.
  const yTrue = [
    ['O', 'O', 'O', 'B-MISC', 'I-MISC', 'I-MISC', 'O'],
    ['B-PER', 'I-PER', 'O'],
  ];
  const yPred = [
    ['O', 'O', 'B-MISC', 'I-MISC', 'I-MISC', 'I-MISC', 'O'],
    ['B-PER', 'I-PER', 'O'],
  ];
  const scores = entityScores(yTrue, yPred);
  close(scores.micro.f1, 0.5);
  close(scores.micro.precision, 0.5);
  close(scores.micro.recall, 0.5);
  assert.deepEqual(Object.keys(scores.perType), ['MISC', 'PER']);
  assert.equal(scores.perType.MISC.f1, 0);
  assert.equal(scores.perType.PER.f1, 1);

  // 3 gold entities, 4 predicted, 2 right: P = 1/2, R = 2/3, F1 = 4/7. LOC is predicted only (support 0).
  const gold = [['B-PER', 'I-PER', 'O', 'B-ORG', 'O', 'B-PER']];
  // Predicted: PER(0,0) wrong span, ORG(3,3) right, LOC(4,4) wrong, and the I-PER after B-LOC starts PER(5,5), right.
  const pred = [['B-PER', 'O', 'O', 'B-ORG', 'B-LOC', 'I-PER']];
  const s = entityScores(gold, pred);
  close(s.micro.precision, 0.5);
  close(s.micro.recall, 2 / 3);
  close(s.micro.f1, 4 / 7);
  assert.deepEqual(
    { ...s.perType.LOC },
    { precision: 0, recall: 0, f1: 0, support: 0, predicted: 1, truePositives: 0 },
  );
  close(s.perType.PER.f1, 0.5); // 1 of 2 gold found, 1 of 2 predicted right
  // The same entities written in IOB1 and in IOB2 score 1.
  close(entityScores([['I-PER', 'I-PER', 'O', 'I-LOC']], [['B-PER', 'I-PER', 'O', 'B-LOC']]).micro.f1, 1);
  // Nothing gold, nothing predicted: all zero (seqeval's zero_division result), no types.
  assert.deepEqual(entityScores([['O']], [['O']]).micro.f1, 0);
  assert.throws(() => entityScores([['O']], [['O', 'O']]), /sentence 0/);
});

test('GLUE accuracy and F1 of class 1 (QQP / MRPC)', () => {
  // tp 2, fp 1, fn 1 → F1 = 4/6.
  close(accuracy([1, 1, 0, 0, 1], [1, 0, 0, 1, 1]), 3 / 5);
  close(binaryF1([1, 1, 0, 0, 1], [1, 0, 0, 1, 1]), 2 / 3);
  assert.equal(binaryF1([0, 0], [0, 0]), 0);
  // -1: the model predicted a label with no dataset class: always wrong.
  const scores = glueScores([0, 1, 1], [0, -1, 1], true);
  close(scores.accuracy, 200 / 3);
  close(scores.f1!, 100 * (2 / 3));
  assert.equal(glueScores([0], [0], false).f1, undefined);
});

test('label mapping: generic LABEL_i by index, named labels by name in any order', () => {
  const sst2 = ['negative', 'positive'];
  assert.deepEqual(mapLabels(['LABEL_0', 'LABEL_1'], sst2), {
    rule: 'index',
    classToModel: [0, 1],
    modelToClass: [0, 1],
  });
  assert.deepEqual(mapLabels(['NEGATIVE', 'POSITIVE'], sst2).classToModel, [0, 1]);
  assert.deepEqual(mapLabels(['POSITIVE', 'NEGATIVE'], sst2).classToModel, [1, 0]);
  assert.deepEqual(mapLabels(['neg', 'pos'], sst2).classToModel, [0, 1]);
  const mnli = ['entailment', 'neutral', 'contradiction'];
  assert.deepEqual(mapLabels(['CONTRADICTION', 'NEUTRAL', 'ENTAILMENT'], mnli).classToModel, [2, 1, 0]);
  assert.deepEqual(mapLabels(['NEGATIVE', 'POSITIVE'], mnli).classToModel, [-1, -1, -1]);
  assert.deepEqual(mapLabels(['not_duplicate', 'is_duplicate'], ['not_duplicate', 'duplicate']).classToModel, [0, 1]);
});

test('entities → one IOB2 tag per dataset word, by character offsets', () => {
  const words = ['Phil', 'Simmons', 'took', 'all-rounder', 'Leicestershire'];
  // text: "Phil Simmons took all-rounder Leicestershire"; Phil 0-4, Simmons 5-12, took 13-17, all-rounder 18-29.
  assert.deepEqual(
    entitiesToWordTags(words, [
      { entity_group: 'PER', start: 0, end: 12 },
      { entity_group: 'ORG', start: 30, end: 44 },
    ]),
    ['B-PER', 'I-PER', 'O', 'O', 'B-ORG'],
  );
  // A model entity covering part of a word ("all" of "all-rounder") tags the whole word; a second entity inside the
  // same word does not override it; two adjacent entities of one type stay two (B, B).
  assert.deepEqual(
    entitiesToWordTags(words, [
      { entity_group: 'MISC', start: 18, end: 21 },
      { entity_group: 'LOC', start: 22, end: 29 },
      { entity_group: 'PER', start: 0, end: 4 },
      { entity_group: 'PER', start: 5, end: 12 },
    ]),
    ['B-PER', 'B-PER', 'O', 'B-MISC', 'O'],
  );
  // Labels without an aggregated group (entity field), B-/I- prefixes stripped; O entities ignored.
  assert.deepEqual(
    entitiesToWordTags(
      ['a', 'b'],
      [
        { entity: 'B-LOC', start: 2, end: 3 },
        { entity_group: 'O', start: 0, end: 1 },
      ],
    ),
    ['O', 'B-LOC'],
  );
});

test('selection: first N, or a seeded random subset kept in file order', () => {
  const items = Array.from({ length: 100 }, (_, i) => i);
  assert.deepEqual(selectItems(items, { limit: 3, seed: 1 }), [0, 1, 2]);
  const a = selectItems(items, { sample: 10, seed: 5 });
  assert.equal(a.length, 10);
  assert.equal(new Set(a).size, 10);
  assert.deepEqual(
    a,
    [...a].sort((x, y) => x - y),
  );
  assert.deepEqual(selectItems(items, { sample: 10, seed: 5 }), a, 'same seed, same subset');
  assert.notDeepEqual(selectItems(items, { sample: 10, seed: 6 }), a);
  assert.deepEqual(selectItems(items, { sample: 1000, seed: 5 }), items);
});

test('bounded map: order kept, at most N in flight, stops on the first failure', async () => {
  let inFlight = 0;
  let peak = 0;
  const results = await mapBounded(
    Array.from({ length: 20 }, (_, i) => i),
    4,
    async (i) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((resolve) => setTimeout(resolve, 20 - i));
      inFlight--;
      return i * 2;
    },
  );
  assert.deepEqual(
    results,
    Array.from({ length: 20 }, (_, i) => i * 2),
  );
  assert.equal(peak, 4);
  const started: number[] = [];
  await assert.rejects(
    mapBounded(
      Array.from({ length: 50 }, (_, i) => i),
      2,
      async (i) => {
        started.push(i);
        await new Promise((resolve) => setTimeout(resolve, 1));
        if (i === 3) throw new Error('boom');
        return i;
      },
    ),
    /boom/,
  );
  assert.ok(started.length < 10, `stopped early (${started.length} started)`);
});
