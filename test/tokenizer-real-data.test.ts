import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { BertTokenizer } from '../src/tasks/tokenizer.js';
import { checkText, medianMs, show } from './helpers/tokenizer-checks.js';
import { fuzzStrings, TRICKY } from './helpers/tokenizer-strings.js';

const SHARED = join(import.meta.dirname, '..', '..', 'shared');
const TOKENIZERS = join(SHARED, 'tokenizers');
const SQUAD = join(SHARED, 'data', 'squad-v1.1', 'dev-v1.1.json');
const SST2 = join(SHARED, 'data', 'glue-sst2', 'dev.tsv');
const CONLL = join(SHARED, 'data', 'conll2003', 'valid.txt');
const REAL_NAMES = ['bert-base-uncased', 'bert-base-cased', 'distilbert-base-uncased'] as const;
const skipReal = (path: string): string | false =>
  existsSync(path) ? false : `${path} is absent (../shared is not on this machine)`;

// ---- tests: real tokenizers and data (../shared) ----------------------------------------------------------------

function loadReal(name: string): BertTokenizer {
  return BertTokenizer.fromFiles(join(TOKENIZERS, name));
}

function squadTexts(): { contexts: string[]; questions: string[] } {
  const squad = JSON.parse(readFileSync(SQUAD, 'utf8')) as {
    data: { paragraphs: { context: string; qas: { question: string }[] }[] }[];
  };
  const contexts: string[] = [];
  const questions: string[] = [];
  for (const article of squad.data) {
    for (const paragraph of article.paragraphs) {
      contexts.push(paragraph.context);
      for (const qa of paragraph.qas) questions.push(qa.question);
    }
  }
  return { contexts, questions };
}

for (const name of REAL_NAMES) {
  test(`${name}: tricky and random strings`, { skip: skipReal(join(TOKENIZERS, name)) }, () => {
    const tok = loadReal(name);
    for (const text of TRICKY) checkText(tok, text);
    for (const text of fuzzStrings(1000, 3)) checkText(tok, text);
  });
}

test('bert-base-uncased: real-vocabulary offsets', { skip: skipReal(join(TOKENIZERS, 'bert-base-uncased')) }, () => {
  const tok = loadReal('bert-base-uncased');
  assert.deepEqual([tok.padId, tok.unkId, tok.clsId, tok.sepId, tok.maskId], [0, 100, 101, 102, 103]);
  assert.deepEqual(show(tok, 'Ångström naïve Café'), ['ang@Ång', '##strom@ström', 'naive@naïve', 'cafe@Café']);
  // one Hangul syllable decomposes into jamo pieces: each covers the whole syllable
  const r = checkText(tok, '한국');
  assert.deepEqual(r.offsets, [
    [0, 1],
    [0, 1],
    [0, 1],
    [1, 2],
    [1, 2],
    [1, 2],
  ]);
});

for (const name of ['bert-base-uncased', 'bert-base-cased'] as const) {
  test(
    `${name}: SQuAD v1.1 dev contexts and questions`,
    { skip: skipReal(join(TOKENIZERS, name)) || skipReal(SQUAD) },
    (t) => {
      const tok = loadReal(name);
      const { contexts, questions } = squadTexts();
      for (const text of contexts.slice(0, 300)) checkText(tok, text);
      for (const text of questions.slice(0, 3000)) checkText(tok, text);

      const long = contexts.filter((c) => c.length >= 1800 && c.length <= 2200).slice(0, 10);
      const medians = long.map((c) => medianMs(() => tok.tokenize(c), 50));
      const median = medians.sort((a, b) => a - b)[medians.length >> 1];
      t.diagnostic(`${name}: ${long.length} SQuAD contexts of ~2,000 chars, median ${median.toFixed(3)} ms`);
      assert.ok(median < 5, `median ${median} ms`);
    },
  );
}

test(
  'bert-base-uncased: SST-2 dev and CoNLL-2003 valid sentences',
  { skip: skipReal(join(TOKENIZERS, 'bert-base-uncased')) || skipReal(SST2) || skipReal(CONLL) },
  () => {
    const tok = loadReal('bert-base-uncased');
    const sst = readFileSync(SST2, 'utf8').split('\n').slice(1).filter(Boolean);
    for (const line of sst) checkText(tok, line.split('\t')[0]);
    const sentences: string[] = [];
    let words: string[] = [];
    for (const line of readFileSync(CONLL, 'utf8').split('\n')) {
      const word = line.split(' ')[0];
      if (!word || word === '-DOCSTART-') {
        if (words.length) sentences.push(words.join(' '));
        words = [];
      } else words.push(word);
    }
    for (const sentence of sentences.slice(0, 1000)) checkText(tok, sentence);
  },
);
