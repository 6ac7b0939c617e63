/**
 * One timed run of a model over a dataset's selected items. Items are submitted `concurrency` at a time so the batcher
 * forms real batches. While a model runs, its batcher is observed (not replaced): every row the task code submits and
 * the logits the runtime returns for it are kept, for the fidelity comparison (fidelity.ts).
 */
import type { Batcher } from '../src/batcher/batcher.js';
import type { ServerMetrics } from '../src/metrics.js';
import type { ServedModel } from '../src/models/registry.js';
import type { RowOutputs } from '../src/runtime/runner.js';
import type { LoadedData } from './inputs.js';
import { mapBounded } from './pool.js';
import { Progress } from './progress.js';
import type { EvalOptions } from './types.js';

/** The model with its batcher observed: rows the task code submits and what the runtime returns are recorded. */
function observed(model: ServedModel, sink: RowOutputs[]): ServedModel {
  const batcher: Batcher<RowOutputs> = Object.create(model.batcher);
  batcher.submit = async (rows, signal) => {
    const outputs = await model.batcher.submit(rows, signal);
    sink.push(...outputs);
    return outputs;
  };
  return { ...model, batcher };
}

/** One short and one longer batch per session, so the timed run does not pay onnxruntime's first allocations. */
async function warmUp(model: ServedModel): Promise<void> {
  const { clsId, sepId } = model.tokenizer;
  const row = (length: number) => ({
    ids: [clsId, ...new Array(length - 2).fill(sepId), sepId],
    typeIds: new Array(length).fill(0),
  });
  for (const runner of model.runners) {
    await runner.run([row(16)]);
    await runner.run([row(Math.min(128, model.manifest.maxSequenceLength)), row(64)]);
  }
}

export interface Run {
  predictions: unknown[];
  outputs: RowOutputs[][];
  seconds: number;
  rows: number;
  batches: number;
}

/** Rows and batches the model's batcher has run so far (from the same metrics the server exports). */
async function batchTotals(metrics: ServerMetrics, model: string): Promise<{ rows: number; batches: number }> {
  let rows = 0;
  let batches = 0;
  for (const value of (await metrics.batchSize.get()).values) {
    if (value.labels.model !== model) continue;
    if (value.metricName?.endsWith('_sum')) rows = value.value;
    if (value.metricName?.endsWith('_count')) batches = value.value;
  }
  return { rows, batches };
}

export async function runModel(
  model: ServedModel,
  data: LoadedData,
  options: EvalOptions,
  metrics: ServerMetrics,
): Promise<Run> {
  await warmUp(model);
  const before = await batchTotals(metrics, model.name);
  const { adapter } = data;
  const outputs: RowOutputs[][] = Array.from({ length: adapter.size }, () => []);
  const progress = new Progress(`${model.name} on ${data.info.name}`, adapter.size, options.progress);
  const predictions = await mapBounded(
    Array.from({ length: adapter.size }, (_, i) => i),
    options.concurrency,
    async (index) => {
      const prediction = await adapter.run(observed(model, outputs[index]), index);
      progress.tick();
      return prediction;
    },
  );
  const seconds = progress.finish();
  const after = await batchTotals(metrics, model.name);
  return { predictions, outputs, seconds, rows: after.rows - before.rows, batches: after.batches - before.batches };
}
