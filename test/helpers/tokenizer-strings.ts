/** Test inputs for the BERT tokenizer: hand-picked tricky strings and seeded random strings built from tricky parts. */

export const LONG_WORD = 'pneumonoultramicroscopic'.repeat(5); // 120 chars > max_input_chars_per_word (100)

export const TRICKY = [
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

export function fuzzStrings(count: number, seed: number): string[] {
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
