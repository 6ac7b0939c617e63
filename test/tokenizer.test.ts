import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { BertTokenizer, type TokenizedText } from '../src/tasks/tokenizer.js';

const SHARED = join(import.meta.dirname, '..', '..', 'shared');
const TOKENIZERS = join(SHARED, 'tokenizers');
const SQUAD = join(SHARED, 'data', 'squad-v1.1', 'dev-v1.1.json');
const SST2 = join(SHARED, 'data', 'glue-sst2', 'dev.tsv');
const CONLL = join(SHARED, 'data', 'conll2003', 'valid.txt');
const REAL_NAMES = ['bert-base-uncased', 'bert-base-cased', 'distilbert-base-uncased'] as const;
const skipReal = (path: string): string | false =>
  existsSync(path) ? false : `${path} is absent (../shared is not on this machine)`;

// ---- strings ----------------------------------------------------------------------------------------------------

const LONG_WORD = 'pneumonoultramicroscopic'.repeat(5); // 120 chars > max_input_chars_per_word (100)

const TRICKY = [
  '',
  '   \t\n ',
  'Hello World',
  'HeLLo WoRLD, MiXeD CaSe!',
  'Ångström naïve café',
  'Café CAFÉ cafe\u0301 Cafe\u0301s', // precomposed and decomposed accents
  '...!!!???--;;:)(][',
  "don't won't y'all",
  'state-of-the-art well-known e-mail',
  'multiple   spaces\t\ttabs\n\nnewlines\r\n end',
  'control\u0000chars\u0001here\u0007 and\u007f del \ufffd replacement',
  'zero\u200bwidth soft\u00adhyphen bom\ufeffinside',
  'I ❤️ 🤗 tokens',
  '👩‍👩‍👧 family 🦄 unicorn',
  '北京大学 is in 北京',
  '日本語のテキスト and 한국어 text',
  'numbers 3.14 and 1,000,000 and 42%',
  `a ${LONG_WORD} word`,
  'tokenizers tokenizer tokens',
  'Fill in [MASK] please[SEP]and [UNK] [CLS]x[PAD] [mask] [MAS',
  '«quoted» “curly” ‘single’ — dash … ellipsis ¿qué? ¡sí!',
  "ΟΔΟΣ ΑΣ.Β ΑΣ' Σ ΑΣ\u0301 ΑΣ\u0001Β ὈΔΥΣΣΕΎΣ",
  'İstanbul straße STRASSE ﬁne',
  'lone \ud800 surrogate \udc00 halves',
  'astral 𠀀𠀁 cjk ext-b 𝐁𝐨𝐥𝐝',
  'nbsp\u00a0ideographic\u3000space\u2028line',
  '<Ent> entity <ENT>',
];

// ---- synthetic tokenizers (always available) ----------------------------------------------------------------------

const SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
const WORDS = ['hello', 'world', 'the', 'token', '##izer', '##s', 'cafe', 'naive', 'ang', '##strom', 'don', 'state'];
const UNKNOWN_CHARS = new Set(['🦄', 'q', 'Q']);

function syntheticJson(lowercase: boolean): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  const add = (token: string): void => {
    if (!(token in vocab)) vocab[token] = Object.keys(vocab).length;
  };
  SPECIALS.forEach(add);
  WORDS.forEach(add);
  const chars = new Set<string>(['ς', 'σ']);
  for (const text of TRICKY) {
    for (const ch of text) chars.add(ch);
    for (const ch of text
      .toLowerCase()
      .normalize('NFD')
      .replace(/\p{Mn}/gu, ''))
      chars.add(ch);
  }
  for (const ch of chars) {
    if (UNKNOWN_CHARS.has(ch) || /\s/u.test(ch)) continue;
    add(ch);
    add(`##${ch}`);
  }
  const added = SPECIALS.map((content) => ({
    id: vocab[content],
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  // One normalized, non-special added token: exercises matching after normalization.
  vocab['<Ent>'] = Object.keys(vocab).length;
  added.push({ ...added[0], id: vocab['<Ent>'], content: '<Ent>', normalized: true, special: false });
  return {
    version: '1.0',
    added_tokens: added,
    normalizer: {
      type: 'BertNormalizer',
      clean_text: true,
      handle_chinese_chars: true,
      strip_accents: null,
      lowercase,
    },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: null,
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: '[UNK]',
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab,
    },
  };
}

const synthetic = {
  uncased: new BertTokenizer(syntheticJson(true)),
  cased: new BertTokenizer(syntheticJson(false), { do_lower_case: false }),
};

// ---- checks -------------------------------------------------------------------------------------------------------

function libraryIds(tok: BertTokenizer, text: string): number[] {
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

function checkText(tok: BertTokenizer, text: string): TokenizedText {
  const r = tok.tokenize(text);
  assert.deepEqual(r.ids, libraryIds(tok, text), `ids differ for ${JSON.stringify(text.slice(0, 200))}`);
  checkOffsets(tok, text, r);
  return r;
}

/** Tokens as `piece@original-slice` for readable expectations. */
function show(tok: BertTokenizer, text: string): string[] {
  const r = tok.tokenize(text);
  return r.ids.map((id, i) => `${tok.idToToken(id)}@${text.slice(...r.offsets[i])}`);
}

function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FUZZ_PARTS = [
  ...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789',
  ' ',
  ' ',
  ' ',
  '\t',
  '\n',
  '\r\n',
  '\u00a0',
  '\u3000',
  '\u2028',
  ...'.,;:!?\'"-()[]{}#@&*/\\_^`~|<>+=$%',
  '¿',
  '«',
  '»',
  '—',
  '…',
  '·',
  '§',
  'é',
  'É',
  'ü',
  'ñ',
  'Å',
  'ø',
  'ß',
  'ẞ',
  'İ',
  'ı',
  'ﬁ',
  'Σ',
  'ΑΣ',
  'σ',
  'ς',
  'ῼ',
  'ǅ',
  '\u0301',
  '\u0308',
  '\u0345',
  '🤗',
  '❤️',
  '👩‍👩‍👧',
  '🦄',
  '𝐁',
  '𠀀',
  '\ud800',
  '\udc00',
  '北',
  '京',
  '日本',
  'カタ',
  'ひら',
  '한국',
  '가',
  'مرحبا',
  'नमस्ते',
  'ไทย',
  'Ελλάδα',
  'Москва',
  '\u0000',
  '\u0001',
  '\u007f',
  '\u0085',
  '\u00ad',
  '\u200b',
  '\u200d',
  '\ufeff',
  '\ufffd',
  '\ue000',
  '[MASK]',
  '[SEP',
  'CLS]',
  '[UNK]',
  '##',
  'the',
  'token',
  'izer',
  'Café',
  "n't",
  '3.14',
];

function fuzzStrings(count: number, seed: number): string[] {
  const rand = mulberry32(seed);
  const out: string[] = [];
  for (let n = 0; n < count; n++) {
    const parts = 1 + Math.floor(rand() * 40);
    let s = '';
    for (let k = 0; k < parts; k++) s += FUZZ_PARTS[Math.floor(rand() * FUZZ_PARTS.length)];
    if (rand() < 0.05) s += ' ' + 'x'.repeat(95 + Math.floor(rand() * 10));
    out.push(s);
  }
  return out;
}

// ---- tests: synthetic tokenizers ------------------------------------------------------------------------------------

for (const [name, tok] of Object.entries(synthetic)) {
  test(`synthetic ${name}: ids equal the library's and offsets are exact on tricky strings`, () => {
    for (const text of TRICKY) checkText(tok, text);
  });

  test(`synthetic ${name}: random strings (seeded) match the library and keep the offset invariants`, () => {
    for (const text of fuzzStrings(1500, name === 'uncased' ? 1 : 2)) checkText(tok, text);
  });
}

test('synthetic uncased: offsets cover the original spelling', () => {
  const tok = synthetic.uncased;
  assert.deepEqual(show(tok, 'Café'), ['cafe@Café']);
  // decomposed accent: the stripped combining mark belongs to the piece before it
  assert.deepEqual(show(tok, 'cafe\u0301!'), ['cafe@cafe\u0301', '!@!']);
  assert.deepEqual(show(tok, 'Tokenizers'), ['token@Token', '##izer@izer', '##s@s']);
  assert.deepEqual(show(tok, 'Ångström'), ['ang@Ång', '##strom@ström']);
  assert.deepEqual(show(tok, '北京 大学'), ['北@北', '京@京', '大@大', '学@学']);
  assert.deepEqual(show(tok, 'a 🤗 b'), ['a@a', '🤗@🤗', 'b@b']);
  assert.deepEqual(show(tok, 'x🦄y z'), ['[UNK]@x🦄y', 'z@z']);
  assert.deepEqual(show(tok, `${LONG_WORD}.`), [`[UNK]@${LONG_WORD}`, '.@.']);
  assert.deepEqual(show(tok, "don't"), ['don@don', "'@'", 't@t']);
  assert.deepEqual(show(tok, 'a\u0001b c'), ['a@a\u0001', '##b@b', 'c@c']);
  assert.deepEqual(show(tok, 'Hi [MASK]!'), ['h@H', '##i@i', '[MASK]@[MASK]', '!@!']);
  assert.deepEqual(show(tok, 'x<ENT>y'), ['x@x', '<Ent>@<ENT>', 'y@y']);
  assert.deepEqual(show(tok, 'ΟΔΟΣ ΑΣ.Β'), ['ο@Ο', '##δ@Δ', '##ο@Ο', '##ς@Σ', 'α@Α', '##σ@Σ', '.@.', 'β@Β']);

  const r = tok.tokenize('I ❤️ tokenizers');
  assert.deepEqual(r.wordIds, [0, 1, 2, 2, 2]);
  assert.deepEqual(r.offsets[1], [2, 4]); // '❤' + U+FE0F (a Mn, stripped)
  assert.deepEqual(r.offsets.slice(2), [
    [5, 10],
    [10, 14],
    [14, 15],
  ]);
});

test('synthetic cased: casing and accents are kept in the pieces', () => {
  const tok = synthetic.cased;
  assert.deepEqual(show(tok, 'Café'), ['C@C', '##a@a', '##f@f', '##é@é']);
  assert.deepEqual(show(tok, 'a\u00a0b'), ['a@a', 'b@b']);
  assert.deepEqual(show(tok, '[MASK] [mask]'), ['[MASK]@[MASK]', '[@[', 'm@m', '##a@a', '##s@s', '##k@k', ']@]']);
});

test('special ids, batch and constructor errors', () => {
  const tok = synthetic.uncased;
  assert.deepEqual([tok.padId, tok.unkId, tok.clsId, tok.sepId, tok.maskId], [0, 1, 2, 3, 4]);
  assert.deepEqual(
    tok.tokenizeBatch(['a b', 'c']).map((r) => r.ids),
    [libraryIds(tok, 'a b'), libraryIds(tok, 'c')],
  );
  assert.deepEqual(tok.tokenize(''), { ids: [], offsets: [], wordIds: [] });
  assert.throws(() => BertTokenizer.fromFiles('/nonexistent-dir'), /no tokenizer\.json/);
  const json = syntheticJson(true);
  assert.throws(
    () => new BertTokenizer({ ...json, pre_tokenizer: { type: 'WhitespaceSplit' } }),
    /needs a BertPreTokenizer/,
  );
  assert.throws(() => new BertTokenizer(json, { cls_token: '<s>' }), /cls_token="<s>" is not in the vocabulary/);
});

test('synthetic: a 2,000-character text tokenizes in well under 5 ms', (t) => {
  const tok = synthetic.uncased;
  const text = fuzzStrings(400, 7).join(' ').slice(0, 2000);
  const median = medianMs(() => tok.tokenize(text), 200);
  t.diagnostic(`synthetic uncased, ${text.length} chars: median ${median.toFixed(3)} ms`);
  assert.ok(median < 5, `median ${median} ms`);
});

function medianMs(fn: () => void, runs: number): number {
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
