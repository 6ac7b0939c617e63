import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { denseModelFile, int8ModelFile, manifestFormat, type Manifest } from '../../conversion/manifest.js';
import { Batcher } from '../batcher/batcher.js';
import type { Precision, ServerConfig } from '../config.js';
import type { ServerMetrics } from '../metrics.js';
import { OnnxRunner, type RowOutputs } from '../runtime/onnx-runner.js';
import { BertTokenizer } from '../tasks/tokenizer.js';

/** A model folder that cannot be served; start-up stops with this one-line message. */
export class ModelLoadError extends Error {
  constructor(folder: string, problem: string) {
    super(`${folder}: ${problem}`);
    this.name = 'ModelLoadError';
  }
}

export interface ServedModel {
  /** `<folder>-int8` or `<folder>-fp32`. */
  name: string;
  folder: string;
  precision: Precision;
  manifest: Manifest;
  tokenizer: BertTokenizer;
  batcher: Batcher<RowOutputs>;
  runners: OnnxRunner[];
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
  for (const precision of config.precisions) {
    const name = `${folder}-${precision}`;
    const runners: OnnxRunner[] = [];
    for (let i = 0; i < config.runtime.sessionsPerModel; i++) {
      try {
        runners.push(await OnnxRunner.create(join(dir, artifactFile[precision]), manifest.signature, manifest.task !== 'text-classification', tokenizer.padId, config.runtime));
      } catch (error) {
        await Promise.all([...models.flatMap((m) => m.runners), ...runners].map((runner) => runner.release()));
        throw new ModelLoadError(folder, `${artifactFile[precision]} cannot be loaded: ${(error as Error).message.split('\n')[0]}`);
      }
    }
    const batcher = new Batcher<RowOutputs>(config.batching, runners.map((runner) => runner.run), metrics.batcherObserver(name));
    models.push({ name, folder, precision, manifest, tokenizer, batcher, runners });
    metrics.modelInfo.set({ model: name, task: manifest.task, precision, sparsity: manifest.sparsity.final.encoderLinearSparsity.toFixed(4) }, 1);
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
    try {
      for (const folder of folders.filter((name) => !config.modelFolders || config.modelFolders.includes(name))) {
        for (const model of await loadModelFolder(join(config.modelsDir, folder), config, metrics)) {
          models.set(model.name, model);
          log(`loaded ${model.name} (${model.manifest.task}, ${model.manifest.architecture}, encoder sparsity ${(model.manifest.sparsity.final.encoderLinearSparsity * 100).toFixed(1)}%)`);
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
