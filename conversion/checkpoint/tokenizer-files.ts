import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConversionError } from '../errors.js';

const specialTokens = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];

/**
 * The Hugging Face `tokenizer.json` a BertTokenizerFast would save for this WordPiece vocabulary.
 * Needed because several published checkpoints (the Intel Prune OFA ones among them) ship only vocab.txt.
 */
export function bertTokenizerJson(vocab: string[], lowercase: boolean): object {
  const ids = new Map(vocab.map((token, id) => [token, id]));
  for (const token of specialTokens) {
    if (!ids.has(token)) throw new Error(`vocabulary lacks the special token ${token}`);
  }
  const id = (token: string) => ids.get(token)!;
  const special = (token: string, typeId: number) => ({ SpecialToken: { id: token, type_id: typeId } });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specialTokens
      .map((content) => ({
        id: id(content),
        content,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      }))
      .sort((a, b) => a.id - b.id),
    normalizer: {
      type: 'BertNormalizer',
      clean_text: true,
      handle_chinese_chars: true,
      strip_accents: null,
      lowercase,
    },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [special('[CLS]', 0), { Sequence: { id: 'A', type_id: 0 } }, special('[SEP]', 0)],
      pair: [
        special('[CLS]', 0),
        { Sequence: { id: 'A', type_id: 0 } },
        special('[SEP]', 0),
        { Sequence: { id: 'B', type_id: 1 } },
        special('[SEP]', 1),
      ],
      special_tokens: {
        '[CLS]': { id: '[CLS]', ids: [id('[CLS]')], tokens: ['[CLS]'] },
        '[SEP]': { id: '[SEP]', ids: [id('[SEP]')], tokens: ['[SEP]'] },
      },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: '[UNK]',
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab: Object.fromEntries(vocab.map((token, i) => [token, i])),
    },
  };
}

export function bertTokenizerConfig(lowercase: boolean, maxLength: number): object {
  return {
    do_lower_case: lowercase,
    model_max_length: maxLength,
    cls_token: '[CLS]',
    sep_token: '[SEP]',
    pad_token: '[PAD]',
    unk_token: '[UNK]',
    mask_token: '[MASK]',
    strip_accents: null,
    tokenize_chinese_chars: true,
    tokenizer_class: 'BertTokenizer',
  };
}

export interface TokenizerFiles {
  /** File name in the output folder → contents. */
  files: Map<string, string>;
  lowercase: boolean;
  vocabSize: number;
}

/** Collects tokenizer.json (built from vocab.txt when absent) and tokenizer_config.json for the artifact folder. */
export function collectTokenizerFiles(checkpointDir: string, maxLength: number): TokenizerFiles {
  const path = (name: string) => join(checkpointDir, name);
  const configPath = path('tokenizer_config.json');
  const tokenizerConfig = existsSync(configPath)
    ? (JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>)
    : undefined;
  const files = new Map<string, string>();
  let lowercase: boolean;
  let vocabSize: number;
  if (existsSync(path('tokenizer.json'))) {
    const text = readFileSync(path('tokenizer.json'), 'utf8');
    let parsed: { model?: { vocab?: Record<string, number> }; normalizer?: { lowercase?: boolean } };
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw new ConversionError(path('tokenizer.json'), `not valid JSON: ${(error as Error).message}`);
    }
    if (!parsed.model?.vocab)
      throw new ConversionError(path('tokenizer.json'), 'has no model.vocab (not a WordPiece tokenizer?)');
    lowercase = parsed.normalizer?.lowercase ?? true;
    vocabSize = Object.keys(parsed.model.vocab).length;
    files.set('tokenizer.json', text);
  } else if (existsSync(path('vocab.txt'))) {
    const vocab = readFileSync(path('vocab.txt'), 'utf8').split('\n');
    if (vocab.at(-1) === '') vocab.pop();
    lowercase = (tokenizerConfig?.do_lower_case as boolean | undefined) ?? true;
    vocabSize = vocab.length;
    try {
      files.set('tokenizer.json', JSON.stringify(bertTokenizerJson(vocab, lowercase)));
    } catch (error) {
      throw new ConversionError(path('vocab.txt'), (error as Error).message);
    }
    files.set('vocab.txt', vocab.join('\n') + '\n');
  } else {
    throw new ConversionError(checkpointDir, 'no tokenizer: expected tokenizer.json or vocab.txt');
  }
  files.set(
    'tokenizer_config.json',
    JSON.stringify({ ...bertTokenizerConfig(lowercase, maxLength), ...tokenizerConfig }, null, 2),
  );
  return { files, lowercase, vocabSize };
}
