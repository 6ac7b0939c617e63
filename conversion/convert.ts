import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { loadCheckpoint } from './checkpoint/load-checkpoint.js';
import { downloadCheckpoint } from './checkpoint/hub.js';
import { collectTokenizerFiles } from './checkpoint/tokenizer-files.js';
import { ConversionError } from './errors.js';
import { buildBertGraph, graphSignature } from './graph/bert-graph.js';
import { DynamicInt8Emitter, fp32Emitter } from './graph/linear-emitters.js';
import { encodeModel } from './graph/onnx-builder.js';
import {
  countParameters,
  denseModelFile,
  describePruning,
  describeQuantization,
  encoderCompression,
  hashFiles,
  int8ModelFile,
  manifestDimensions,
  manifestFormat,
  type Manifest,
} from './manifest.js';
import { packSparseInitializers } from './pack/sparse-initializers.js';
import { measureSparsity } from './sparsity/measure.js';
import { applyPruningRecipe } from './sparsity/prune.js';
import { defaultQuantizationRecipe, parsePruningRecipe, parseQuantizationRecipe } from './sparsity/recipe.js';
import { converterVersion } from './version.js';
import { engineTarget } from './verify/engine-outputs.js';
import { verifyArtifacts, type Tolerances, type VerificationReport } from './verify/verify.js';

export interface ConvertOptions {
  /** A checkpoint directory, or a Hugging Face Hub model id. */
  source: string;
  /** The artifact folder to create, e.g. models/<name>. */
  outputDir: string;
  overwrite: boolean;
  hub: { endpoint: string; token?: string; revision: string; cacheDir: string };
  pruneRecipePath?: string;
  /** Overrides the recipe's target_sparsity. */
  pruneSparsity?: number;
  quantizationRecipePath?: string;
  quantizeWordEmbeddings: boolean;
  maxSequenceLength?: number;
  tolerances: Tolerances;
  seed: number;
  /** Where the sparse engine addon is (default: the built one); it verifies the int8 weights too when it loads. */
  engineAddonPath?: string;
  log: (line: string) => void;
}

const hubIdPattern = /^[A-Za-z0-9][\w.-]*(\/[\w.-]+)?$/;

async function resolveSource(
  options: ConvertOptions,
): Promise<{ dir: string; kind: 'directory' | 'hub'; revision?: string }> {
  if (existsSync(options.source)) {
    if (!statSync(options.source).isDirectory())
      throw new ConversionError(options.source, 'is a file; give the checkpoint directory');
    return { dir: resolve(options.source), kind: 'directory' };
  }
  if (!hubIdPattern.test(options.source) || options.source.startsWith('.') || options.source.includes('..')) {
    throw new ConversionError(options.source, 'no such directory, and not a Hugging Face model id');
  }
  options.log(`fetching ${options.source}@${options.hub.revision} from ${options.hub.endpoint}`);
  let lastReport = 0;
  const dir = await downloadCheckpoint(options.source, {
    ...options.hub,
    onProgress: ({ file, receivedBytes, totalBytes, done }) => {
      const now = Date.now();
      if (!done && now - lastReport < 1000) return;
      lastReport = now;
      const total = totalBytes ? ` / ${(totalBytes / 1e6).toFixed(1)} MB` : '';
      options.log(`  ${file}: ${(receivedBytes / 1e6).toFixed(1)} MB${total}${done ? ' done' : ''}`);
    },
  });
  return { dir, kind: 'hub', revision: options.hub.revision };
}

function maxSequenceLength(
  requested: number | undefined,
  maxPositions: number,
  tokenizerConfig: string | undefined,
): number {
  const tokenizerMax = tokenizerConfig
    ? (JSON.parse(tokenizerConfig).model_max_length as number | undefined)
    : undefined;
  const limit = Math.min(maxPositions, tokenizerMax && tokenizerMax < 1e6 ? tokenizerMax : maxPositions);
  return requested ? Math.min(requested, maxPositions) : limit;
}

/** A conversion's staging folder, `.<name>.<pid>.converting`, renamed to `<name>` once everything is written. */
const stagingName = /^\.(.+)\.(\d+)\.converting$/;

function processAlive(pid: number): boolean {
  // This process has not started converting when the cleanup runs: a folder with its pid (a reused pid, e.g. 1 in a
  // container) is stale too.
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes staging folders in `dir` whose converting process is gone (an interrupted `convert` leaves a partial
 * model there), logging one line; folders of running conversions are left alone. Run by `convert` and `serve`.
 */
export function removeStaleStaging(dir: string, log: (line: string) => void): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  const pids: string[] = [];
  for (const name of names) {
    const match = stagingName.exec(name);
    if (!match || processAlive(Number(match[2]))) continue;
    const path = join(dir, name);
    try {
      if (!statSync(path).isDirectory()) continue;
      rmSync(path, { recursive: true, force: true });
    } catch {
      continue;
    }
    removed.push(path);
    pids.push(match[2]);
  }
  if (removed.length)
    log(
      `removed stale conversion staging folder${removed.length > 1 ? 's' : ''} ${removed.join(', ')} (process${pids.length > 1 ? 'es' : ''} ${pids.join(', ')} ${pids.length > 1 ? 'are' : 'is'} gone: an interrupted convert)`,
    );
  return removed;
}

/** checkpoint → graph → sparsity → quantize → pack → verify → manifest, written atomically into `outputDir`. */
export async function convert(options: ConvertOptions): Promise<Manifest> {
  const outputDir = resolve(options.outputDir);
  if (existsSync(outputDir) && !options.overwrite) {
    throw new ConversionError(outputDir, 'already exists; pass --force to replace it');
  }
  removeStaleStaging(dirname(outputDir), options.log);
  const pruningRecipe = options.pruneRecipePath
    ? parsePruningRecipe(options.pruneRecipePath, options.pruneSparsity)
    : undefined;
  const quantizationRecipe = options.quantizationRecipePath
    ? parseQuantizationRecipe(options.quantizationRecipePath)
    : defaultQuantizationRecipe;
  const source = await resolveSource(options);
  const log = options.log;

  log(`reading ${source.dir}`);
  const checkpoint = loadCheckpoint(source.dir);
  const { spec, model } = checkpoint;
  log(
    `${spec.architecture}: ${spec.numLayers} layers, hidden ${spec.hiddenSize}, ${spec.numHeads} heads, ${checkpoint.weightFormat} weights`,
  );
  const tokenizer = collectTokenizerFiles(source.dir, spec.maxPositions);
  if (tokenizer.vocabSize > spec.vocabSize) {
    throw new ConversionError(
      join(source.dir, 'tokenizer.json'),
      `vocabulary has ${tokenizer.vocabSize} tokens but the model embeds only ${spec.vocabSize}`,
    );
  }

  const checkpointSparsity = measureSparsity(model);
  log(`checkpoint encoder sparsity ${(checkpointSparsity.encoderLinearSparsity * 100).toFixed(2)}%`);
  let pruning: Manifest['sparsity']['pruning'] = null;
  if (pruningRecipe) {
    log(
      `WARNING: pruning one-shot with ${pruningRecipe.pruningFn} to ${pruningRecipe.targetSparsity} without retraining; expect an accuracy loss`,
    );
    const report = applyPruningRecipe(model, pruningRecipe);
    pruning = describePruning(pruningRecipe, report.prunedModules.length);
  }
  const finalSparsity = measureSparsity(model);
  if (pruningRecipe) log(`encoder sparsity after pruning ${(finalSparsity.encoderLinearSparsity * 100).toFixed(2)}%`);

  log('building dense fp32 graph');
  const denseBytes = encodeModel(buildBertGraph(spec, model, fp32Emitter, converterVersion));
  log('building int8 graph');
  const emitter = new DynamicInt8Emitter(quantizationRecipe.notToQuantize, options.quantizeWordEmbeddings);
  const int8Model = buildBertGraph(spec, model, emitter, converterVersion);
  const packReport = packSparseInitializers(int8Model);
  const int8Bytes = encodeModel(int8Model);

  const engine = engineTarget(spec, int8Model, options.engineAddonPath);
  log(
    `verifying: dense ONNX vs TypeScript reference, int8 (onnxruntime${'run' in engine ? ` and the sparse engine, ${engine.kernelPath}` : ''}) vs dense`,
  );
  if ('unavailable' in engine) log(`  sparse engine not verified: ${engine.unavailable}`);
  let verification;
  try {
    verification = await verifyArtifacts({
      spec,
      model,
      denseOnnx: denseBytes,
      int8Onnx: int8Bytes,
      tolerances: options.tolerances,
      seed: options.seed,
      engine,
    });
  } finally {
    if ('run' in engine) engine.dispose();
  }
  const { denseVsReference: d, int8VsDense: q } = verification;
  log(`  dense vs reference: max |diff| ${d.maxAbsDiff.toExponential(2)} (tolerance ${d.tolerance})`);
  log(
    `  int8 vs dense: cosine ${Object.entries(q.cosine)
      .map(([k, v]) => `${k} ${v.toFixed(5)}`)
      .join(
        ', ',
      )}; argmax agreement ${(q.argmaxAgreement * 100).toFixed(1)}%${q.spanAgreement !== undefined ? `; span agreement ${(q.spanAgreement * 100).toFixed(1)}%` : ''}`,
  );
  const e = verification.engineVsDense;
  if (e)
    log(
      `  engine vs dense: cosine ${Object.entries(e.cosine)
        .map(([k, v]) => `${k} ${v.toFixed(5)}`)
        .join(
          ', ',
        )}; mean |diff| ${e.meanAbsDiff.toExponential(2)} (onnxruntime int8 ${q.meanAbsDiff.toExponential(2)}); argmax agreement ${(e.argmaxAgreement * 100).toFixed(1)}%${e.spanAgreement !== undefined ? `; span agreement ${(e.spanAgreement * 100).toFixed(1)}%` : ''}`,
    );
  if (e)
    log(
      `  engine kernels (chosen from the measured densities): ${describeKernels(e.linears)}; attention ${e.attention}`,
    );
  if (!verification.passed) {
    const problems = [];
    if (e && !e.passed)
      problems.push(`engine cosine ${Math.min(...Object.values(e.cosine)).toFixed(5)} below ${e.minCosine}`);
    if (!d.passed)
      problems.push(`dense ONNX differs from the reference by ${d.maxAbsDiff.toExponential(2)} (> ${d.tolerance})`);
    if (Math.min(...Object.values(q.cosine)) < q.minCosine)
      problems.push(`int8 cosine ${Math.min(...Object.values(q.cosine)).toFixed(5)} below ${q.minCosine}`);
    throw new ConversionError(outputDir, `verification failed: ${problems.join('; ')}; nothing written`);
  }

  const staging = join(dirname(outputDir), `.${basename(outputDir)}.${process.pid}.converting`);
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  try {
    writeFileSync(join(staging, denseModelFile), denseBytes);
    writeFileSync(join(staging, int8ModelFile), int8Bytes);
    for (const [name, contents] of tokenizer.files) writeFileSync(join(staging, name), contents);
    writeFileSync(join(staging, 'config.json'), JSON.stringify(checkpoint.rawConfig, null, 2) + '\n');
    const manifest: Manifest = {
      format: manifestFormat,
      converterVersion,
      createdAt: new Date().toISOString(),
      name: basename(outputDir),
      source: {
        kind: source.kind,
        location: source.kind === 'hub' ? options.source : source.dir,
        revision: source.revision,
        weightFormat: checkpoint.weightFormat,
        weightFiles: checkpoint.weightFiles,
      },
      task: spec.task,
      architecture: spec.architecture,
      family: spec.family,
      labels: spec.labels,
      maxSequenceLength: maxSequenceLength(
        options.maxSequenceLength,
        spec.maxPositions,
        tokenizer.files.get('tokenizer_config.json'),
      ),
      lowercase: tokenizer.lowercase,
      signature: graphSignature(spec),
      dimensions: manifestDimensions(spec),
      parameters: countParameters(model),
      sparsity: { checkpoint: checkpointSparsity, final: finalSparsity, pruning },
      quantization: describeQuantization(
        quantizationRecipe,
        emitter.quantizedModules.length,
        emitter.fp32Modules,
        options.quantizeWordEmbeddings,
      ),
      compression: encoderCompression(model),
      artifacts: {
        [denseModelFile]: { precision: 'fp32', sparseStorage: false },
        [int8ModelFile]: { precision: 'int8', sparseStorage: packReport.packedTensors > 0 },
      },
      verification,
      files: hashFiles(staging, ['manifest.json']),
    };
    writeFileSync(join(staging, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    rmSync(outputDir, { recursive: true, force: true });
    mkdirSync(dirname(outputDir), { recursive: true });
    renameSync(staging, outputDir);
    return manifest;
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    throw error;
  }
}

/** "qkv 12 sparse-out-blocks (4-output-block density 0.20); ..." per linear name, from the manifest's record. */
function describeKernels(linears: NonNullable<VerificationReport['engineVsDense']>['linears']): string {
  const byName = new Map<string, typeof linears>();
  for (const linear of linears) byName.set(linear.name, [...(byName.get(linear.name) ?? []), linear]);
  return [...byName]
    .map(([name, list]) => {
      const kernels = new Map<string, number>();
      for (const linear of list) kernels.set(linear.kernel, (kernels.get(linear.kernel) ?? 0) + 1);
      const mean = (key: 'quads' | 'outputBlocks') => list.reduce((sum, l) => sum + l.densities[key], 0) / list.length;
      return `${name} ${[...kernels].map(([k, n]) => `${n} ${k}`).join(' + ')} (quad density ${mean('quads').toFixed(2)}, 4-output-block density ${mean('outputBlocks').toFixed(2)})`;
    })
    .join('; ');
}
