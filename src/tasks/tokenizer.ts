/**
 * BERT-family tokenization with character offsets.
 *
 * `@huggingface/tokenizers` (the tokenizer transformers.js uses) loads `tokenizer.json` and produces the right ids,
 * but its `encode` returns no offsets, and QA (answer spans), NER (entity spans) and any "highlight the evidence"
 * feature need them. This module keeps the library's parts — its `BertNormalizer`, its `BertPreTokenizer` pattern
 * and its `WordPiece` model and vocabulary — and adds the alignment bookkeeping around them:
 *
 * 1. The raw text is split on added tokens (`[CLS]`, `[MASK]`, ...) exactly like the library's splitter does.
 * 2. Each section is normalized one code point at a time with the library's normalizer (BertNormalizer is
 *    character-wise: clean_text, CJK spacing, lowercase, NFD + drop Mn). While the normalized string is built, every
 *    normalized UTF-16 unit records the original code point it came from, which gives a normalized→original map.
 *    The one context-dependent step, `toLowerCase` turning a word-final `Σ` into `ς` (Unicode Final_Sigma), is
 *    reproduced with the same rule.
 * 3. The normalized section is pre-tokenized with the library's own BertPreTokenizer regular expression (split on
 *    whitespace, and on every punctuation character), so the words are the words the library sees.
 * 4. Each word goes through the library's WordPiece model; the piece lengths (without `##`) are mapped back
 *    through the index map. Words are cached, so a repeated word costs one Map lookup.
 *
 * Offsets are UTF-16 indices into the original string (`text.slice(start, end)`). A piece covers the original
 * characters its normalized characters came from, plus any directly following characters that normalize to nothing
 * (a combining accent in uncased models, a zero-width or control character), so `Café`, `cafe\u0301` and `❤️`
 * are covered whole. When several pieces come from one original character (a Hangul syllable decomposes into jamo
 * under NFD and may be split into several pieces), each of those pieces covers that whole character, so their offsets
 * are equal or overlap by that one character — the same convention as Hugging Face's Rust tokenizers.
 *
 * Added-token splitting lives in `tokenizer/added-tokens.ts`, the per-character normalization with its position map in
 * `tokenizer/normalize.ts`; this class wires them to the pre-tokenizer and WordPiece model.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { matchTrie, readAddedTokens, type TrieNode } from './tokenizer/added-tokens.js';
import {
  isInstance,
  type LibBertNormalizer,
  type LibBertPreTokenizer,
  type LibWordPiece,
} from './tokenizer/library.js';
import { OffsetNormalizer } from './tokenizer/normalize.js';

export interface TokenizedText {
  /** Token ids, identical to `tokenizer.encode(text, { add_special_tokens: false }).ids` of the library. */
  ids: number[];
  /** Per token, `[start, end)` UTF-16 offsets into the original string. */
  offsets: [number, number][];
  /** Per token, index of the pre-tokenized word it belongs to (an added token such as `[MASK]` is one word). */
  wordIds: number[];
}

/** Pieces of one normalized word: ids and cumulative end positions (normalized UTF-16 units, relative to the word). */
interface WordPieces {
  ids: number[];
  ends: number[];
}

/** Upper bound on cached words before the cache is dropped (keeps memory bounded on hostile input). */
const WORD_CACHE_LIMIT = 50_000;

function readJson(path: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
}

/** A special token named in tokenizer_config.json: either a string or an AddedToken-like object. */
function tokenName(config: Record<string, unknown>, key: string, fallback: string): string {
  const value = config[key];
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return fallback;
}

export class BertTokenizer {
  /** The library tokenizer (its normalizer, pre-tokenizer and model are used; `encode` is the reference for ids). */
  readonly tokenizer: Tokenizer;
  readonly clsId: number;
  readonly sepId: number;
  readonly padId: number;
  readonly unkId: number;
  readonly maskId: number | undefined;
  readonly vocabSize: number;
  /** `model_max_length` from tokenizer_config.json when it is a sane number, else undefined. */
  readonly modelMaxLength: number | undefined;

  private readonly model: LibWordPiece;
  private readonly pattern: RegExp;
  private readonly unkToken: string;
  private readonly prefixLength: number;
  private readonly fuseUnk: boolean;
  /** Id lookup as the library's `encode` does it: added tokens (raw and normalized content) first, then vocab. */
  private readonly addedIds: Map<string, number>;
  private readonly rawTrie: TrieNode | null;
  private readonly normalizedTrie: TrieNode | null;
  /** Normalizes sections and maps normalized units back to original offsets (`chars.start` / `chars.end`). */
  private readonly chars: OffsetNormalizer;
  private readonly wordCache = new Map<string, WordPieces>();

  /**
   * @param tokenizerJson parsed tokenizer.json (BertNormalizer or none, BertPreTokenizer, WordPiece model)
   * @param tokenizerConfig parsed tokenizer_config.json, `{}` when there is none
   */
  constructor(tokenizerJson: Record<string, unknown>, tokenizerConfig: Record<string, unknown> = {}) {
    this.tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig);
    const normalizer = this.tokenizer.normalizer as LibBertNormalizer | null;
    const preTokenizer = this.tokenizer.pre_tokenizer as LibBertPreTokenizer | null;
    const model = this.tokenizer.model as LibWordPiece | null;
    if (normalizer !== null && !isInstance(normalizer, 'BertNormalizer')) {
      throw new Error(`BertTokenizer needs a BertNormalizer (or none), got ${String(normalizer.config?.type)}`);
    }
    if (
      preTokenizer === null ||
      !isInstance(preTokenizer, 'BertPreTokenizer') ||
      !(preTokenizer.pattern instanceof RegExp)
    ) {
      throw new Error('BertTokenizer needs a BertPreTokenizer in tokenizer.json');
    }
    if (model === null || !isInstance(model, 'WordPiece')) {
      throw new Error('BertTokenizer needs a WordPiece model in tokenizer.json');
    }
    if (tokenizerConfig.remove_space === true || tokenizerConfig.do_lowercase_and_remove_accent === true) {
      throw new Error('BertTokenizer does not support remove_space / do_lowercase_and_remove_accent');
    }
    this.model = model;
    this.pattern = new RegExp(preTokenizer.pattern.source, 'gu');
    if (model.unk_token === undefined || model.unk_token_id === undefined) {
      throw new Error('WordPiece model has no unk_token in its vocabulary');
    }
    this.unkToken = model.unk_token;
    this.unkId = model.unk_token_id;
    // The library concatenates `continuing_subword_prefix + piece` as is (even when the prefix is undefined).
    this.prefixLength = String(model.config.continuing_subword_prefix).length;
    this.fuseUnk = model.fuse_unk;

    const added = readAddedTokens(tokenizerJson, normalizer);
    this.addedIds = added.ids;
    this.rawTrie = added.rawTrie;
    this.normalizedTrie = added.normalizedTrie;
    this.chars = new OffsetNormalizer(normalizer);

    const lookup = (key: string, fallback: string): number => {
      const name = tokenName(tokenizerConfig, key, fallback);
      const id = this.tokenizer.token_to_id(name);
      if (id === undefined) throw new Error(`special token ${key}=${JSON.stringify(name)} is not in the vocabulary`);
      return id;
    };
    this.clsId = lookup('cls_token', '[CLS]');
    this.sepId = lookup('sep_token', '[SEP]');
    this.padId = lookup('pad_token', '[PAD]');
    this.maskId = this.tokenizer.token_to_id(tokenName(tokenizerConfig, 'mask_token', '[MASK]'));
    this.vocabSize = model.vocab.length;
    const maxLength = tokenizerConfig.model_max_length;
    this.modelMaxLength =
      typeof maxLength === 'number' && Number.isInteger(maxLength) && maxLength > 0 && maxLength < 1e6
        ? maxLength
        : undefined;
  }

  /** Loads `dir/tokenizer.json` and, when present, `dir/tokenizer_config.json`. */
  static fromFiles(dir: string): BertTokenizer {
    const jsonPath = join(dir, 'tokenizer.json');
    if (!existsSync(jsonPath)) throw new Error(`no tokenizer.json in ${dir}`);
    const configPath = join(dir, 'tokenizer_config.json');
    return new BertTokenizer(readJson(jsonPath), existsSync(configPath) ? readJson(configPath) : {});
  }

  /** The library normalizer applied to a whole string (identity when the tokenizer has none). */
  normalize(text: string): string {
    return this.chars.normalize(text);
  }

  idToToken(id: number): string | undefined {
    return this.tokenizer.id_to_token(id);
  }

  tokenToId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }

  tokenizeBatch(texts: readonly string[]): TokenizedText[] {
    return texts.map((text) => this.tokenize(text));
  }

  /** Tokenizes without special tokens; ids match the library's `encode(text, { add_special_tokens: false })`. */
  tokenize(text: string): TokenizedText {
    const out: TokenizedText = { ids: [], offsets: [], wordIds: [] };
    const n = text.length;
    let word = 0;
    let sectionStart = 0;
    if (this.rawTrie !== null) {
      // The library's DictionarySplitter: at each position take the longest added token starting there.
      for (let i = 0; i < n;) {
        const token = matchTrie(this.rawTrie, text, i, n);
        if (token === undefined) {
          i++;
          continue;
        }
        if (i > sectionStart) word = this.tokenizeSection(text, sectionStart, i, out, word);
        out.ids.push(token.id);
        out.offsets.push([i, i + token.content.length]);
        out.wordIds.push(word++);
        i += token.content.length;
        sectionStart = i;
      }
    }
    if (sectionStart < n) this.tokenizeSection(text, sectionStart, n, out, word);
    return out;
  }

  /** Normalizes, pre-tokenizes and WordPiece-encodes `text[a, b)`; returns the next word index. */
  private tokenizeSection(text: string, a: number, b: number, out: TokenizedText, word: number): number {
    // 1. Normalize code point by code point, recording where each normalized unit came from.
    const norm = this.chars.normalizeRange(text, a, b);
    const len = norm.length;
    if (len === 0) return word;

    // 2. Split the normalized text on normalized added tokens (none for the standard BERT files).
    if (this.normalizedTrie === null) return this.tokenizeWords(norm, 0, out, word);
    let subStart = 0;
    for (let i = 0; i < len;) {
      const token = matchTrie(this.normalizedTrie, norm, i, len);
      if (token === undefined) {
        i++;
        continue;
      }
      if (i > subStart) word = this.tokenizeWords(norm.slice(subStart, i), subStart, out, word);
      out.ids.push(token.id);
      out.offsets.push([this.chars.start[i], this.chars.end[i + token.content.length - 1]]);
      out.wordIds.push(word++);
      i += token.content.length;
      subStart = i;
    }
    if (subStart < len) word = this.tokenizeWords(norm.slice(subStart), subStart, out, word);
    return word;
  }

  /** Pre-tokenizes normalized text (starting at normalized unit `base`) and appends its WordPiece tokens. */
  private tokenizeWords(norm: string, base: number, out: TokenizedText, word: number): number {
    const re = this.pattern;
    const { start: normStart, end: normEnd } = this.chars;
    re.lastIndex = 0;
    let previousUnk = false;
    for (let m = re.exec(norm); m !== null; m = re.exec(norm)) {
      const text = m[0];
      const start = base + m.index;
      const pieces = this.wordCache.get(text) ?? this.encodeWord(text);
      for (let j = 0; j < pieces.ids.length; j++) {
        const id = pieces.ids[j];
        const s = normStart[start + (j === 0 ? 0 : pieces.ends[j - 1])];
        const e = normEnd[start + pieces.ends[j] - 1];
        if (id === this.unkId && this.fuseUnk && previousUnk) {
          out.offsets[out.offsets.length - 1][1] = e; // the library fuses consecutive [UNK]s of one section
          continue;
        }
        previousUnk = id === this.unkId;
        out.ids.push(id);
        out.offsets.push([s, e]);
        out.wordIds.push(word);
      }
      word++;
    }
    return word;
  }

  private encodeWord(text: string): WordPieces {
    const pieces = this.model.encode([text]);
    let result: WordPieces;
    if (pieces.length === 1 && pieces[0] === this.unkToken) {
      result = { ids: [this.unkId], ends: [text.length] };
    } else {
      result = { ids: new Array<number>(pieces.length), ends: new Array<number>(pieces.length) };
      let end = 0;
      for (let j = 0; j < pieces.length; j++) {
        const piece = pieces[j];
        end += j === 0 ? piece.length : piece.length - this.prefixLength;
        result.ends[j] = end;
        result.ids[j] = this.addedIds.get(piece) ?? this.model.tokens_to_ids.get(piece) ?? this.unkId;
      }
      if (end !== text.length) throw new Error(`WordPiece pieces of ${JSON.stringify(text)} do not cover the word`);
    }
    if (this.wordCache.size >= WORD_CACHE_LIMIT) this.wordCache.clear();
    this.wordCache.set(text, result);
    return result;
  }
}
