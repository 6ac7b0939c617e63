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
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tokenizers from '@huggingface/tokenizers';
import { AddedToken, Tokenizer } from '@huggingface/tokenizers';

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

/*
 * The package's type declarations only resolve `Tokenizer` and `AddedToken` under "moduleResolution": "NodeNext"
 * (its index.d.ts re-exports the rest with extensionless paths), so `tokenizer.normalizer` / `.model` are `any`.
 * These are the members this module uses, checked against the runtime classes the package does export.
 */
interface LibBertNormalizer {
  normalize(text: string): string;
  config: { type?: string; clean_text?: boolean; lowercase?: boolean; strip_accents?: boolean | null };
}
interface LibBertPreTokenizer {
  pattern: RegExp;
}
interface LibWordPiece {
  encode(tokens: string[]): string[];
  config: { continuing_subword_prefix?: string };
  tokens_to_ids: Map<string, number>;
  vocab: string[];
  unk_token?: string;
  unk_token_id?: number;
  fuse_unk: boolean;
}
type Constructor = abstract new (...args: never[]) => unknown;
const runtime = tokenizers as unknown as Record<'BertNormalizer' | 'BertPreTokenizer' | 'WordPiece', Constructor>;

function isInstance(value: unknown, name: keyof typeof runtime): boolean {
  const ctor = runtime[name];
  return typeof ctor === 'function' && value instanceof ctor;
}

interface TrieNode {
  next: Map<string, TrieNode>;
  /** Set when the path from the root spells an added token. */
  token?: { content: string; id: number };
}

/** Upper bound on cached words / characters before a cache is dropped (keeps memory bounded on hostile input). */
const WORD_CACHE_LIMIT = 50_000;
const CHAR_CACHE_LIMIT = 20_000;

const CONTROL = /^[\p{Cc}\p{Cf}\p{Co}\p{Cs}]$/u;
const CASED = /^\p{Cased}$/u;
const CASE_IGNORABLE = /^\p{Case_Ignorable}$/u;
const CAPITAL_SIGMA = 0x03a3;

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

  private readonly normalizer: LibBertNormalizer | null;
  private readonly model: LibWordPiece;
  private readonly pattern: RegExp;
  private readonly lowercase: boolean;
  private readonly cleanText: boolean;
  private readonly unkToken: string;
  private readonly prefixLength: number;
  private readonly fuseUnk: boolean;
  /** Id lookup as the library's `encode` does it: added tokens (raw and normalized content) first, then vocab. */
  private readonly addedIds = new Map<string, number>();
  private readonly rawTrie: TrieNode | null;
  private readonly normalizedTrie: TrieNode | null;
  private readonly asciiNorm: string[] = [];
  private readonly charCache = new Map<string, string>();
  private readonly wordCache = new Map<string, WordPieces>();
  // Scratch buffers reused across calls: normalized unit -> original [start, end).
  private normStart = new Int32Array(4096);
  private normEnd = new Int32Array(4096);

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
    this.normalizer = normalizer;
    this.model = model;
    this.pattern = new RegExp(preTokenizer.pattern.source, 'gu');
    this.lowercase = normalizer?.config.lowercase === true;
    this.cleanText = normalizer?.config.clean_text === true;
    if (model.unk_token === undefined || model.unk_token_id === undefined) {
      throw new Error('WordPiece model has no unk_token in its vocabulary');
    }
    this.unkToken = model.unk_token;
    this.unkId = model.unk_token_id;
    // The library concatenates `continuing_subword_prefix + piece` as is (even when the prefix is undefined).
    this.prefixLength = String(model.config.continuing_subword_prefix).length;
    this.fuseUnk = model.fuse_unk;

    // Added tokens, as the library's Tokenizer constructor reads them.
    const rawTokens: AddedToken[] = [];
    const normalizedTokens: { content: string; id: number }[] = [];
    for (const config of (tokenizerJson.added_tokens ?? []) as ConstructorParameters<typeof AddedToken>[0][]) {
      const token = new AddedToken(config);
      this.addedIds.set(token.content, token.id);
      if (token.normalized && normalizer !== null) {
        const content = normalizer.normalize(token.content);
        this.addedIds.set(content, token.id);
        if (content.length > 0) normalizedTokens.push({ content, id: token.id });
      } else if (token.content.length > 0) {
        rawTokens.push(token);
      }
    }
    this.rawTrie = rawTokens.length > 0 ? buildTrie(rawTokens) : null;
    this.normalizedTrie = normalizedTokens.length > 0 ? buildTrie(normalizedTokens) : null;

    for (let c = 0; c < 128; c++) {
      const ch = String.fromCharCode(c);
      this.asciiNorm.push(normalizer ? normalizer.normalize(ch) : ch);
    }

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
    return this.normalizer ? this.normalizer.normalize(text) : text;
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
    let norm = '';
    let len = 0;
    let lastEmitted = -1; // first normalized unit of the last original character that produced output
    for (let i = a; i < b;) {
      const c = text.charCodeAt(i);
      let end = i + 1;
      let s: string;
      if (c < 128) {
        s = this.asciiNorm[c];
      } else {
        if (c >= 0xd800 && c <= 0xdbff && end < b) {
          const d = text.charCodeAt(end);
          if (d >= 0xdc00 && d <= 0xdfff) end++;
        }
        const ch = end - i === 1 ? text[i] : text.slice(i, end);
        s = this.charCache.get(ch) ?? this.normalizeChar(ch);
        if (c === CAPITAL_SIGMA && this.lowercase && this.isFinalSigma(text, a, b, i)) s = 'ς';
      }
      if (s.length === 0) {
        // Dropped (control char, or an accent stripped by an uncased model): belongs to the previous character.
        for (let k = lastEmitted < 0 ? len : lastEmitted; k < len; k++) this.normEnd[k] = end;
      } else {
        if (len + s.length > this.normStart.length) this.grow(len + s.length);
        lastEmitted = len;
        for (let k = 0; k < s.length; k++) {
          this.normStart[len + k] = i;
          this.normEnd[len + k] = end;
        }
        len += s.length;
        norm += s;
      }
      i = end;
    }
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
      out.offsets.push([this.normStart[i], this.normEnd[i + token.content.length - 1]]);
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
    re.lastIndex = 0;
    let previousUnk = false;
    for (let m = re.exec(norm); m !== null; m = re.exec(norm)) {
      const text = m[0];
      const start = base + m.index;
      const pieces = this.wordCache.get(text) ?? this.encodeWord(text);
      for (let j = 0; j < pieces.ids.length; j++) {
        const id = pieces.ids[j];
        const s = this.normStart[start + (j === 0 ? 0 : pieces.ends[j - 1])];
        const e = this.normEnd[start + pieces.ends[j] - 1];
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

  private normalizeChar(ch: string): string {
    const s = this.normalizer ? this.normalizer.normalize(ch) : ch;
    if (this.charCache.size >= CHAR_CACHE_LIMIT) this.charCache.clear();
    this.charCache.set(ch, s);
    return s;
  }

  /**
   * Unicode Final_Sigma, as `String.prototype.toLowerCase` applies it to the text the library lowercases (the
   * section after clean_text and CJK spacing): `Σ` becomes `ς` when a cased letter precedes it and none follows,
   * skipping case-ignorable characters (and characters clean_text removes).
   */
  private isFinalSigma(text: string, a: number, b: number, i: number): boolean {
    let before = false;
    for (let j = i; j > a;) {
      let k = j - 1;
      const c = text.charCodeAt(k);
      if (c >= 0xdc00 && c <= 0xdfff && k > a) {
        const h = text.charCodeAt(k - 1);
        if (h >= 0xd800 && h <= 0xdbff) k--;
      }
      const kind = this.caseKind(text.slice(k, j));
      if (kind === 1) {
        before = true;
        break;
      }
      if (kind === 2) break;
      j = k;
    }
    if (!before) return false;
    for (let j = i + 1; j < b;) {
      const cp = text.codePointAt(j)!;
      const k = j + (cp > 0xffff ? 2 : 1);
      const kind = this.caseKind(text.slice(j, k));
      if (kind === 1) return false;
      if (kind === 2) return true;
      j = k;
    }
    return true;
  }

  /** 0: skipped (case-ignorable or removed by clean_text), 1: cased, 2: anything else. */
  private caseKind(ch: string): 0 | 1 | 2 {
    if (this.cleanText) {
      const c = ch.charCodeAt(0);
      if (c === 0 || c === 0xfffd || (c !== 9 && c !== 10 && c !== 13 && CONTROL.test(ch))) return 0;
    }
    if (CASE_IGNORABLE.test(ch)) return 0;
    return CASED.test(ch) ? 1 : 2;
  }

  private grow(needed: number): void {
    let size = this.normStart.length * 2;
    while (size < needed) size *= 2;
    const start = new Int32Array(size);
    const end = new Int32Array(size);
    start.set(this.normStart);
    end.set(this.normEnd);
    this.normStart = start;
    this.normEnd = end;
  }
}

function buildTrie(tokens: readonly { content: string; id: number }[]): TrieNode {
  const root: TrieNode = { next: new Map() };
  for (const { content, id } of tokens) {
    let node = root;
    // UTF-16 units, as the library's DictionarySplitter walks them
    for (let k = 0; k < content.length; k++) {
      let child = node.next.get(content[k]);
      if (child === undefined) {
        child = { next: new Map() };
        node.next.set(content[k], child);
      }
      node = child;
    }
    node.token = { content, id };
  }
  return root;
}

/** Longest added token starting at `text[i]` (not crossing `n`), or undefined. */
function matchTrie(root: TrieNode, text: string, i: number, n: number): { content: string; id: number } | undefined {
  let node: TrieNode | undefined = root.next.get(text[i]);
  let match: { content: string; id: number } | undefined;
  for (let j = i + 1; node !== undefined; j++) {
    if (node.token !== undefined) match = node.token;
    if (j >= n) break;
    node = node.next.get(text[j]);
  }
  return match;
}
