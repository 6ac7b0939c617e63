import { EvalError } from '../errors.js';
import { readDatasetText, splitLines } from './read.js';

/**
 * CoNLL-2003 style files: one token per line, whitespace-separated columns (`word POS chunk NER` for CoNLL-2003; any
 * count >= 2 works, the NER tag is the last column, every token line must have the first token line's column count),
 * blank lines between sentences, `-DOCSTART-` lines between documents (dropped, as every CoNLL-2003 loader does).
 * Tags are `O` or `B-`/`I-`/`E-`/`S-` + type — IOB1 (the original CoNLL-2003 files), IOB2 (most redistributed
 * copies), IOE or IOBES; the scorer (seqeval default mode) reads them all.
 */

export interface ConllSentence {
  words: string[];
  tags: string[];
  /** 1-based line of each word, for messages. */
  lines: number[];
}

export interface ConllDataset {
  file: string;
  sentences: ConllSentence[];
  /** Entity types the gold tags use, with the first line that uses each. */
  types: Map<string, number>;
}

const TAG = /^(?:O|[BIES]-\S+)$/;

export function loadConll(path: string): ConllDataset {
  const lines = splitLines(readDatasetText(path));
  const sentences: ConllSentence[] = [];
  const types = new Map<string, number>();
  let current: ConllSentence = { words: [], tags: [], lines: [] };
  let columns: number | undefined;
  const close = () => {
    if (current.words.length) sentences.push(current);
    current = { words: [], tags: [], lines: [] };
  };
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return close();
    const cells = line.split(/\s+/);
    if (cells[0] === '-DOCSTART-') return close();
    const where = `line ${i + 1}`;
    columns ??= cells.length;
    if (cells.length < 2) throw new EvalError(path, `"${line}" has no tag column (expected word ... NER-tag)`, where);
    if (cells.length !== columns) {
      throw new EvalError(
        path,
        `${cells.length} columns, earlier lines have ${columns} (malformed or truncated line)`,
        where,
      );
    }
    const tag = cells[cells.length - 1];
    if (!TAG.test(tag)) throw new EvalError(path, `"${tag}" is not an IOB/IOBES tag (O, B-X, I-X, E-X, S-X)`, where);
    if (tag !== 'O' && !types.has(tag.slice(2))) types.set(tag.slice(2), i + 1);
    current.words.push(cells[0]);
    current.tags.push(tag);
    current.lines.push(i + 1);
  });
  close();
  if (sentences.length === 0) throw new EvalError(path, 'holds no sentences');
  return { file: path, sentences, types };
}
