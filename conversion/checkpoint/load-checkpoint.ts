import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ConversionError } from '../errors.js';
import { resolveLayout, type ModelWeights } from './layout.js';
import { parseModelConfig, type ModelSpec } from './model-config.js';
import { readOnnxExportWeights } from './onnx-import.js';
import { readSafetensors } from './safetensors.js';
import type { WeightMap } from './tensor.js';
import { readTorchBin } from './torch-bin.js';

export interface LoadedCheckpoint {
  dir: string;
  rawConfig: Record<string, unknown>;
  spec: ModelSpec;
  model: ModelWeights;
  /** The weight files read, relative to `dir`. */
  weightFiles: string[];
  weightFormat: 'safetensors' | 'pytorch' | 'onnx';
}

function readJson(path: string): Record<string, unknown> {
  if (!existsSync(path)) throw new ConversionError(path, 'file not found');
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new ConversionError(path, `not valid JSON: ${(error as Error).message}`);
  }
}

function shardsOf(indexPath: string): string[] {
  const index = readJson(indexPath) as { weight_map?: Record<string, string> };
  if (!index.weight_map || typeof index.weight_map !== 'object') {
    throw new ConversionError(indexPath, 'has no "weight_map"');
  }
  return [...new Set(Object.values(index.weight_map))];
}

/** Finds the weight files in the order Hugging Face prefers them. */
export function findWeightFiles(dir: string): { files: string[]; format: LoadedCheckpoint['weightFormat'] } {
  const has = (name: string) => existsSync(join(dir, name));
  if (has('model.safetensors')) return { files: ['model.safetensors'], format: 'safetensors' };
  if (has('model.safetensors.index.json'))
    return { files: shardsOf(join(dir, 'model.safetensors.index.json')), format: 'safetensors' };
  if (has('pytorch_model.bin')) return { files: ['pytorch_model.bin'], format: 'pytorch' };
  if (has('pytorch_model.bin.index.json'))
    return { files: shardsOf(join(dir, 'pytorch_model.bin.index.json')), format: 'pytorch' };
  // An fp32 export (optimum writes model.onnx at the top, Hub repos often under onnx/): weights are read out of it.
  for (const file of ['model.onnx', 'onnx/model.onnx']) if (has(file)) return { files: [file], format: 'onnx' };
  throw new ConversionError(
    dir,
    'no weights found: expected model.safetensors, model.safetensors.index.json, pytorch_model.bin, pytorch_model.bin.index.json or an fp32 model.onnx export',
  );
}

export function loadCheckpoint(dir: string): LoadedCheckpoint {
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new ConversionError(dir, 'checkpoint directory not found');
  const configPath = join(dir, 'config.json');
  const rawConfig = readJson(configPath);
  const spec = parseModelConfig(rawConfig, configPath);
  const { files, format } = findWeightFiles(dir);
  const weights: WeightMap = new Map();
  for (const file of files) {
    const path = join(dir, file);
    if (!existsSync(path)) throw new ConversionError(path, 'weight shard listed in the index is missing');
    if (format === 'safetensors') readSafetensors(path, weights);
    else
      for (const [name, tensor] of format === 'pytorch' ? readTorchBin(path) : readOnnxExportWeights(path))
        weights.set(name, tensor);
  }
  const model = resolveLayout(spec, weights, join(dir, files.length === 1 ? files[0] : files.join(',')));
  return { dir, rawConfig, spec, model, weightFiles: files, weightFormat: format };
}
