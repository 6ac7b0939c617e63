import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { denseModelFile, int8ModelFile, manifestFormat, type Manifest } from '../../conversion/manifest.js';
import { Batcher } from '../batcher/batcher.js';
import type { Precision, RuntimeConfig, ServerConfig } from '../config.js';
import type { ServerMetrics } from '../metrics.js';
import { loadEngineAddon, vnniPaths, type EngineAddon } from '../runtime/engine-addon.js';
import { EngineRunner } from '../runtime/engine-runner.js';
import { EngineUnsupportedError } from '../runtime/engine-weights.js';
import { OnnxRunner } from '../runtime/onnx-runner.js';
import type { Backend, ModelRunner, RowOutputs } from '../runtime/runner.js';
import { BertTokenizer } from '../tasks/tokenizer.js';

/** A model folder that cannot be served; start-up stops with this one-line message. */
export class ModelLoadError extends Error {
  constructor(folder: string, problem: string) {
    super(`${folder}: ${problem}`);
    this.name = 'ModelLoadError';
  }
}

export interface ServedModel {
  /** `<folder>-int8`, `<folder>-fp32`, or `<folder>-int8-ort` (onnxruntime int8 beside the engine's). */
  name: string;
  folder: string;
  precision: Precision;
  backend: Backend;
  /** The engine's kernel path (avx512vnni, avxvnni, avx2, scalar), or "cpu" for onnxruntime. */
  kernelPath: string;
  manifest: Manifest;
  tokenizer: BertTokenizer;
  batcher: Batcher<RowOutputs>;
  runners: ModelRunner[];
}

/** Which backends serve int8 models, decided once per process from the config and what the addon can do. */
export interface BackendPlan {
  int8: Backend[];
  addon?: EngineAddon;
  /** One line for the start-up log. */
  summary: string;
  /** `auto` may still fall back per model (an artifact the engine cannot run); `engine` may not. */
  strict: boolean;
}

export function planBackends(runtime: Pick<RuntimeConfig, 'backend' | 'engine' | 'threads'>): BackendPlan {
  if (runtime.backend === 'onnxruntime') return { int8: ['onnxruntime'], summary: 'int8 models run on onnxruntime (--backend onnxruntime)', strict: false };
  const status = loadEngineAddon(runtime.engine.addonPath);
  if (!status.available) {
    if (runtime.backend !== 'auto') throw new ModelLoadError('engine', `--backend ${runtime.backend} but the sparse engine is unavailable: ${status.reason}`);
    return { int8: ['onnxruntime'], summary: `sparse engine unavailable (${status.reason}); int8 models run on onnxruntime`, strict: false };
  }
  const cpu = status.addon.cpuInfo();
  const path = runtime.engine.isa ?? cpu.best;
  if (runtime.backend === 'auto' && !vnniPaths.includes(path)) {
    return { int8: ['onnxruntime'], summary: `sparse engine loaded, but this CPU has no VNNI kernel path (best: ${cpu.best}); int8 models run on onnxruntime (--backend engine forces it)`, strict: false };
  }
  const both = runtime.backend === 'both';
  return {
    int8: both ? ['engine', 'onnxruntime'] : ['engine'],
    addon: status.addon,
    summary: `int8 models run on the sparse engine (${path} kernels, ops ${cpu.ops}, ${runtime.threads} threads)${both ? '; onnxruntime int8 beside it as <folder>-int8-ort' : ''}`,
    strict: runtime.backend !== 'auto',
  };
}

interface Variant {
  name: string;
  precision: Precision;
  backend: Backend;
}

function variants(folder: string, precisions: Precision[], plan: BackendPlan): Variant[] {
  return precisions.flatMap((precision): Variant[] => {
    if (precision === 'fp32') return [{ name: `${folder}-fp32`, precision, backend: 'onnxruntime' }];
    return plan.int8.map((backend, i) => ({ name: i === 0 ? `${folder}-int8` : `${folder}-int8-ort`, precision, backend }));
  });
}

const artifactFile: Record<Precision, string> = { int8: int8ModelFile, fp32: denseModelFile };

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function readVerifiedManifest(dir: string, folder: string): Promise<Manifest> {
  const manifestPath = join(dir, 'manifest.json');
  if (!existsSync(manifestPath)) throw new ModelLoadError(folder, 'no manifest.json: not a converted model (run "sbs convert" first)');
  let manifest: Manifest;
  try {
    manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
  } catch (error) {
    throw new ModelLoadError(folder, `manifest.json is not valid JSON: ${(error as Error).message}`);
  }
  if (manifest.format !== manifestFormat) throw new ModelLoadError(folder, `manifest.json has format ${JSON.stringify(manifest.format)}, expected ${manifestFormat}`);
  for (const [file, expected] of Object.entries(manifest.files ?? {})) {
    const path = join(dir, file);
    if (!existsSync(path)) throw new ModelLoadError(folder, `${file} is listed in manifest.json but missing`);
    const actual = await sha256(path);
    if (actual !== expected.sha256) throw new ModelLoadError(folder, `${file} does not match its sha256 in manifest.json (corrupt or modified)`);
  }
  return manifest;
}

/**
 * One converted model folder → one served model per requested precision, after checking every file against the
 * manifest. Used by the server and by evaluation, so both run exactly the same runtime and batching code.
 */
export async function loadModelFolder(
  dir: string,
  config: Pick<ServerConfig, 'precisions' | 'runtime' | 'batching'>,
  metrics: ServerMetrics,
  plan: BackendPlan = planBackends(config.runtime),
  log: (message: string) => void = () => {},
): Promise<ServedModel[]> {
  const folder = basename(dir);
  const manifest = await readVerifiedManifest(dir, folder);
  let tokenizer: BertTokenizer;
  try {
    tokenizer = BertTokenizer.fromFiles(dir);
  } catch (error) {
    throw new ModelLoadError(folder, `tokenizer: ${(error as Error).message}`);
  }
  const models: ServedModel[] = [];
  const releaseAll = (extra: ModelRunner[]) => Promise.all([...models.flatMap((m) => m.runners), ...extra].map((runner) => runner.release()));
  for (const variant of variants(folder, config.precisions, plan)) {
    let backend = variant.backend;
    const runners: ModelRunner[] = [];
    for (let i = 0; i < config.runtime.sessionsPerModel; i++) {
      if (backend === 'engine') {
        try {
          runners.push(EngineRunner.create(plan.addon!, dir, manifest, { threads: config.runtime.threads, ...config.runtime.engine }));
          continue;
        } catch (error) {
          const reason = (error as Error).message.split('\n')[0];
          if (plan.strict || !(error instanceof EngineUnsupportedError)) {
            await releaseAll(runners);
            throw new ModelLoadError(folder, `${int8ModelFile} cannot be loaded on the sparse engine: ${reason}`);
          }
          log(`${variant.name}: the sparse engine cannot run this artifact (${reason}); serving it on onnxruntime`);
          backend = 'onnxruntime';
        }
      }
      try {
        runners.push(await OnnxRunner.create(join(dir, artifactFile[variant.precision]), manifest.signature, manifest.task !== 'text-classification', tokenizer.padId, config.runtime));
      } catch (error) {
        await releaseAll(runners);
        throw new ModelLoadError(folder, `${artifactFile[variant.precision]} cannot be loaded: ${(error as Error).message.split('\n')[0]}`);
      }
    }
    const ragged = runners.every((runner) => runner.ragged);
    const batcher = new Batcher<RowOutputs>({ ...config.batching, ragged }, runners.map((runner) => runner.run), metrics.batcherObserver(variant.name));
    const kernelPath = runners[0].kernelPath;
    models.push({ name: variant.name, folder, precision: variant.precision, backend, kernelPath, manifest, tokenizer, batcher, runners });
    metrics.modelInfo.set({ model: variant.name, task: manifest.task, precision: variant.precision, sparsity: manifest.sparsity.final.encoderLinearSparsity.toFixed(4), backend, kernel_path: kernelPath }, 1);
  }
  return models;
}

export class ModelRegistry {
  private constructor(private readonly models: Map<string, ServedModel>) {}

  /** Loads every converted model folder (hidden folders, e.g. a conversion in progress, are skipped). */
  static async load(config: ServerConfig, metrics: ServerMetrics, log: (message: string) => void): Promise<ModelRegistry> {
    const folders = existsSync(config.modelsDir)
      ? readdirSync(config.modelsDir)
          .filter((name) => !name.startsWith('.') && statSync(join(config.modelsDir, name)).isDirectory())
          .sort()
      : [];
    const missing = (config.modelFolders ?? []).filter((name) => !folders.includes(name));
    if (missing.length) throw new ModelLoadError(config.modelsDir, `no model folder named ${missing.join(', ')}`);
    const models = new Map<string, ServedModel>();
    const plan = planBackends(config.runtime);
    if (config.precisions.includes('int8')) log(plan.summary);
    try {
      for (const folder of folders.filter((name) => !config.modelFolders || config.modelFolders.includes(name))) {
        for (const model of await loadModelFolder(join(config.modelsDir, folder), config, metrics, plan, log)) {
          models.set(model.name, model);
          log(`loaded ${model.name} (${model.manifest.task}, ${model.manifest.architecture}, encoder sparsity ${(model.manifest.sparsity.final.encoderLinearSparsity * 100).toFixed(1)}%, ${model.backend}${model.backend === 'engine' ? ` ${model.kernelPath}` : ''})`);
        }
      }
    } catch (error) {
      await Promise.all([...models.values()].flatMap((model) => model.runners.map((runner) => runner.release())));
      throw error;
    }
    return new ModelRegistry(models);
  }

  get size(): number {
    return this.models.size;
  }

  get(name: string): ServedModel | undefined {
    return this.models.get(name);
  }

  list(): ServedModel[] {
    return [...this.models.values()];
  }

  /** The default model of a task: the first int8 one (by folder name), else the first of any precision. */
  defaultFor(task: Manifest['task']): ServedModel | undefined {
    const candidates = this.list().filter((model) => model.manifest.task === task);
    return candidates.find((model) => model.precision === 'int8') ?? candidates[0];
  }

  /** One short and one full-length batch per model, so first requests do not pay for ORT's lazy allocations. */
  async warmUp(): Promise<void> {
    for (const model of this.models.values()) {
      const { clsId, sepId } = model.tokenizer;
      const row = (length: number) => ({ ids: [clsId, ...new Array(length - 2).fill(sepId), sepId], typeIds: new Array(length).fill(0) });
      for (const runner of model.runners) {
        await runner.run([row(16)]);
        await runner.run([row(Math.min(128, model.manifest.maxSequenceLength)), row(64)]);
      }
    }
  }

  async drain(): Promise<void> {
    await Promise.all(this.list().map((model) => model.batcher.drain()));
  }

  async release(): Promise<void> {
    await Promise.all(this.list().flatMap((model) => model.runners.map((runner) => runner.release())));
  }
}
