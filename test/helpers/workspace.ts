import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import type { Family, Task } from '../../conversion/checkpoint/model-config.js';
import { dimensionPresets, generateCheckpoint } from '../../conversion/generate/random-checkpoint.js';
import type { ConvertOptions } from '../../conversion/convert.js';
import { defaultTolerances } from '../../conversion/verify/verify.js';

/** A temp folder removed when the test file finishes. */
export function workspace(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function tinyCheckpoint(
  root: string,
  name: string,
  family: Family,
  task: Task,
  extra: { format?: 'safetensors' | 'pytorch'; sparsity?: number; seed?: number } = {},
): string {
  return generateCheckpoint({
    outDir: join(root, name),
    family,
    task,
    dims: dimensionPresets.tiny,
    format: extra.format ?? 'safetensors',
    seed: extra.seed ?? 3,
    sparsity: extra.sparsity,
  });
}

export function convertOptions(source: string, outputDir: string, extra: Partial<ConvertOptions> = {}): ConvertOptions {
  return {
    source,
    outputDir,
    overwrite: false,
    hub: { endpoint: 'http://127.0.0.1:9', revision: 'main', cacheDir: join(outputDir, '..', 'hub-cache') },
    quantizeWordEmbeddings: true,
    tolerances: defaultTolerances,
    seed: 7,
    log: () => {},
    ...extra,
  };
}
