/**
 * Accuracy evaluation of converted models: every model folder at every requested precision (sparse int8 and dense
 * fp32 by default) over one or more dataset files, through exactly the code the server runs — `loadModelFolder`
 * (manifest + sha256 check, onnxruntime sessions, the batcher) and the task functions of `src/tasks/`.
 *
 * This file orchestrates: inputs.ts reads and checks the models and datasets, run-model.ts runs one model over one
 * dataset (observing its batcher), fidelity.ts compares each quantized model with the dense model of its folder.
 */
import { basename } from 'node:path';
import { converterVersion } from '../conversion/version.js';
import { ServerMetrics } from '../src/metrics.js';
import { loadModelFolder } from '../src/models/registry.js';
import { EvalError } from './errors.js';
import { fidelityOf } from './fidelity.js';
import { loadData, readManifest, resolveTask, type LoadedData } from './inputs.js';
import { runModel, type Run } from './run-model.js';
import type { Difference, EvalOptions, EvalOutcome, EvalReport, ModelInfo, ModelResult } from './types.js';

export type {
  DatasetInfo,
  Difference,
  EvalOptions,
  EvalOutcome,
  EvalReport,
  Fidelity,
  ModelInfo,
  ModelResult,
} from './types.js';

function difference(value: number, base: number): Difference {
  return { absolute: value - base, relative: base === 0 ? null : (100 * (value - base)) / Math.abs(base) };
}

const slug = (text: string) => text.replace(/[^A-Za-z0-9.-]+/g, '-').replace(/^-|-$/g, '');

/** Runs everything; throws EvalError (bad data, unknown labels, refused item) before any result exists. */
export async function evaluate(options: EvalOptions): Promise<EvalOutcome> {
  const log = options.log ?? (() => {});
  if (options.modelDirs.length === 0) throw new EvalError('eval', 'no model folder given');
  if (options.dataFiles.length === 0) throw new EvalError('eval', 'no dataset file given');
  const manifests = options.modelDirs.map(readManifest);
  const task = resolveTask(options.task, options.modelDirs, manifests);
  const folders = options.modelDirs.map((dir) => basename(dir));
  if (new Set(folders).size !== folders.length)
    throw new EvalError(options.modelDirs.join(', '), 'two model folders have the same name');
  const names = folders.flatMap((folder) => options.precisions.map((p) => `${folder}-${p}`));
  if (options.baseline !== undefined && !names.includes(options.baseline)) {
    throw new EvalError('--baseline', `"${options.baseline}" is not one of the evaluated models (${names.join(', ')})`);
  }

  // Every dataset is read, selected and checked against every model's labels before any model is loaded.
  const data: LoadedData[] = [];
  for (const file of options.dataFiles) data.push(await loadData(task, file, options));
  const datasetNames = data.map((d) => d.info.name);
  data.forEach((d) => {
    if (datasetNames.filter((name) => name === d.info.name).length > 1)
      d.info.name = `${d.info.name} (${basename(d.info.file)})`;
  });
  for (const d of data) manifests.forEach((manifest, i) => d.adapter.check(manifest, folders[i]));

  const results: ModelResult[] = [];
  const models: ModelInfo[] = [];
  const predictions: { file: string; content: string }[] = [];
  const metrics = new ServerMetrics();
  const config = { precisions: options.precisions, runtime: options.runtime, batching: options.batching };
  for (const [f, dir] of options.modelDirs.entries()) {
    log(`loading ${dir} (${options.precisions.join(', ')})`);
    const served = await loadModelFolder(dir, config, metrics);
    try {
      for (const model of served) {
        const file = model.precision === 'int8' ? 'model.int8.onnx' : 'model.onnx';
        models.push({
          name: model.name,
          folder: folders[f],
          dir,
          precision: model.precision,
          architecture: model.manifest.architecture,
          encoderSparsity: model.manifest.sparsity.final.encoderLinearSparsity,
          artifactBytes: model.manifest.files[file]?.bytes ?? 0,
          labels: model.manifest.labels,
        });
      }
      for (const d of data) {
        const runs = new Map<string, Run>();
        for (const model of served) runs.set(model.name, await runModel(model, d, options, metrics));
        for (const model of served) {
          const run = runs.get(model.name)!;
          const scored = d.adapter.score(model.manifest, run.predictions);
          const result: ModelResult = {
            dataset: d.info.name,
            model: model.name,
            folder: folders[f],
            precision: model.precision,
            ...scored,
            items: d.adapter.size,
            seconds: run.seconds,
            itemsPerSecond: d.adapter.size / run.seconds,
            rows: run.rows,
            batches: run.batches,
            meanBatchRows: run.batches ? run.rows / run.batches : 0,
          };
          const reference = model.precision === 'fp32' ? undefined : runs.get(`${folders[f]}-fp32`);
          if (reference) result.fidelity = fidelityOf(run, reference, d.adapter, `${folders[f]}-fp32`);
          results.push(result);
          const exported = d.adapter.exportPredictions(model.manifest, run.predictions);
          predictions.push({
            file: `${slug(d.info.name)}.${model.name}.predictions.${exported.extension}`,
            content: exported.content,
          });
        }
      }
    } finally {
      await Promise.all(served.flatMap((model) => model.runners.map((runner) => runner.release())));
    }
  }

  // Differences against the baseline (named, or each folder's own fp32 model).
  for (const result of results) {
    const baselineName =
      options.baseline ?? (options.precisions.includes('fp32') ? `${result.folder}-fp32` : undefined);
    if (baselineName === undefined || baselineName === result.model) continue;
    const base = results.find((r) => r.model === baselineName && r.dataset === result.dataset);
    if (!base) continue;
    result.baseline = baselineName;
    result.difference = Object.fromEntries(
      Object.keys(result.metrics).map((key) => [key, difference(result.metrics[key], base.metrics[key])]),
    );
  }

  const report: EvalReport = {
    tool: 'sparse-bert-serve eval',
    version: converterVersion,
    createdAt: new Date().toISOString(),
    complete: true,
    task,
    settings: {
      precisions: options.precisions,
      selection: options.selection,
      concurrency: options.concurrency,
      runtime: options.runtime,
      batching: options.batching,
      ...(task === 'squad' ? { qa: options.qa } : {}),
      ...(task === 'conll' ? { aggregation: options.aggregation } : {}),
      ...(options.glueTask ? { glueTask: options.glueTask } : {}),
    },
    datasets: data.map((d) => ({
      ...d.info,
      evaluatedItems: d.adapter.size,
      selection: d.selection,
      metrics: d.adapter.metricSpecs,
    })),
    models,
    results,
    notes: [
      'Metrics are percentages. Differences are against the baseline (default: the fp32 model of the same folder).',
      'Fidelity compares each quantized model with the dense fp32 model of its folder on the very same token rows.',
    ],
  };
  return { report, predictions };
}
