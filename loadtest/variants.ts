/**
 * Which served models a load test compares. The server names each converted folder's artifacts `<folder>-fp32`
 * (dense baseline) and `<folder>-int8` (sparse int8); by default the load test compares the two of one folder.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { LoadtestError, manifestTask, type LoadtestTask, type VariantInfo } from './types.js';

const suffix = /-(int8|fp32)(?:-ort)?$/;

export interface LocalPlan {
  models: string[];
  folders: string[];
  precisions: string[];
}

/** Converted folders (with a manifest) in a models folder, with their task. */
export function localFolders(modelsDir: string): { folder: string; task: string }[] {
  if (!existsSync(modelsDir) || !statSync(modelsDir).isDirectory())
    throw new LoadtestError(`${modelsDir}: models folder not found (convert a checkpoint first, or pass --url)`);
  return readdirSync(modelsDir)
    .filter((name) => !name.startsWith('.') && existsSync(join(modelsDir, name, 'manifest.json')))
    .sort()
    .map((folder) => {
      try {
        const manifest = JSON.parse(readFileSync(join(modelsDir, folder, 'manifest.json'), 'utf8')) as {
          task?: string;
        };
        return { folder, task: manifest.task ?? 'unknown' };
      } catch {
        return { folder, task: 'unknown' };
      }
    });
}

/** Before starting a server: the model names, the folders to load and the precisions, checked against the folder. */
export function planLocal(modelsDir: string, task: LoadtestTask, models: string[] | undefined): LocalPlan {
  const available = localFolders(modelsDir);
  const names = available.flatMap(({ folder }) => [`${folder}-fp32`, `${folder}-int8`]);
  let chosen = models;
  if (!chosen) {
    const first = available.find((entry) => entry.task === manifestTask[task]);
    if (!first)
      throw new LoadtestError(
        `${modelsDir}: no converted ${manifestTask[task]} model (found: ${available.map((a) => `${a.folder} (${a.task})`).join(', ') || 'none'})`,
      );
    chosen = [`${first.folder}-fp32`, `${first.folder}-int8`];
  }
  for (const name of chosen) {
    const folder = name.replace(suffix, '');
    const entry = available.find((a) => a.folder === folder);
    if (!suffix.test(name) || !entry)
      throw new LoadtestError(
        `unknown model "${name}": ${modelsDir} serves ${names.join(', ') || 'nothing'} (a folder's models are <folder>-fp32 and <folder>-int8, and <folder>-int8-ort beside the engine with --serve-args="--backend engine,onnxruntime")`,
      );
    if (entry.task !== manifestTask[task])
      throw new LoadtestError(`model "${name}" is a ${entry.task} model, not ${manifestTask[task]} (--task ${task})`);
  }
  return {
    models: chosen,
    folders: [...new Set(chosen.map((name) => name.replace(suffix, '')))],
    precisions: [...new Set(chosen.map((name) => suffix.exec(name)![1]))],
  };
}

export interface ServedModelInfo {
  name: string;
  task: string;
  precision?: string;
  encoder_sparsity?: number;
  compression_ratio?: number;
  max_sequence_length?: number;
}

/** After GET /models: every requested model must be served and of the task; the baseline goes first. */
export function resolveVariants(
  served: ServedModelInfo[],
  task: LoadtestTask,
  models: string[] | undefined,
  baseline: string | undefined,
): VariantInfo[] {
  const wanted = manifestTask[task];
  const ofTask = served.filter((model) => model.task === wanted);
  let chosen = models;
  if (!chosen) {
    const folders = [...new Set(ofTask.map((model) => model.name.replace(suffix, '')))];
    const pair = folders.find((folder) =>
      ['fp32', 'int8'].every((p) => ofTask.some((model) => model.name === `${folder}-${p}`)),
    );
    if (!pair)
      throw new LoadtestError(
        `the server has no fp32 + int8 pair of a ${wanted} model to compare (it serves ${served.map((m) => m.name).join(', ') || 'nothing'}); name the models with --models`,
      );
    chosen = [`${pair}-fp32`, `${pair}-int8`];
  }
  const infos = chosen.map((name) => {
    const model = served.find((m) => m.name === name);
    if (!model)
      throw new LoadtestError(`unknown model "${name}": the server serves ${served.map((m) => m.name).join(', ')}`);
    if (model.task !== wanted)
      throw new LoadtestError(`model "${name}" is a ${model.task} model, not ${wanted} (--task ${task})`);
    return model;
  });
  const base =
    baseline ?? infos.find((model) => model.precision === 'fp32' || model.name.endsWith('-fp32'))?.name ?? undefined;
  if (baseline && !chosen.includes(baseline))
    throw new LoadtestError(`--baseline ${baseline} is not one of the compared models (${chosen.join(', ')})`);
  const ordered = [...infos].sort((a, b) => Number(b.name === base) - Number(a.name === base));
  return ordered.map((model) => ({
    name: model.name,
    precision: model.precision,
    task: model.task,
    encoderSparsity: model.encoder_sparsity,
    compressionRatio: model.compression_ratio,
    maxSequenceLength: model.max_sequence_length,
    role: model.name === base ? 'baseline' : 'compared',
  }));
}
