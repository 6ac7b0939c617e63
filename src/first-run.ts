import { existsSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HubError } from '../conversion/checkpoint/hub.js';
import { convert } from '../conversion/convert.js';
import { dimensionPresets, generateCheckpoint } from '../conversion/generate/random-checkpoint.js';
import { defaultTolerances } from '../conversion/verify/verify.js';
import type { ServerConfig } from './config.js';

export const demoModelName = 'demo-random-qa';

export class FirstRunError extends Error {
  override name = 'FirstRunError';
}

export function hasModels(modelsDir: string): boolean {
  return (
    existsSync(modelsDir) &&
    readdirSync(modelsDir).some((name) => !name.startsWith('.') && existsSync(join(modelsDir, name, 'manifest.json')))
  );
}

/**
 * An empty models folder on first start: with --demo, generate and convert a small random-weight QA model;
 * otherwise fetch and convert the default Prune OFA checkpoint from the Hub, or explain the two ways forward.
 */
export async function prepareFirstRun(config: ServerConfig, log: (line: string) => void): Promise<void> {
  const common = {
    overwrite: true,
    quantizeWordEmbeddings: true,
    tolerances: defaultTolerances,
    seed: 7,
    log,
    hub: config.firstRun.hub,
  };
  if (config.firstRun.demo) {
    log(
      '*** DEMO MODE: generating a small QA model with RANDOM weights. Its answers are MEANINGLESS; it only shows the server working. ***',
    );
    const checkpoint = generateCheckpoint({
      outDir: join(tmpdir(), `sbs-demo-checkpoint-${process.pid}`),
      family: 'bert',
      task: 'question-answering',
      dims: dimensionPresets.small,
      format: 'safetensors',
      seed: 42,
      sparsity: 0.9,
    });
    try {
      await convert({ ...common, source: checkpoint, outputDir: join(config.modelsDir, demoModelName) });
    } finally {
      rmSync(checkpoint, { recursive: true, force: true });
    }
    return;
  }
  const id = config.firstRun.defaultModelId;
  log(`no models in ${config.modelsDir}: fetching and converting ${id} from ${config.firstRun.hub.endpoint}`);
  try {
    await convert({ ...common, source: id, outputDir: join(config.modelsDir, id.split('/').pop()!) });
  } catch (error) {
    if (error instanceof HubError) {
      throw new FirstRunError(
        `${error.message}\n` +
          `No model to serve. Two ways forward:\n` +
          `  1. convert a local checkpoint:  npm run convert -- <checkpoint-dir> --models-dir ${config.modelsDir}\n` +
          `  2. serve a demo model with random weights (meaningless answers):  npm start -- --demo`,
      );
    }
    throw error;
  }
}
