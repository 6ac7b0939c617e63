import { SeededRandom } from '../generate/random-checkpoint.js';
import type { ModelSpec } from '../checkpoint/model-config.js';

export interface SampleBatch {
  inputIds: number[][];
  attentionMask: number[][];
  tokenTypeIds?: number[][];
}

/**
 * Seeded token rows with ragged lengths (padding on the shorter rows) and, for BERT, a second segment,
 * so verification exercises masking and token types as real QA/pair inputs do.
 */
export function sampleBatch(spec: ModelSpec, rows: number, sequenceLength: number, seed: number): SampleBatch {
  const random = new SeededRandom(seed);
  const length = Math.min(sequenceLength, spec.maxPositions);
  const inputIds: number[][] = [];
  const attentionMask: number[][] = [];
  const tokenTypeIds: number[][] = [];
  for (let r = 0; r < rows; r++) {
    const used = Math.max(2, length - Math.floor((r * length) / (2 * rows)));
    const secondSegmentFrom = Math.floor(used / 2);
    const ids: number[] = [];
    const mask: number[] = [];
    const types: number[] = [];
    for (let t = 0; t < length; t++) {
      const real = t < used;
      ids.push(real ? 1 + Math.floor(random.uniform() * (spec.vocabSize - 1)) : 0);
      mask.push(real ? 1 : 0);
      types.push(real && t >= secondSegmentFrom && spec.typeVocabSize > 1 ? 1 : 0);
    }
    inputIds.push(ids);
    attentionMask.push(mask);
    tokenTypeIds.push(types);
  }
  return spec.family === 'bert' ? { inputIds, attentionMask, tokenTypeIds } : { inputIds, attentionMask };
}
