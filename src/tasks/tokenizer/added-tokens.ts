/**
 * Added tokens (`[CLS]`, `[MASK]`, ...): reading them as the library's Tokenizer constructor does, and splitting text
 * on them like the library's DictionarySplitter (at each position, the longest added token starting there).
 */
import { AddedToken } from '@huggingface/tokenizers';
import type { LibBertNormalizer } from './library.js';

export interface AddedTokenMatch {
  content: string;
  id: number;
}

export interface TrieNode {
  next: Map<string, TrieNode>;
  /** Set when the path from the root spells an added token. */
  token?: AddedTokenMatch;
}

export interface AddedTokens {
  /** Id lookup as the library's `encode` does it: added tokens (raw and normalized content) first, then vocab. */
  ids: Map<string, number>;
  /** Tokens matched in the raw text (not normalized), or null when there are none. */
  rawTrie: TrieNode | null;
  /** Tokens matched in the normalized text, or null when there are none. */
  normalizedTrie: TrieNode | null;
}

/** Added tokens of a parsed tokenizer.json, as the library's Tokenizer constructor reads them. */
export function readAddedTokens(
  tokenizerJson: Record<string, unknown>,
  normalizer: LibBertNormalizer | null,
): AddedTokens {
  const ids = new Map<string, number>();
  const rawTokens: AddedToken[] = [];
  const normalizedTokens: AddedTokenMatch[] = [];
  for (const config of (tokenizerJson.added_tokens ?? []) as ConstructorParameters<typeof AddedToken>[0][]) {
    const token = new AddedToken(config);
    ids.set(token.content, token.id);
    if (token.normalized && normalizer !== null) {
      const content = normalizer.normalize(token.content);
      ids.set(content, token.id);
      if (content.length > 0) normalizedTokens.push({ content, id: token.id });
    } else if (token.content.length > 0) {
      rawTokens.push(token);
    }
  }
  return {
    ids,
    rawTrie: rawTokens.length > 0 ? buildTrie(rawTokens) : null,
    normalizedTrie: normalizedTokens.length > 0 ? buildTrie(normalizedTokens) : null,
  };
}

export function buildTrie(tokens: readonly AddedTokenMatch[]): TrieNode {
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
export function matchTrie(root: TrieNode, text: string, i: number, n: number): AddedTokenMatch | undefined {
  let node: TrieNode | undefined = root.next.get(text[i]);
  let match: AddedTokenMatch | undefined;
  for (let j = i + 1; node !== undefined; j++) {
    if (node.token !== undefined) match = node.token;
    if (j >= n) break;
    node = node.next.get(text[j]);
  }
  return match;
}
