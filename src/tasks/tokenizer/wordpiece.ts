/** Pieces of one normalized word: ids and cumulative end positions (normalized UTF-16 units, relative to the word). */
export interface WordPieces {
  ids: number[];
  ends: number[];
}

/** Upper bound on cached words before the cache is dropped (keeps memory bounded on hostile input). */
const WORD_CACHE_LIMIT = 50_000;

/**
 * The library's WordPiece (greedy longest match first, `continuing_subword_prefix` on non-initial pieces, the whole
 * word `[UNK]` when a position matches nothing or the word has more than `max_input_chars_per_word` code points)
 * with the same result, but trying only candidates no longer than the longest vocabulary entry and slicing the
 * string instead of joining code point arrays: O(word x longest entry), where the library is cubic in the word.
 */
export class WordPieceEncoder {
  /** Longest vocabulary entry in UTF-16 units: no longer candidate piece can match, so none is tried. */
  private readonly maxPieceLength: number;
  private readonly cache = new Map<string, WordPieces>();

  constructor(
    private readonly vocab: Map<string, number>,
    /** Id lookup as the library's `encode` does it: added tokens first, then the vocabulary. */
    private readonly addedIds: Map<string, number>,
    private readonly prefix: string,
    private readonly unkId: number,
    private readonly maxInputCharsPerWord: number,
  ) {
    let longest = 0;
    for (const piece of vocab.keys()) longest = Math.max(longest, piece.length);
    this.maxPieceLength = longest;
  }

  encode(text: string): WordPieces {
    const cached = this.cache.get(text);
    if (cached) return cached;
    const n = text.length;
    let codePoints = 0;
    for (let i = 0; i < n; i++) if (!isLowSurrogateAfterHigh(text, i)) codePoints++;
    const unknown: WordPieces = { ids: [this.unkId], ends: [n] };
    let result: WordPieces = { ids: [], ends: [] };
    if (codePoints > this.maxInputCharsPerWord) result = unknown;
    for (let start = 0; start < n && result !== unknown;) {
      let end = Math.min(n, start + this.maxPieceLength);
      let id: number | undefined;
      for (; end > start; end--) {
        if (isLowSurrogateAfterHigh(text, end)) continue; // never split a surrogate pair (the library slices code points)
        const piece = start > 0 ? this.prefix + text.slice(start, end) : text.slice(start, end);
        if (this.vocab.has(piece)) {
          id = this.addedIds.get(piece) ?? this.vocab.get(piece)!;
          break;
        }
      }
      if (id === undefined) {
        result = unknown;
        break;
      }
      result.ids.push(id);
      result.ends.push(end);
      start = end;
    }
    if (this.cache.size >= WORD_CACHE_LIMIT) this.cache.clear();
    this.cache.set(text, result);
    return result;
  }
}

/** Whether `text[i]` is the low half of a surrogate pair (so `i` is no code point boundary). */
function isLowSurrogateAfterHigh(text: string, i: number): boolean {
  if (i <= 0 || i >= text.length) return false;
  const low = text.charCodeAt(i);
  const high = text.charCodeAt(i - 1);
  return low >= 0xdc00 && low <= 0xdfff && high >= 0xd800 && high <= 0xdbff;
}
