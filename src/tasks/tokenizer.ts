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
import { WordPieceEncoder } from './tokenizer/wordpiece.js';

export interface TokenizedText {
  /** Token ids, identical to `tokenizer.encode(text, { add_special_tokens: false }).ids` of the library. */
  ids: number[];
  /** Per token, `[start, end)` UTF-16 offsets into the original string. */
  offsets: [number, number][];
  /** Per token, index of the pre-tokenized word it belongs to (an added token such as `[MASK]` is one word). */
  wordIds: number[];
}

/** A tokenization that may have stopped early (see `BertTokenizer.tokenizeUpTo`). */
export interface BoundedTokens extends TokenizedText {
  /** False when tokenization stopped because more than `maxTokens` tokens were produced (`ids.length > maxTokens`). */
  complete: boolean;
  /** Milliseconds spent tokenizing (for `tokenizeAsync`: the sum of its synchronous slices, not the wall time). */
  busyMs: number;
}

/** Mutable state of one tokenization run, carried across sections and chunks. */
interface RunState {
  maxTokens: number;
  word: number;
  previousUnk: boolean;
  stopped: boolean;
}

/** Original characters normalized and tokenized per step (a step ends at a word boundary, see `chunkEnd`). */
const DEFAULT_CHUNK_CHARS = 4096;

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
  /** The pre-tokenizer pattern without the global flag, for `separatorKind`. */
  private readonly wordPattern: RegExp;
  private readonly prefix: string;
  private readonly fuseUnk: boolean;
  /** Per normalized unit: 0 part of a word, 1 whitespace, 2 a punctuation character (always a word of its own). */
  private readonly separatorKinds = new Map<string, 0 | 1 | 2>();
  /** Original characters per step of the incremental tokenizer (tests set it small to exercise chunk boundaries). */
  chunkChars = DEFAULT_CHUNK_CHARS;
  /** Id lookup as the library's `encode` does it: added tokens (raw and normalized content) first, then vocab. */
  private readonly addedIds: Map<string, number>;
  private readonly rawTrie: TrieNode | null;
  /** Matches any raw added token, longest first (global, sticky-free: `exec` finds the next one from `lastIndex`). */
  private readonly addedPattern: RegExp;
  private readonly normalizedTrie: TrieNode | null;
  /** Normalizes sections and maps normalized units back to original offsets (`chars.start` / `chars.end`). */
  private readonly chars: OffsetNormalizer;
  private readonly wordPiece: WordPieceEncoder;

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
    this.wordPattern = new RegExp(preTokenizer.pattern.source, 'u');
    if (model.unk_token === undefined || model.unk_token_id === undefined) {
      throw new Error('WordPiece model has no unk_token in its vocabulary');
    }
    this.unkId = model.unk_token_id;
    // The library concatenates `continuing_subword_prefix + piece` as is (even when the prefix is undefined).
    this.prefix = String(model.config.continuing_subword_prefix);
    this.fuseUnk = model.fuse_unk;

    const added = readAddedTokens(tokenizerJson, normalizer);
    this.addedIds = added.ids;
    this.wordPiece = new WordPieceEncoder(
      model.tokens_to_ids,
      added.ids,
      this.prefix,
      this.unkId,
      model.max_input_chars_per_word ?? 100,
    );
    this.rawTrie = added.rawTrie;
    this.normalizedTrie = added.normalizedTrie;
    const contents: string[] = [];
    const walk = (node: TrieNode, prefix: string): void => {
      if (node.token !== undefined) contents.push(prefix);
      for (const [unit, child] of node.next) walk(child, prefix + unit);
    };
    if (this.rawTrie !== null) walk(this.rawTrie, '');
    contents.sort((x, y) => y.length - x.length);
    const escaped = contents.map((content) => content.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&'));
    this.addedPattern = new RegExp(escaped.join('|') || '(?!)', 'g');
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
    const { ids, offsets, wordIds } = this.tokenizeUpTo(text, Infinity);
    return { ids, offsets, wordIds };
  }

  /**
   * Like `tokenize`, but stops as soon as more than `maxTokens` tokens exist (`complete: false`, then
   * `ids.length > maxTokens`; the tokens are the first ones of the full tokenization). The work done is bounded by
   * the tokens kept, not by the length of the text: the text is normalized and split one chunk at a time.
   */
  tokenizeUpTo(text: string, maxTokens: number): BoundedTokens {
    const started = performance.now();
    const { out, state, steps } = this.run(text, maxTokens);
    while (!steps.next().done);
    return { ...out, complete: !state.stopped, busyMs: performance.now() - started };
  }

  /**
   * `tokenizeUpTo` that yields to the event loop whenever it has run for `sliceMs` without a break, so a long text
   * never blocks other requests for longer than about one slice plus one chunk. Safe to interleave with other
   * tokenizations of the same tokenizer: it yields only between chunks, when no scratch state is live.
   */
  async tokenizeAsync(text: string, maxTokens: number, sliceMs = 5): Promise<BoundedTokens> {
    const { out, state, steps } = this.run(text, maxTokens);
    let busyMs = 0;
    let sliceStart = performance.now();
    for (;;) {
      const done = steps.next().done;
      const now = performance.now();
      if (done) {
        busyMs += now - sliceStart;
        break;
      }
      if (now - sliceStart >= sliceMs) {
        busyMs += now - sliceStart;
        await new Promise<void>((resolve) => setImmediate(resolve));
        sliceStart = performance.now();
      }
    }
    return { ...out, complete: !state.stopped, busyMs };
  }

  private run(text: string, maxTokens: number) {
    const out: TokenizedText = { ids: [], offsets: [], wordIds: [] };
    const state: RunState = { maxTokens, word: 0, previousUnk: false, stopped: false };
    return { out, state, steps: this.steps(text, out, state) };
  }

  /** The tokenization as steps: each `yield` is a point where no scratch buffer is live. */
  private *steps(text: string, out: TokenizedText, state: RunState): Generator<void, void> {
    const n = text.length;
    let sectionStart = 0;
    if (this.rawTrie !== null) {
      // The library's DictionarySplitter: at each position take the longest added token starting there.
      // The regular expression finds the next position where an added token starts (natively, and only as far as
      // the next one: a long text is scanned while it is tokenized, never ahead of it); matchTrie takes the longest.
      const next = this.addedPattern;
      for (let i = 0; i < n;) {
        next.lastIndex = i;
        const found = next.exec(text);
        if (found === null) break;
        i = found.index;
        const token = matchTrie(this.rawTrie, text, i, n)!;
        if (i > sectionStart) {
          yield* this.sectionSteps(text, sectionStart, i, out, state);
          if (state.stopped) return;
        }
        out.ids.push(token.id);
        out.offsets.push([i, i + token.content.length]);
        out.wordIds.push(state.word++);
        if (out.ids.length > state.maxTokens) {
          state.stopped = true;
          return;
        }
        i += token.content.length;
        sectionStart = i;
      }
    }
    if (sectionStart < n) yield* this.sectionSteps(text, sectionStart, n, out, state);
  }

  /**
   * Normalizes, pre-tokenizes and WordPiece-encodes `text[a, b)`, one chunk at a time when no normalized added
   * token can span chunks (the standard BERT files); yields after each chunk.
   */
  private *sectionSteps(text: string, a: number, b: number, out: TokenizedText, state: RunState): Generator<void> {
    if (this.normalizedTrie !== null) {
      this.tokenizeSection(text, a, b, out, state);
      yield;
      return;
    }
    state.previousUnk = false; // the library fuses [UNK]s within one section only
    for (let from = a; from < b && !state.stopped;) {
      const to = this.chunkEnd(text, from, b);
      // Final_Sigma looks at the whole section, so the chunk is normalized with the section as its context.
      const norm = this.chars.normalizeRange(text, from, to, a, b);
      if (norm.length > 0) this.tokenizeWords(norm, 0, out, state);
      from = to;
      yield;
    }
  }

  /**
   * Where the chunk starting at `from` may end: at least `chunkChars` characters on, at a position no word spans (the
   * character before it normalizes to something ending in whitespace or punctuation, and the character after it does
   * not normalize to nothing, which would extend the token before it), else `b`.
   */
  private chunkEnd(text: string, from: number, b: number): number {
    if (b - from <= this.chunkChars) return b;
    for (let i = from + this.chunkChars; i < b; i++) {
      const before = text.charCodeAt(i - 1);
      const after = text.charCodeAt(i);
      if ((before >= 0xd800 && before <= 0xdfff) || (after >= 0xd800 && after <= 0xdfff)) continue;
      const last = this.chars.normalizeChar(text[i - 1]).at(-1);
      if (last === undefined || this.separatorKind(last) === 0) continue;
      // A character that normalizes to nothing extends the token of the character before it: never cut before one.
      if (this.chars.normalizeChar(text[i]).length > 0) return i;
    }
    return b;
  }

  /** How the library's pre-tokenizer treats one normalized unit (see `separatorKinds`). */
  private separatorKind(unit: string): 0 | 1 | 2 {
    let kind = this.separatorKinds.get(unit);
    if (kind === undefined) {
      // A word character joins its neighbours into one word; whitespace and punctuation do not.
      const joined = this.wordPattern.exec(`a${unit}a`)?.[0] === `a${unit}a`;
      kind = joined ? 0 : /^\s$/u.test(unit) ? 1 : 2;
      if (this.separatorKinds.size >= 10_000) this.separatorKinds.clear();
      this.separatorKinds.set(unit, kind);
    }
    return kind;
  }

  /** Normalizes, splits on normalized added tokens and WordPiece-encodes `text[a, b)` in one go. */
  private tokenizeSection(text: string, a: number, b: number, out: TokenizedText, state: RunState): void {
    // 1. Normalize code point by code point, recording where each normalized unit came from.
    const norm = this.chars.normalizeRange(text, a, b);
    const len = norm.length;
    if (len === 0) return;

    // 2. Split the normalized text on normalized added tokens.
    const normalizedTrie = this.normalizedTrie!;
    let subStart = 0;
    for (let i = 0; i < len;) {
      const token = matchTrie(normalizedTrie, norm, i, len);
      if (token === undefined) {
        i++;
        continue;
      }
      if (i > subStart) {
        state.previousUnk = false;
        this.tokenizeWords(norm.slice(subStart, i), subStart, out, state);
        if (state.stopped) return;
      }
      out.ids.push(token.id);
      out.offsets.push([this.chars.start[i], this.chars.end[i + token.content.length - 1]]);
      out.wordIds.push(state.word++);
      if (out.ids.length > state.maxTokens) {
        state.stopped = true;
        return;
      }
      i += token.content.length;
      subStart = i;
    }
    if (subStart < len) {
      state.previousUnk = false;
      this.tokenizeWords(norm.slice(subStart), subStart, out, state);
    }
  }

  /**
   * Pre-tokenizes normalized text (starting at normalized unit `base`) and appends its WordPiece tokens; stops after
   * the word that takes the count past `state.maxTokens`.
   */
  private tokenizeWords(norm: string, base: number, out: TokenizedText, state: RunState): void {
    const re = this.pattern;
    const { start: normStart, end: normEnd } = this.chars;
    re.lastIndex = 0;
    for (let m = re.exec(norm); m !== null; m = re.exec(norm)) {
      const text = m[0];
      const start = base + m.index;
      const pieces = this.wordPiece.encode(text);
      for (let j = 0; j < pieces.ids.length; j++) {
        const id = pieces.ids[j];
        const s = normStart[start + (j === 0 ? 0 : pieces.ends[j - 1])];
        const e = normEnd[start + pieces.ends[j] - 1];
        if (id === this.unkId && this.fuseUnk && state.previousUnk) {
          out.offsets[out.offsets.length - 1][1] = e; // the library fuses consecutive [UNK]s of one section
          continue;
        }
        state.previousUnk = id === this.unkId;
        out.ids.push(id);
        out.offsets.push([s, e]);
        out.wordIds.push(state.word);
      }
      state.word++;
      if (out.ids.length > state.maxTokens) {
        state.stopped = true;
        return;
      }
    }
  }
}
