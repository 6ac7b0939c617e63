/**
 * Finds and loads the native engine (engine/build/Release/sbs_engine.node, built by `npm ci`). Loading never throws:
 * without the addon the caller gets the reason, and the server serves int8 on onnxruntime instead.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EngineSpec, EngineTensors } from './engine-weights.js';

export type KernelPath = 'scalar' | 'avx2' | 'avxvnni' | 'avx512vnni';
/** The tile GEMM a linear runs on: chosen per linear from its measured densities unless forced. */
export type LinearKernel = 'dense' | 'sparse-quads' | 'sparse-out-blocks';

/** What the engine measured of one encoder linear's weights and which kernel it chose. */
export interface EngineLinear {
  layer: number;
  name: 'qkv' | 'attention_output' | 'intermediate' | 'output';
  kernel: LinearKernel;
  /** Shares of non-zero weights, of non-zero 4-input quads, and of non-zero (4-output-channel block, input) pairs. */
  densities: { weights: number; quads: number; outputBlocks: number };
  packedBytes: number;
}

export interface NativeEngine {
  run(ids: Int32Array, typeIds: Int32Array | null, offsets: Int32Array): Promise<Float32Array[]>;
  info(): {
    isa: KernelPath;
    threads: number;
    ops: string;
    /** int8-avx512vnni, or the ops' fp32 attention (avx512 / portable). */
    attention: string;
    layers: string;
    linears: EngineLinear[];
  };
  profile(): { runs: number; seconds: Record<string, number> };
  dispose(): void;
}

export interface EngineAddon {
  Engine: new (
    spec: EngineSpec,
    tensors: EngineTensors,
    options: {
      threads: number;
      isa?: KernelPath;
      linearKernel?: LinearKernel | 'auto';
      attention?: 'int8' | 'fp32';
      ops?: 'avx512' | 'portable';
    },
  ) => NativeEngine;
  cpuInfo(): { best: KernelPath; supported: KernelPath[]; ops: 'avx512' | 'portable' };
}

export type AddonStatus = { available: true; addon: EngineAddon; path: string } | { available: false; reason: string };

const addonRelativePath = join('engine', 'build', 'Release', 'sbs_engine.node');

/** The repository root holding engine/: from src/runtime under tsx, or dist/src/runtime after the build. */
function defaultAddonPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, addonRelativePath);
    if (existsSync(candidate)) return candidate;
    dir = resolve(dir, '..');
  }
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', addonRelativePath);
}

const cache = new Map<string, AddonStatus>();

/** `SBS_ENGINE_ADDON` (a path, passed in by the caller from its config) overrides where the addon is looked for. */
export function loadEngineAddon(path: string = defaultAddonPath()): AddonStatus {
  const cached = cache.get(path);
  if (cached) return cached;
  let status: AddonStatus;
  if (!existsSync(path)) {
    status = { available: false, reason: `${path} is not built (npm ci builds it; needs g++, make, python3)` };
  } else {
    try {
      const addon = createRequire(import.meta.url)(path) as EngineAddon;
      status = { available: true, addon, path };
    } catch (error) {
      status = { available: false, reason: `${path} does not load: ${(error as Error).message.split('\n')[0]}` };
    }
  }
  cache.set(path, status);
  return status;
}

/** VNNI paths are where the engine beats onnxruntime; on older CPUs `auto` keeps onnxruntime. */
export const vnniPaths: KernelPath[] = ['avx512vnni', 'avxvnni'];
