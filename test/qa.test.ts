import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  bestAnswers,
  buildQaWindows,
  codePointOffsetsToUtf16,
  contextWindowRanges,
  topSpans,
  windowProbabilities,
  type QaWindow,
  type Span,
  type SpecialIds,
  type TokenizedText,
} from '../src/tasks/qa.js';

const SPECIAL: SpecialIds = { cls: 2, sep: 3, pad: 0 };
const E = Math.exp;

/** `count` words `${prefix}0 ${prefix}1 ...`, one token each, ids from `firstId`. */
function words(count: number, prefix: string, firstId: number): { text: string; tokens: TokenizedText } {
  const parts: string[] = [];
  const offsets: [number, number][] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    const word = `${prefix}${i}`;
    parts.push(word);
    offsets.push([at, at + word.length]);
    at += word.length + 1;
  }
  return { text: parts.join(' '), tokens: { ids: parts.map((_, i) => firstId + i), offsets } };
}

const question8 = words(8, 'q', 100).tokens;
const context50 = words(50, 'w', 1000);
const OPTS = { maxSeqLen: 24, maxQuestionLen: 8, docStride: 4 };

/** Logits for a window: `fill` everywhere, then `{ contextTokenIndex: logit }` (index into the whole context). */
function windowLogits(window: QaWindow, values: Record<number, number>, fill = 0, cls = 0): Float32Array {
  const out = new Float32Array(window.inputIds.length).fill(fill);
  out[0] = cls;
  for (const [token, logit] of Object.entries(values)) {
    const position = Number(token) - window.contextTokenOffset + window.contextTokenStart;
    assert.ok(position >= window.contextTokenStart && position < window.contextTokenStart + window.contextTokenCount);
    out[position] = logit;
  }
  return out;
}

describe('buildQaWindows', () => {
  test('50 context tokens, maxSeqLen 24, question 8, stride 4: HF window boundaries', () => {
    const windows = buildQaWindows(question8, context50.tokens, SPECIAL, OPTS);
    // Room for context: 24 - 8 - 3 = 13 tokens; windows advance by 13 - 4 = 9 (tokenizers' `max_len - stride`);
    // the window reaching token 50 is the last, shorter one.
    const expected: [number, number][] = [
      [0, 13],
      [9, 22],
      [18, 31],
      [27, 40],
      [36, 49],
      [45, 50],
    ];
    assert.deepEqual(
      windows.map((w) => [w.contextTokenOffset, w.contextTokenOffset + w.contextTokenCount]),
      expected,
    );
    const questionIds = [100, 101, 102, 103, 104, 105, 106, 107];
    windows.forEach((w, k) => {
      const [from, to] = expected[k];
      const contextIds = Array.from({ length: to - from }, (_, i) => 1000 + from + i);
      assert.deepEqual(w.inputIds, [2, ...questionIds, 3, ...contextIds, 3]);
      assert.equal(w.contextTokenStart, 10);
      assert.equal(w.inputIds.length, k < 5 ? 24 : 16);
      assert.deepEqual(w.tokenTypeIds, [...new Array(10).fill(0), ...new Array(to - from + 1).fill(1)]);
      assert.deepEqual(w.attentionMask, new Array(w.inputIds.length).fill(1));
    });
    // Consecutive windows share exactly docStride = 4 tokens: 9-12, 18-21, 27-30, 36-39, 45-48.
    for (let k = 1; k < windows.length; k++) {
      const prevEnd = windows[k - 1].contextTokenOffset + windows[k - 1].contextTokenCount;
      assert.equal(prevEnd - windows[k].contextTokenOffset, 4);
    }
    // Every context token is in at least one window; the last window ends at the context end.
    const covered = new Set<number>();
    for (const w of windows) for (let i = 0; i < w.contextTokenCount; i++) covered.add(w.contextTokenOffset + i);
    assert.equal(covered.size, 50);
    assert.equal(windows.at(-1)!.contextTokenOffset + windows.at(-1)!.contextTokenCount, 50);
  });

  test('question truncated to maxQuestionLen; a shorter question leaves more room per window', () => {
    const long = words(12, 'q', 100).tokens;
    const windows = buildQaWindows(long, context50.tokens, SPECIAL, OPTS);
    assert.equal(windows.length, 6);
    assert.deepEqual(windows[0].inputIds.slice(0, 10), [2, 100, 101, 102, 103, 104, 105, 106, 107, 3]);
    assert.equal(windows[0].contextTokenStart, 10);

    // 5 question tokens: room 24 - 5 - 3 = 16, step 12.
    const short = buildQaWindows(words(5, 'q', 100).tokens, context50.tokens, SPECIAL, OPTS);
    assert.deepEqual(
      short.map((w) => [w.contextTokenOffset, w.contextTokenCount, w.contextTokenStart]),
      [
        [0, 16, 7],
        [12, 16, 7],
        [24, 16, 7],
        [36, 14, 7],
      ],
    );
  });

  test('a context that fits gives one window', () => {
    const ctx = words(10, 'w', 1000).tokens;
    const [only, ...rest] = buildQaWindows(question8, ctx, SPECIAL, OPTS);
    assert.equal(rest.length, 0);
    assert.equal(only.inputIds.length, 8 + 2 + 10 + 1);
    assert.equal(only.contextTokenCount, 10);
    assert.equal(buildQaWindows(question8, words(13, 'w', 1000).tokens, SPECIAL, OPTS).length, 1);
    assert.deepEqual(
      buildQaWindows(question8, words(14, 'w', 1000).tokens, SPECIAL, OPTS).map((w) => [
        w.contextTokenOffset,
        w.contextTokenCount,
      ]),
      [
        [0, 13],
        [9, 5],
      ],
    );
    const empty = buildQaWindows(question8, { ids: [], offsets: [] }, SPECIAL, OPTS);
    assert.equal(empty.length, 1);
    assert.deepEqual(empty[0].inputIds, [2, 100, 101, 102, 103, 104, 105, 106, 107, 3, 3]);
  });

  test('errors: stride not below the window room (when splitting), question leaving no room', () => {
    assert.throws(() => buildQaWindows(question8, context50.tokens, SPECIAL, { ...OPTS, docStride: 13 }), /docStride/);
    assert.doesNotThrow(() => buildQaWindows(question8, words(13, 'w', 1).tokens, SPECIAL, { ...OPTS, docStride: 13 }));
    assert.throws(
      () => buildQaWindows(words(21, 'q', 1).tokens, context50.tokens, SPECIAL, { ...OPTS, maxQuestionLen: 64 }),
      /no room/,
    );
    assert.deepEqual(contextWindowRanges(7, 3, 1), [
      [0, 3],
      [2, 5],
      [4, 7],
    ]);
  });
});

describe('bestAnswers', () => {
  const windows = buildQaWindows(question8, context50.tokens, SPECIAL, OPTS);

  test('the best span in the last window wins; question and [SEP] logits are masked', () => {
    const logits = windows.map((w, k) => {
      if (k === 0) {
        const start = windowLogits(w, { 2: 4 });
        const end = windowLogits(w, { 3: 4 });
        start[3] = end[5] = 50; // question tokens: masked
        start[23] = end[23] = 50; // final [SEP]: masked
        return { start, end };
      }
      if (k === 5) return { start: windowLogits(w, { 47: 8 }), end: windowLogits(w, { 48: 8 }) };
      return { start: windowLogits(w, {}), end: windowLogits(w, {}) };
    });
    const [best, second] = bestAnswers(context50.text, context50.tokens, windows, logits, {
      topK: 2,
      maxAnswerLen: 15,
    });
    assert.equal(best.answer, 'w47 w48');
    assert.equal(best.answer, context50.text.slice(best.start, best.end));
    // Last window: [CLS] (logit 0) + 5 context tokens in the softmax.
    assert.ok(Math.abs(best.score - (E(8) / (E(8) + 5)) ** 2) < 1e-6);
    assert.equal(second.answer, 'w2 w3');
    // First window: [CLS] + 13 context tokens; the 50s on question / [SEP] contribute exp(-10000) = 0.
    assert.ok(Math.abs(second.score - (E(4) / (E(4) + 13)) ** 2) < 1e-6);
  });

  test('[CLS] is in the softmax denominator; handleImpossibleAnswer adds the empty answer', () => {
    const q = words(2, 'q', 100).tokens;
    const ctx = words(3, 'c', 1000);
    const [w] = buildQaWindows(q, ctx.tokens, SPECIAL, OPTS); // [CLS] q0 q1 [SEP] c0 c1 c2 [SEP]
    const start = new Float32Array([3, 20, 20, 20, 1, 0, 0, 20]);
    const end = new Float32Array([3, 20, 20, 20, 0, 1, 0, 20]);
    const D = E(3) + E(1) + 2;
    const spanScore = (E(1) / D) ** 2;
    const nullScore = (E(3) / D) ** 2;

    const plain = bestAnswers(ctx.text, ctx.tokens, [w], [{ start, end }], { topK: 2, maxAnswerLen: 15 });
    assert.equal(plain[0].answer, 'c0 c1');
    assert.ok(Math.abs(plain[0].score - spanScore) < 1e-6);
    assert.notEqual(plain[1].answer, '');

    const withNull = bestAnswers(ctx.text, ctx.tokens, [w], [{ start, end }], {
      topK: 2,
      maxAnswerLen: 15,
      handleImpossibleAnswer: true,
    });
    assert.deepEqual(
      withNull.map((a) => [a.answer, a.start, a.end]),
      [
        ['', 0, 0],
        ['c0 c1', 0, 5],
      ],
    );
    assert.ok(Math.abs(withNull[0].score - nullScore) < 1e-6);
    assert.ok(Math.abs(withNull[1].score - spanScore) < 1e-6);
  });

  test('answer text is the exact original text of a non-ASCII context', () => {
    const context = "Zürich's Café — naïve 北京 🤗 text";
    assert.equal(context.length, 32); // 🤗 is two UTF-16 code units
    const tokens: TokenizedText = {
      ids: [10, 11, 12, 13, 14, 15, 16, 17, 18, 19],
      // Zürich ' s Café — naïve 北 京 🤗 text
      offsets: [
        [0, 6],
        [6, 7],
        [7, 8],
        [9, 13],
        [14, 15],
        [16, 21],
        [22, 23],
        [23, 24],
        [25, 27],
        [28, 32],
      ],
    };
    const [w] = buildQaWindows(words(3, 'q', 100).tokens, tokens, SPECIAL, OPTS);
    const start = windowLogits(w, { 5: 6, 6: 5 }); // naïve, 北
    const end = windowLogits(w, { 7: 6, 8: 4.5 }); // 京, 🤗
    const answers = bestAnswers(context, tokens, [w], [{ start, end }], { topK: 4, maxAnswerLen: 15 });
    // Products: e^12, e^11, e^10.5, e^9.5 (over the same denominators).
    assert.deepEqual(
      answers.map((a) => [a.answer, a.start, a.end]),
      [
        ['naïve 北京', 16, 24],
        ['北京', 22, 24],
        ['naïve 北京 🤗', 16, 27],
        ['北京 🤗', 22, 27],
      ],
    );
    for (const a of answers) assert.equal(a.answer, context.slice(a.start, a.end));
    // [CLS] + 10 context tokens, two of them raised.
    const Ds = E(6) + E(5) + 9;
    const De = E(6) + E(4.5) + 9;
    assert.ok(Math.abs(answers[0].score - (E(6) / Ds) * (E(6) / De)) < 1e-6);
    assert.ok(Math.abs(answers[1].score - (E(5) / Ds) * (E(6) / De)) < 1e-6);
    assert.ok(Math.abs(answers[2].score - (E(6) / Ds) * (E(4.5) / De)) < 1e-6);
    assert.ok(Math.abs(answers[3].score - (E(5) / Ds) * (E(4.5) / De)) < 1e-6);

    // Python / HF offset_mapping counts code points: 🤗 is [25, 26), "text" [27, 31).
    const pythonOffsets: [number, number][] = tokens.offsets.map(([s, e], i) =>
      i < 8 ? [s, e] : i === 8 ? [25, 26] : [27, 31],
    );
    assert.deepEqual(codePointOffsetsToUtf16(context, pythonOffsets), tokens.offsets);
  });

  test('maxAnswerLen: end - start + 1 > maxAnswerLen is excluded', () => {
    const ctx = words(10, 'w', 1000);
    const [w] = buildQaWindows(question8, ctx.tokens, SPECIAL, OPTS);
    const logits = [{ start: windowLogits(w, { 1: 5 }), end: windowLogits(w, { 6: 5, 3: 2, 2: 1 }) }];
    const at = (maxAnswerLen: number) => bestAnswers(ctx.text, ctx.tokens, [w], logits, { topK: 1, maxAnswerLen })[0];
    assert.equal(at(6).answer, 'w1 w2 w3 w4 w5 w6'); // 6 tokens
    assert.equal(at(5).answer, 'w1 w2 w3');
    assert.equal(at(3).answer, 'w1 w2 w3');
    assert.equal(at(2).answer, 'w1 w2'); // e^6 beats (5, 6) and (6, 6) at e^5
    assert.equal(at(1).end - at(1).start, 2); // a single token ("w1" and "w6" tie at e^5)
    const Ds = E(5) + 10; // [CLS] + 10 context tokens
    const De = E(5) + E(2) + E(1) + 8;
    assert.ok(Math.abs(at(3).score - (E(5) / Ds) * (E(2) / De)) < 1e-6);
    assert.ok(Math.abs(at(6).score - (E(5) / Ds) * (E(5) / De)) < 1e-6);
  });

  test('top_k ordering and dedupe of a span seen by two overlapping windows', () => {
    // Windows 0 [0,13) and 1 [9,22) both see w10 w11; window 2 [18,31) holds w20 w21; windows 3-5 say "no answer".
    const logits = windows.map((w, k) => {
      if (k === 0) return { start: windowLogits(w, { 10: 5 }), end: windowLogits(w, { 11: 5 }) };
      if (k === 1) return { start: windowLogits(w, { 10: 6 }), end: windowLogits(w, { 11: 6 }) };
      if (k === 2) return { start: windowLogits(w, { 20: 4, 21: 1 }), end: windowLogits(w, { 21: 4 }) };
      return { start: windowLogits(w, {}, 0, 10), end: windowLogits(w, {}, 0, 10) };
    });
    const answers = bestAnswers(context50.text, context50.tokens, windows, logits, { topK: 4, maxAnswerLen: 2 });
    const D1 = E(6) + 13; // [CLS] + 13 context tokens
    const D2 = (E(4) + E(1) + 12) * (E(4) + 13);
    assert.deepEqual(
      answers.map((a) => a.answer),
      ['w10 w11', 'w20 w21', 'w21', 'w20'],
    );
    const expected = [E(12) / D1 ** 2, E(8) / D2, E(5) / D2, E(4) / D2];
    answers.forEach((a, i) => assert.ok(Math.abs(a.score - expected[i]) < 1e-6, `${a.answer}: ${a.score}`));
    // Window 0 scored w10 w11 lower, (e^5 / (e^5 + 13))^2: only the best of the two copies is kept.
    assert.ok(answers[0].score > (E(5) / (E(5) + 13)) ** 2 + 0.05);
    assert.equal(new Set(answers.map((a) => `${a.start}:${a.end}`)).size, answers.length);

    const all = bestAnswers(context50.text, context50.tokens, windows, logits, { topK: 500, maxAnswerLen: 2 });
    assert.equal(new Set(all.map((a) => `${a.start}:${a.end}`)).size, all.length);
    assert.equal(all.length, 50 + 49); // every 1- and 2-token span of the context, once
    for (let i = 1; i < all.length; i++) assert.ok(all[i - 1].score >= all[i].score);
  });
});

describe('topSpans', () => {
  /** mulberry32 */
  function rng(seed: number): () => number {
    let a = seed >>> 0;
    return () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  const order = (a: Span, b: Span) => b.score - a.score || a.start - b.start || a.end - b.end;

  /** Every (start, end) pair of the window: O(S^2). */
  function bruteForce(pS: Float64Array, pE: Float64Array, from: number, to: number, k: number, maxLen: number) {
    const all: Span[] = [];
    for (let s = from; s < to; s++) {
      for (let e = from; e < to; e++) {
        if (e >= s && e - s + 1 <= maxLen) all.push({ start: s, end: e, score: pS[s] * pE[e] });
      }
    }
    return all.sort(order).slice(0, k);
  }

  /** Top-N without widening: what a naive implementation returns. */
  function naiveTopN(pS: Float64Array, pE: Float64Array, from: number, to: number, k: number, maxLen: number) {
    const rank = (p: Float64Array) =>
      Array.from({ length: to - from }, (_, i) => from + i)
        .sort((a, b) => p[b] - p[a])
        .slice(0, 20);
    const spans: Span[] = [];
    for (const s of rank(pS)) {
      for (const e of rank(pE))
        if (e >= s && e - s + 1 <= maxLen) spans.push({ start: s, end: e, score: pS[s] * pE[e] });
    }
    return spans.sort(order).slice(0, k);
  }

  test('same spans as the O(S^2) search on 200 seeded random logit vectors', () => {
    const random = rng(20240601);
    let naiveMisses = 0;
    for (let trial = 0; trial < 200; trial++) {
      const length = 16 + Math.floor(random() * 300);
      const questionLen = 1 + Math.floor(random() * 10);
      const count = length - questionLen - 3;
      const window: QaWindow = {
        inputIds: new Array(length).fill(1),
        tokenTypeIds: new Array(length).fill(0),
        attentionMask: new Array(length).fill(1),
        contextTokenStart: questionLen + 2,
        contextTokenOffset: 0,
        contextTokenCount: count,
      };
      const scale = 1 + random() * 8;
      // One trial in four is adversarial: likely starts at the end of the context, likely ends at its beginning.
      const adversarial = trial % 4 === 3;
      const start = new Float32Array(length);
      const end = new Float32Array(length);
      for (let i = 0; i < length; i++) {
        const slope = adversarial ? (12 * i) / length : 0;
        start[i] = (random() * 2 - 1) * scale + slope;
        end[i] = (random() * 2 - 1) * scale - slope;
      }
      const pS = windowProbabilities(window, start);
      const pE = windowProbabilities(window, end);
      const from = window.contextTokenStart;
      const to = from + count;
      const topK = 1 + Math.floor(random() * 5);
      const maxLen = 1 + Math.floor(random() * 40);

      const expected = bruteForce(pS, pE, from, to, topK, maxLen);
      const got = topSpans(pS, pE, from, to, topK, maxLen);
      assert.deepEqual(
        got.map((s) => [s.start, s.end]),
        expected.map((s) => [s.start, s.end]),
        `trial ${trial}`,
      );
      got.forEach((s, i) => assert.equal(s.score, expected[i].score));
      // Starting from a single candidate forces the widening path.
      assert.deepEqual(topSpans(pS, pE, from, to, topK, maxLen, 1), got, `trial ${trial} (n = 1)`);
      const naive = naiveTopN(pS, pE, from, to, topK, maxLen);
      if (naive.length !== expected.length || naive.some((s, i) => s.start !== expected[i].start)) naiveMisses++;
    }
    // The adversarial trials do defeat a top-20 search without widening.
    assert.ok(naiveMisses > 0);
  });

  test('no valid span: empty context range', () => {
    const p = new Float64Array([1, 0, 0]);
    assert.deepEqual(topSpans(p, p, 1, 1, 3, 15), []);
    assert.equal(topSpans(p, p, 0, 3, 10, 15).length, 6);
  });
});
