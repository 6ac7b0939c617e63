/**
 * Entity-level precision / recall / F1 with the semantics of seqeval's default mode (`seqeval.metrics.f1_score`,
 * `classification_report` without `mode='strict'`), which is what the CoNLL `conlleval` script and the Hugging Face
 * `seqeval` metric compute. Works for IOB1, IOB2, IOE and IOBES tag sequences alike.
 *
 * Chunks come from seqeval's `get_entities` (prefix tags, `suffix=False`), reproduced rule for rule:
 * - a list of sentences is flattened with an `O` appended after each sentence, and a final `O` closes the last chunk;
 * - a tag splits into `tag = chunk[0]` and `type = chunk[1:].split('-', 1)[-1] or '_'` (so `O` has type `_`, and a
 *   tag without a prefix such as `PER` is read as tag `P`, type `ER`, as seqeval does);
 * - `end_of_chunk` / `start_of_chunk` decide where chunks close and open: a chunk starts on `B`/`S`, on an `I`/`E`
 *   after `O` (or after `E`/`S`), and on any non-`O` tag whose type differs from the previous tag's type — so an
 *   `I-` without a `B-` starts an entity (IOB1), a `B-` inside a run of `I-` starts a new one, and a type change in
 *   the middle of an entity starts a new one.
 *
 * Scores: per type, true positives are the chunks `(start, end)` found in both gold and prediction; micro average
 * sums them over types; a zero denominator gives 0 (seqeval's `zero_division="warn"` result).
 */

export type Chunk = [type: string, start: number, end: number];

function endOfChunk(prevTag: string, tag: string, prevType: string, type: string): boolean {
  let chunkEnd = false;
  if (prevTag === 'E') chunkEnd = true;
  if (prevTag === 'S') chunkEnd = true;
  if (prevTag === 'B' && tag === 'B') chunkEnd = true;
  if (prevTag === 'B' && tag === 'S') chunkEnd = true;
  if (prevTag === 'B' && tag === 'O') chunkEnd = true;
  if (prevTag === 'I' && tag === 'B') chunkEnd = true;
  if (prevTag === 'I' && tag === 'S') chunkEnd = true;
  if (prevTag === 'I' && tag === 'O') chunkEnd = true;
  if (prevTag !== 'O' && prevTag !== '.' && prevType !== type) chunkEnd = true;
  return chunkEnd;
}

function startOfChunk(prevTag: string, tag: string, prevType: string, type: string): boolean {
  let chunkStart = false;
  if (tag === 'B') chunkStart = true;
  if (tag === 'S') chunkStart = true;
  if (prevTag === 'E' && tag === 'E') chunkStart = true;
  if (prevTag === 'E' && tag === 'I') chunkStart = true;
  if (prevTag === 'S' && tag === 'E') chunkStart = true;
  if (prevTag === 'S' && tag === 'I') chunkStart = true;
  if (prevTag === 'O' && tag === 'E') chunkStart = true;
  if (prevTag === 'O' && tag === 'I') chunkStart = true;
  if (tag !== 'O' && tag !== '.' && prevType !== type) chunkStart = true;
  return chunkStart;
}

/** seqeval `get_entities(seq)`: `[type, start, end]` with `end` inclusive, positions in the flattened sequence. */
export function getEntities(seq: readonly string[] | readonly (readonly string[])[]): Chunk[] {
  const nested = seq.some((s) => Array.isArray(s));
  const flat: string[] = nested
    ? (seq as readonly (readonly string[])[]).flatMap((sentence) => [...sentence, 'O'])
    : [...(seq as readonly string[])];
  let prevTag = 'O';
  let prevType = '';
  let beginOffset = 0;
  const chunks: Chunk[] = [];
  flat.push('O');
  flat.forEach((chunk, i) => {
    const tag = chunk.slice(0, 1);
    const rest = chunk.slice(1);
    const dash = rest.indexOf('-');
    const type = (dash < 0 ? rest : rest.slice(dash + 1)) || '_';
    if (endOfChunk(prevTag, tag, prevType, type)) chunks.push([prevType, beginOffset, i - 1]);
    if (startOfChunk(prevTag, tag, prevType, type)) beginOffset = i;
    prevTag = tag;
    prevType = type;
  });
  return chunks;
}

export interface PrfScores {
  precision: number;
  recall: number;
  f1: number;
  /** Gold entities. */
  support: number;
  /** Predicted entities. */
  predicted: number;
  truePositives: number;
}

export interface EntityScores {
  micro: PrfScores;
  /** Per entity type, sorted by type name (seqeval's `target_names`). */
  perType: Record<string, PrfScores>;
}

function prf(truePositives: number, predicted: number, support: number): PrfScores {
  const precision = predicted === 0 ? 0 : truePositives / predicted;
  const recall = support === 0 ? 0 : truePositives / support;
  const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
  return { precision, recall, f1, support, predicted, truePositives };
}

/** seqeval `precision_recall_fscore_support` (default mode) for lists of sentences; values are fractions (0..1). */
export function entityScores(
  yTrue: readonly (readonly string[])[],
  yPred: readonly (readonly string[])[],
): EntityScores {
  if (yTrue.length !== yPred.length) {
    throw new RangeError(`${yTrue.length} gold sentences but ${yPred.length} predicted`);
  }
  yTrue.forEach((sentence, i) => {
    if (sentence.length !== yPred[i].length) {
      throw new RangeError(`sentence ${i}: ${sentence.length} gold tags but ${yPred[i].length} predicted`);
    }
  });
  const byType = (chunks: Chunk[]) => {
    const map = new Map<string, Set<string>>();
    for (const [type, start, end] of chunks) {
      if (!map.has(type)) map.set(type, new Set());
      map.get(type)!.add(`${start}:${end}`);
    }
    return map;
  };
  // seqeval flattens a list of sentences itself; an empty list has no entities.
  const gold = byType(yTrue.length ? getEntities(yTrue) : []);
  const pred = byType(yPred.length ? getEntities(yPred) : []);
  const types = [...new Set([...gold.keys(), ...pred.keys()])].sort();
  const perType: Record<string, PrfScores> = {};
  let tp = 0;
  let predicted = 0;
  let support = 0;
  for (const type of types) {
    const g = gold.get(type) ?? new Set<string>();
    const p = pred.get(type) ?? new Set<string>();
    let hits = 0;
    for (const span of p) if (g.has(span)) hits++;
    perType[type] = prf(hits, p.size, g.size);
    tp += hits;
    predicted += p.size;
    support += g.size;
  }
  return { micro: prf(tp, predicted, support), perType };
}
