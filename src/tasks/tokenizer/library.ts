/**
 * Typed view of the `@huggingface/tokenizers` internals the BERT tokenizer uses.
 *
 * The package's type declarations only resolve `Tokenizer` and `AddedToken` under "moduleResolution": "NodeNext"
 * (its index.d.ts re-exports the rest with extensionless paths), so `tokenizer.normalizer` / `.model` are `any`.
 * These are the members the tokenizer modules use, checked against the runtime classes the package does export.
 */
import * as tokenizers from '@huggingface/tokenizers';

export interface LibBertNormalizer {
  normalize(text: string): string;
  config: { type?: string; clean_text?: boolean; lowercase?: boolean; strip_accents?: boolean | null };
}
export interface LibBertPreTokenizer {
  pattern: RegExp;
}
export interface LibWordPiece {
  encode(tokens: string[]): string[];
  config: { continuing_subword_prefix?: string };
  tokens_to_ids: Map<string, number>;
  vocab: string[];
  unk_token?: string;
  unk_token_id?: number;
  fuse_unk: boolean;
  max_input_chars_per_word?: number;
}
type Constructor = abstract new (...args: never[]) => unknown;
const runtime = tokenizers as unknown as Record<'BertNormalizer' | 'BertPreTokenizer' | 'WordPiece', Constructor>;

export function isInstance(value: unknown, name: keyof typeof runtime): boolean {
  const ctor = runtime[name];
  return typeof ctor === 'function' && value instanceof ctor;
}
