/** Tiny converted models and runners for the engine tests: the engine, onnxruntime int8 and fp32 on the same folder. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Family, Task } from '../../conversion/checkpoint/model-config.js';
import { convert } from '../../conversion/convert.js';
import { dimensionPresets, generateCheckpoint } from '../../conversion/generate/random-checkpoint.js';
import type { PruningBlock } from '../../conversion/sparsity/block.js';
import type { Manifest } from '../../conversion/manifest.js';
import type { BatchRow } from '../../src/batcher/batcher.js';
import { loadEngineAddon, type EngineAddon } from '../../src/runtime/engine-addon.js';
import { EngineRunner, type EngineSettings } from '../../src/runtime/engine-runner.js';
import { OnnxRunner } from '../../src/runtime/onnx-runner.js';
import { convertOptions, tinyCheckpoint } from './workspace.js';

/**
 * The built addon (or the one SBS_ENGINE_ADDON names); the engine tests fail (not skip) without it: CI must never
 * lose the fast path silently.
 */
export function requireAddon(): EngineAddon {
  const status = loadEngineAddon(process.env.SBS_ENGINE_ADDON || undefined);
  assert.ok(status.available, `the sparse engine addon is not built: ${status.available ? '' : status.reason}`);
  return status.addon;
}

export async function tinyModel(
  root: string,
  name: string,
  family: Family,
  task: Task,
  sparsity: number,
  seed = 5,
  dims?: Partial<(typeof dimensionPresets)['tiny']>,
  sparsityBlock?: PruningBlock,
): Promise<{ dir: string; manifest: Manifest }> {
  const checkpoint =
    dims || sparsityBlock
      ? generateCheckpoint({
          outDir: join(root, `ckpt-${name}`),
          family,
          task,
          dims: { ...dimensionPresets.tiny, ...dims },
          format: 'safetensors',
          seed,
          sparsity,
          ...(sparsityBlock ? { sparsityBlock } : {}),
        })
      : tinyCheckpoint(root, `ckpt-${name}`, family, task, { sparsity, seed });
  const dir = join(root, 'models', name);
  await convert(convertOptions(checkpoint, dir));
  return { dir, manifest: JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) };
}

export function engineRunner(
  addon: EngineAddon,
  model: { dir: string; manifest: Manifest },
  settings: Partial<EngineSettings> = {},
) {
  return EngineRunner.create(addon, model.dir, model.manifest, { threads: 2, ...settings });
}

/** The same model on the portable (non-AVX-512) attention, GELU and LayerNorm. */
export function portableOpsEngine(addon: EngineAddon, model: { dir: string; manifest: Manifest }) {
  return EngineRunner.create(addon, model.dir, model.manifest, { threads: 2, ops: 'portable' });
}

export function onnxRunner(model: { dir: string; manifest: Manifest }, file: 'model.onnx' | 'model.int8.onnx') {
  return OnnxRunner.create(
    join(model.dir, file),
    model.manifest.signature,
    model.manifest.task !== 'text-classification',
    0,
    {
      threads: 1,
      allowSpinning: false,
    },
  );
}

/** Seeded rows of the given lengths: [CLS] random ids [SEP], type ids 0 then 1 for the second half. */
export function randomRows(lengths: number[], vocab: number, seed = 1): BatchRow[] {
  let state = seed;
  const next = () => ((state = (state * 1103515245 + 12345) % 2 ** 31), state);
  return lengths.map((length) => ({
    ids: Array.from({ length }, (_, i) => (i === 0 ? 2 : i === length - 1 ? 3 : 5 + (next() % (vocab - 5)))),
    typeIds: Array.from({ length }, (_, i) => (i < length / 2 ? 0 : 1)),
  }));
}
