/**
 * Fidelity of a quantized model against the dense model of the same folder, over the very same rows — share of
 * identical predictions, and mean / max |Δ logit| over every output value of every row (QA start and end logits of
 * every window position, classification logits, NER logits of every token and label).
 */
import type { RowOutputs } from '../src/runtime/runner.js';
import type { Run } from './run-model.js';
import type { TaskAdapter } from './tasks.js';
import type { Fidelity } from './types.js';

function compareLogits(
  test: RowOutputs[][],
  reference: RowOutputs[][],
): { mean: number; max: number; count: number; referenceScale: number } {
  let sum = 0;
  let scale = 0;
  let max = 0;
  let count = 0;
  test.forEach((rows, item) => {
    if (rows.length !== reference[item].length)
      throw new Error(`item ${item}: ${rows.length} rows vs ${reference[item].length} in the reference run`);
    rows.forEach((row, r) => {
      for (const [name, values] of Object.entries(row)) {
        const other = reference[item][r][name];
        if (!other || other.length !== values.length)
          throw new Error(`item ${item}, row ${r}: output ${name} differs in shape from the reference run`);
        for (let i = 0; i < values.length; i++) {
          const delta = Math.abs(values[i] - other[i]);
          sum += delta;
          scale += Math.abs(other[i]);
          if (delta > max) max = delta;
        }
        count += values.length;
      }
    });
  });
  return { mean: count ? sum / count : 0, max, count, referenceScale: count ? scale / count : 0 };
}

/** `run` compared with `reference`, the run of the model named `referenceName` over the same items. */
export function fidelityOf(run: Run, reference: Run, adapter: TaskAdapter<unknown>, referenceName: string): Fidelity {
  const identical = run.predictions.filter((p, i) => adapter.key(p) === adapter.key(reference.predictions[i])).length;
  const logits = compareLogits(run.outputs, reference.outputs);
  return {
    reference: referenceName,
    items: adapter.size,
    identicalItems: identical,
    identicalShare: (100 * identical) / adapter.size,
    meanAbsLogitDelta: logits.mean,
    maxAbsLogitDelta: logits.max,
    meanAbsReferenceLogit: logits.referenceScale,
    logitsCompared: logits.count,
    ...(adapter.agreement?.(run.predictions, reference.predictions) ?? {}),
  };
}
