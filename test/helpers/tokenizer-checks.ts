/** Assertions for the BERT tokenizer: ids equal the library's, offsets keep their invariants; plus readable views. */
import assert from 'node:assert/strict';
import type { BertTokenizer, TokenizedText } from '../../src/tasks/tokenizer.js';

export function libraryIds(tok: BertTokenizer, text: string): number[] {
  return tok.tokenizer.encode(text, { add_special_tokens: false }).ids as number[];
}

/** Word-final sigma depends on context, so a token's text alone may normalize to σ where the token has ς. */
const foldSigma = (s: string): string => s.replaceAll('ς', 'σ');

/**
 * Offsets invariants. Tokens whose spans overlap form a group (several pieces of one original character, e.g. jamo
 * of one Hangul syllable); overlaps must be exactly one character (plus characters that normalize to nothing). Each group's original text, normalized, must
 * equal the concatenated piece texts; an [UNK] covers exactly one pre-tokenized word.
 */
function checkOffsets(tok: BertTokenizer, text: string, r: TokenizedText): void {
  const where = (i: number): string => `token ${i} of ${JSON.stringify(text.slice(0, 120))}`;
  assert.equal(r.offsets.length, r.ids.length);
  assert.equal(r.wordIds.length, r.ids.length);
  const added = new Map<string, string>();
  for (const t of (tok.tokenizer as unknown as { added_tokens: { content: string }[] }).added_tokens) {
    added.set(t.content, tok.normalize(t.content));
  }
  let i = 0;
  let groupFloor = 0;
  while (i < r.ids.length) {
    // collect the group of tokens overlapping token i
    let j = i + 1;
    let groupEnd = r.offsets[i][1];
    while (j < r.ids.length && r.offsets[j][0] < groupEnd) {
      const [s, e] = r.offsets[j];
      const [ps, pe] = r.offsets[j - 1];
      assert.ok(s >= ps && e >= pe, `${where(j)}: offsets go backwards`);
      // the shared part is one character (plus characters that normalize to nothing, e.g. a stripped accent)
      const shared = [...text.slice(s, pe)].filter((ch) => tok.normalize(ch) !== '');
      assert.equal(shared.length, 1, `${where(j)}: overlaps the previous token by more than one character`);
      groupEnd = Math.max(groupEnd, e);
      j++;
    }
    const [start] = r.offsets[i];
    assert.ok(start >= groupFloor, `${where(i)}: overlaps an earlier token`);
    for (let k = i; k < j; k++) {
      const [s, e] = r.offsets[k];
      assert.ok(Number.isInteger(s) && Number.isInteger(e) && 0 <= s && s < e && e <= text.length, `${where(k)}`);
    }
    const pieces = r.ids.slice(i, j).map((id) => tok.idToToken(id)!);
    const original = text.slice(start, groupEnd);
    if (pieces.length === 1 && added.has(pieces[0]) && pieces[0] !== '[UNK]') {
      assert.ok(original === pieces[0] || tok.normalize(original) === added.get(pieces[0]), where(i));
    } else if (pieces.includes('[UNK]')) {
      assert.equal(pieces.length, 1, `${where(i)}: [UNK] shares characters with another token`);
      const word = tok.normalize(original).trim();
      assert.ok(word.length > 0 && !/\s/u.test(word), `${where(i)}: [UNK] covers ${JSON.stringify(original)}`);
      assert.ok(i === 0 || r.wordIds[i - 1] !== r.wordIds[i], `${where(i)}: [UNK] is not a whole word`);
      assert.ok(i + 1 >= r.ids.length || r.wordIds[i + 1] !== r.wordIds[i], `${where(i)}: [UNK] is not a whole word`);
    } else {
      const expected = pieces.map((p, k) => (k > 0 || r.wordIds[i] === r.wordIds[i - 1] ? p.replace(/^##/, '') : p));
      assert.equal(foldSigma(tok.normalize(original).trim()), foldSigma(expected.join('')), where(i));
    }
    groupFloor = groupEnd;
    i = j;
  }
  // word ids: start at 0, step by 0 or 1; a continuation of a word is a ## piece
  for (let k = 0; k < r.ids.length; k++) {
    const step = r.wordIds[k] - (k === 0 ? -1 : r.wordIds[k - 1]);
    assert.ok(step === 0 || step === 1, `${where(k)}: word id jumps`);
    const piece = tok.idToToken(r.ids[k])!;
    if (step === 0) assert.ok(piece.startsWith('##') || piece === '[UNK]', `${where(k)}: ${piece} continues a word`);
  }
}

export function checkText(tok: BertTokenizer, text: string): TokenizedText {
  const r = tok.tokenize(text);
  assert.deepEqual(r.ids, libraryIds(tok, text), `ids differ for ${JSON.stringify(text.slice(0, 200))}`);
  checkOffsets(tok, text, r);
  return r;
}

/** Tokens as `piece@original-slice` for readable expectations. */
export function show(tok: BertTokenizer, text: string): string[] {
  const r = tok.tokenize(text);
  return r.ids.map((id, i) => `${tok.idToToken(id)}@${text.slice(...r.offsets[i])}`);
}

/** Median wall time of `fn` over `runs` runs, after 20 warm-up calls. */
export function medianMs(fn: () => void, runs: number): number {
  for (let k = 0; k < 20; k++) fn();
  const times: number[] = [];
  for (let k = 0; k < runs; k++) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[times.length >> 1];
}
