/**
 * The bounded, incremental tokenizer behind the request limits: chunked normalization gives exactly the tokens of the
 * whole-text path, `tokenizeUpTo` stops just past its limit with a prefix of the full result, WordPiece is no longer
 * cubic in the word, and `tokenizeAsync` yields to the event loop.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { bertTokenizerJson } from '../conversion/checkpoint/tokenizer-files.js';
import { BertTokenizer, type TokenizedText } from '../src/tasks/tokenizer.js';
import { libraryIds } from './helpers/tokenizer-checks.js';
import { fuzzStrings, TRICKY } from './helpers/tokenizer-strings.js';
import { longestBlock } from './helpers/event-loop.js';

const REAL = join(import.meta.dirname, '..', '..', 'shared', 'tokenizers', 'bert-base-uncased');

function syntheticVocab(): string[] {
  const vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
  for (const ch of 'abcdefghijklmnoprstuvwxyz0123456789.,!?\'"-()éσςα中文') vocab.push(ch, `##${ch}`);
  vocab.push('the', 'token', '##izer', 'cafe', 'state', '##ment', 'hello', 'world');
  return vocab;
}

function tokenizers(): [string, BertTokenizer][] {
  const uncased = bertTokenizerJson(syntheticVocab(), true) as { model: Record<string, unknown> };
  const fused = structuredClone(uncased);
  fused.model.fuse_unk = true;
  const list: [string, BertTokenizer][] = [
    ['synthetic uncased', new BertTokenizer(uncased as Record<string, unknown>)],
    ['synthetic cased', new BertTokenizer(bertTokenizerJson(syntheticVocab(), false) as Record<string, unknown>)],
    ['synthetic fuse_unk', new BertTokenizer(fused as Record<string, unknown>)],
  ];
  if (existsSync(REAL)) list.push(['bert-base-uncased', BertTokenizer.fromFiles(REAL)]);
  return list;
}

const plain = (r: TokenizedText): TokenizedText => ({ ids: r.ids, offsets: r.offsets, wordIds: r.wordIds });

const texts = [
  ...TRICKY,
  ...fuzzStrings(300, 11),
  'ΟΔΟΣ ΟΔΟΣ. ΣΑΣ, Σ ΑΣ',
  `${'a '.repeat(40)}Σ${'\u0301'.repeat(30)} ${'.'.repeat(20)}\u200b\u200bx`,
  'q.q.q.q,q!q?q-q(q)q'.repeat(20),
  '中文中文 中 文'.repeat(15),
];

for (const [name, tok] of tokenizers()) {
  test(`${name}: chunked tokenization equals the whole text in one go, at every chunk size`, () => {
    for (const text of texts) {
      tok.chunkChars = 1 << 30;
      const whole = tok.tokenize(text);
      assert.deepEqual(whole.ids, libraryIds(tok, text), `library ids of ${JSON.stringify(text.slice(0, 60))}`);
      for (const size of [1, 2, 3, 7, 16]) {
        tok.chunkChars = size;
        assert.deepEqual(tok.tokenize(text), whole, `chunk ${size}: ${JSON.stringify(text.slice(0, 60))}`);
      }
    }
    tok.chunkChars = 4096;
  });

  test(`${name}: tokenizeUpTo stops just past its limit with a prefix of the full tokens`, async () => {
    tok.chunkChars = 5;
    for (const text of texts.slice(0, 120)) {
      const whole = tok.tokenize(text);
      for (const limit of [0, 1, 3, 10, whole.ids.length - 1, whole.ids.length]) {
        if (limit < 0) continue;
        const bounded = tok.tokenizeUpTo(text, limit);
        assert.equal(bounded.complete, whole.ids.length <= limit);
        if (bounded.complete) assert.deepEqual(plain(bounded), whole);
        else {
          assert.ok(bounded.ids.length > limit);
          // Stopped after the word that crossed the limit: nothing past that word was produced.
          const lastWord = bounded.wordIds[limit];
          assert.ok(bounded.wordIds.every((w) => w <= lastWord));
          assert.deepEqual(bounded.ids, whole.ids.slice(0, bounded.ids.length));
          // Offsets of a fused [UNK] may still grow in the full run; every other offset is final.
          assert.deepEqual(bounded.offsets.slice(0, -1), whole.offsets.slice(0, bounded.ids.length - 1));
        }
        const viaAsync = await tok.tokenizeAsync(text, limit, 0);
        assert.deepEqual(plain(viaAsync), plain(bounded));
        assert.equal(viaAsync.complete, bounded.complete);
      }
    }
    tok.chunkChars = 4096;
  });
}

test('WordPiece: long unknown words cost O(word x longest entry), not the library cubic time', (t) => {
  const [, tok] = tokenizers().at(-1)!;
  let seed = 7;
  const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const word = (n: number) =>
    Array.from({ length: n }, () => String.fromCharCode(97 + Math.floor(rand() * 26))).join('');
  const text = Array.from({ length: 150 }, () => word(100)).join(' ');
  tok.tokenize(word(100)); // warm up
  const started = performance.now();
  const result = tok.tokenize(text);
  const ms = performance.now() - started;
  t.diagnostic(`150 random 100-letter words (15 KB, ${result.ids.length} tokens): ${ms.toFixed(1)} ms`);
  assert.deepEqual(result.ids, libraryIds(tok, text));
  assert.ok(ms < 150, `${ms.toFixed(0)} ms (the library's own WordPiece takes ~250 ms)`);
});

test('tokenizeAsync: a 1 MB text never blocks the event loop for long, and a limit stops it at once', async (t) => {
  const [, tok] = tokenizers().at(-1)!;
  const text = Array.from({ length: 480_000 }, (_, i) => 'abcdefghij'[i % 10]).join(' ');
  tok.tokenize(text.slice(0, 50_000)); // warm up
  const { result: full, blockMs: longest, wallMs: wall } = await longestBlock(() => tok.tokenizeAsync(text, Infinity));
  t.diagnostic(
    `1 MB, ${full.ids.length} tokens: ${full.busyMs.toFixed(0)} ms busy in ${wall.toFixed(0)} ms, ` +
      `longest event-loop block ${longest.toFixed(1)} ms`,
  );
  assert.ok(full.complete && full.ids.length === 480_000);
  assert.ok(longest < 50, `event loop blocked for ${longest.toFixed(1)} ms`);
  const bounded = tok.tokenizeUpTo(text, 64);
  t.diagnostic(`the same text up to 64 tokens: ${bounded.busyMs.toFixed(2)} ms`);
  assert.ok(!bounded.complete && bounded.ids.length === 65);
  assert.ok(bounded.busyMs < 10, `${bounded.busyMs.toFixed(1)} ms`);
});
