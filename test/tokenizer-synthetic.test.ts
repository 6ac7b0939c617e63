import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BertTokenizer } from '../src/tasks/tokenizer.js';
import { checkText, libraryIds, medianMs, show } from './helpers/tokenizer-checks.js';
import { fuzzStrings, LONG_WORD, TRICKY } from './helpers/tokenizer-strings.js';

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
