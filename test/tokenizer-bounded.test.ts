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

/** The least of `runs` timings of `work`: the figure a busy machine's preemptions inflate least. */
function fastestMs(runs: number, work: () => void): number {
  let fastest = Infinity;
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    work();
    fastest = Math.min(fastest, performance.now() - started);
  }
  return fastest;
}

test('WordPiece: long unknown words cost O(word x longest entry), not the library cubic time', (t) => {
  const [, tok] = tokenizers().at(-1)!;
  let seed = 7;
  const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const word = (n: number) =>
    Array.from({ length: n }, () => String.fromCharCode(97 + Math.floor(rand() * 26))).join('');
  // The same 15,000 letters as 300 words of 50 and as 150 words of 100 (WordPiece's longest word; longer ones are
  // [UNK] at once): linear in the word, both cost about the same; the library's own WordPiece takes about 3 times
  // as long on the longer words, and some 300 times as long as ours on either. Fastest of a few runs, so a busy
  // machine does not decide it.
  const short = Array.from({ length: 300 }, () => word(50)).join(' ');
  const long = Array.from({ length: 150 }, () => word(100)).join(' ');
  assert.deepEqual(tok.tokenize(short).ids, libraryIds(tok, short));
  let libraryLongIds: number[] = [];
  const libraryMs = fastestMs(1, () => (libraryLongIds = libraryIds(tok, long)));
  assert.deepEqual(tok.tokenize(long).ids, libraryLongIds);
  const shortMs = fastestMs(5, () => tok.tokenize(short));
  const longMs = fastestMs(5, () => tok.tokenize(long));
  t.diagnostic(
    `15,000 letters as 50-letter words ${shortMs.toFixed(1)} ms, as 100-letter words ${longMs.toFixed(1)} ms ` +
      `(the library: ${libraryMs.toFixed(0)} ms)`,
  );
  assert.ok(longMs < 2 * shortMs, `100-letter words ${longMs.toFixed(1)} ms, 50-letter ${shortMs.toFixed(1)} ms`);
  assert.ok(longMs * 10 < libraryMs, `ours ${longMs.toFixed(1)} ms, the library ${libraryMs.toFixed(0)} ms`);
});

/** Runs `work` while a setImmediate chain counts the event-loop turns other work gets meanwhile. */
async function turnsDuring<T>(work: () => Promise<T>): Promise<{ result: T; turns: number }> {
  let turns = 0;
  let running = true;
  const tick = () => {
    if (!running) return;
    turns++;
    setImmediate(tick);
  };
  setImmediate(tick);
  try {
    const result = await work();
    return { result, turns };
  } finally {
    running = false;
  }
}

// Each word is one letter and a space, so every chunk of the incremental tokenizer is exactly chunkChars long.
const hugeText = Array.from({ length: 480_000 }, (_, i) => 'abcdefghij'[i % 10]).join(' ');

test('tokenizeAsync: a 1 MB text is tokenized chunk by chunk, yielding to the event loop once a slice has run', async (t) => {
  const [, tok] = tokenizers().at(-1)!;
  const text = hugeText;
  const chunks = Math.ceil(text.length / tok.chunkChars);
  const whole = tok.tokenize(text);
  assert.equal(whole.ids.length, 480_000);

  // A slice of 0 ms yields after every chunk: other work runs between any two chunks.
  const everyChunk = await turnsDuring(() => tok.tokenizeAsync(text, Infinity, 0));
  assert.deepEqual(plain(everyChunk.result), whole);
  assert.ok(everyChunk.result.complete);
  assert.ok(
    everyChunk.turns >= chunks - 1 && everyChunk.turns <= chunks + 1,
    `${everyChunk.turns} event-loop turns for ${chunks} chunks`,
  );

  // The slice is time, not chunks: on a clock where each chunk takes 1 ms, a 5 ms slice is 5 chunks, then a turn.
  let clock = 0;
  const now = t.mock.method(performance, 'now', () => clock++);
  let sliced: Awaited<ReturnType<typeof turnsDuring<Awaited<ReturnType<BertTokenizer['tokenizeAsync']>>>>>;
  try {
    sliced = await turnsDuring(() => tok.tokenizeAsync(text, Infinity, 5));
  } finally {
    now.mock.restore();
  }
  assert.deepEqual(plain(sliced.result), whole);
  const slices = Math.floor(chunks / 5);
  assert.ok(
    Math.abs(sliced.turns - slices) <= 1,
    `${sliced.turns} event-loop turns for ${chunks} chunks in 5 ms slices of 1 ms chunks (expected ${slices})`,
  );

  // On the real clock, with the default slice: many turns, and no long block even on a busy machine (the tight
  // figure is a diagnostic here).
  tok.tokenize(text.slice(0, 50_000)); // warm up
  const real = await turnsDuring(() => longestBlock(() => tok.tokenizeAsync(text, Infinity)));
  const { result: full, blockMs: longest, wallMs: wall } = real.result;
  t.diagnostic(
    `1 MB, ${full.ids.length} tokens: ${full.busyMs.toFixed(0)} ms busy in ${wall.toFixed(0)} ms, ` +
      `${real.turns} event-loop turns, longest event-loop block ${longest.toFixed(1)} ms`,
  );
  assert.deepEqual(plain(full), whole);
  assert.ok(real.turns >= 5, `only ${real.turns} event-loop turns in ${full.busyMs.toFixed(0)} ms of tokenization`);
  assert.ok(longest < 1000, `event loop blocked for ${longest.toFixed(1)} ms`);
});

test('tokenizeUpTo and tokenizeAsync: a limit stops a 1 MB text within its first chunk', async (t) => {
  const [, tok] = tokenizers().at(-1)!;
  const text = hugeText;
  const whole = tok.tokenize(text);
  const bounded = tok.tokenizeUpTo(text, 64);
  assert.ok(!bounded.complete && bounded.ids.length === 65);
  assert.deepEqual(bounded.ids, whole.ids.slice(0, 65));
  // Yielding after every chunk, the bounded run gives the event loop at most one turn: it read one chunk.
  const viaAsync = await turnsDuring(() => tok.tokenizeAsync(text, 64, 0));
  assert.deepEqual(plain(viaAsync.result), plain(bounded));
  assert.ok(viaAsync.turns <= 1, `${viaAsync.turns} event-loop turns: more than the first chunk was tokenized`);
  // And in time: far below the whole text (fastest of a few runs, so a busy machine does not decide it).
  const boundedMs = fastestMs(5, () => tok.tokenizeUpTo(text, 64));
  const wholeMs = fastestMs(2, () => tok.tokenizeUpTo(text, Infinity));
  t.diagnostic(`the 1 MB text up to 64 tokens: ${boundedMs.toFixed(2)} ms; whole: ${wholeMs.toFixed(0)} ms`);
  assert.ok(boundedMs * 20 < wholeMs, `up to 64 tokens ${boundedMs.toFixed(2)} ms, whole ${wholeMs.toFixed(0)} ms`);
});
