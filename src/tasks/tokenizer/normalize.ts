/**
 * Per-character normalization with a normalized→original position map.
 *
 * The library's BertNormalizer is character-wise (clean_text, CJK spacing, lowercase, NFD + drop Mn), so a section
 * of text is normalized one code point at a time with it. While the normalized string is built, every normalized
 * UTF-16 unit records the original code point it came from. The one context-dependent step, `toLowerCase` turning a
 * word-final `Σ` into `ς` (Unicode Final_Sigma), is reproduced with the same rule.
 *
 * Characters that normalize to nothing (a combining accent in uncased models, a zero-width or control character) are
 * attributed to the character before them: the units of that character get their end extended over them.
 */
import type { LibBertNormalizer } from './library.js';

/** Upper bound on cached characters before the cache is dropped (keeps memory bounded on hostile input). */
const CHAR_CACHE_LIMIT = 20_000;

const CONTROL = /^[\p{Cc}\p{Cf}\p{Co}\p{Cs}]$/u;
const CASED = /^\p{Cased}$/u;
const CASE_IGNORABLE = /^\p{Case_Ignorable}$/u;
const CAPITAL_SIGMA = 0x03a3;

export class OffsetNormalizer {
  /**
   * Per normalized UTF-16 unit of the last `normalizeRange` result, the original `[start, end)` it came from.
   * Scratch buffers reused across calls (and replaced when they grow): only the first `result.length` are valid.
   */
  start = new Int32Array(4096);
  end = new Int32Array(4096);

  private readonly lowercase: boolean;
  private readonly cleanText: boolean;
  private readonly asciiNorm: string[] = [];
  private readonly charCache = new Map<string, string>();

  /** @param normalizer the library's BertNormalizer, or null for none (identity) */
  constructor(private readonly normalizer: LibBertNormalizer | null) {
    this.lowercase = normalizer?.config.lowercase === true;
    this.cleanText = normalizer?.config.clean_text === true;
    for (let c = 0; c < 128; c++) {
      const ch = String.fromCharCode(c);
      this.asciiNorm.push(normalizer ? normalizer.normalize(ch) : ch);
    }
  }

  /** The library normalizer applied to a whole string (identity when there is none). */
  normalize(text: string): string {
    return this.normalizer ? this.normalizer.normalize(text) : text;
  }

  /**
   * Normalizes `text[a, b)` code point by code point and returns the normalized string; `start` / `end` then map each
   * of its units back to original UTF-16 indices. `[contextStart, contextEnd)` (default `[a, b)`) is the section the
   * range belongs to: the text Final_Sigma looks at, so a section normalized in pieces equals the section in one go.
   */
  normalizeRange(text: string, a: number, b: number, contextStart = a, contextEnd = b): string {
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
        if (c === CAPITAL_SIGMA && this.lowercase && this.isFinalSigma(text, contextStart, contextEnd, i)) s = 'ς';
      }
      if (s.length === 0) {
        // Dropped (control char, or an accent stripped by an uncased model): belongs to the previous character.
        for (let k = lastEmitted < 0 ? len : lastEmitted; k < len; k++) this.end[k] = end;
      } else {
        if (len + s.length > this.start.length) this.grow(len + s.length);
        lastEmitted = len;
        for (let k = 0; k < s.length; k++) {
          this.start[len + k] = i;
          this.end[len + k] = end;
        }
        len += s.length;
        norm += s;
      }
      i = end;
    }
    return norm;
  }

  /** One character (a code point) normalized on its own, cached; `Σ` gives `σ` (Final_Sigma needs context). */
  normalizeChar(ch: string): string {
    if (ch.length === 1 && ch.charCodeAt(0) < 128) return this.asciiNorm[ch.charCodeAt(0)];
    const cached = this.charCache.get(ch);
    if (cached !== undefined) return cached;
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
    let size = this.start.length * 2;
    while (size < needed) size *= 2;
    const start = new Int32Array(size);
    const end = new Int32Array(size);
    start.set(this.start);
    end.set(this.end);
    this.start = start;
    this.end = end;
  }
}
