import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { basename, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { Manifest } from '../conversion/manifest.js';
import { denseModelFile, int8ModelFile } from '../conversion/manifest.js';
import type { EngineAddon, KernelPath, LinearKernel, NativeEngine } from '../src/runtime/engine-addon.js';
import { engineWeights } from '../src/runtime/engine-weights.js';
import { readModelFile } from '../src/runtime/onnx-initializers.js';

export interface LatencyBenchOptions {
  modelDirs: string[];
  batchSizes: number[];
  sequenceLengths: number[];
  threads: number[];
  /** Timed runs per variant and shape (after warm-up), unless the time budget ends first (at least 3 are kept). */
  runs: number;
  secondsPerCase: number;
  /** The native engine; undefined times onnxruntime only. */
  engine?: { addon: EngineAddon; isa?: KernelPath; linearKernel?: LinearKernel; attention?: 'int8' | 'fp32' };
  /** Also time the engine with fp32 attention (variant engineFp32Attention), alternating with the others. */
  compareAttention?: boolean;
  /** Leave out the dense fp32 model (slow at large shapes). */
  skipFp32: boolean;
  log: (line: string) => void;
}

type Variant = 'fp32' | 'int8' | 'engine' | 'engineFp32Attention';

export interface LatencyRow {
  model: string;
  encoderSparsity: number;
  threads: number;
  batch: number;
  sequence: number;
  /** Median and p90 ms per variant that ran. */
  medianMs: Partial<Record<Variant, number>>;
  p90Ms: Partial<Record<Variant, number>>;
  runs: number;
  /** Medians' ratios from runs interleaved in the same process. */
  int8VsFp32?: number;
  engineVsInt8?: number;
  engineVsFp32?: number;
  /** Engine milliseconds per run by operator type, from this case's timed runs. */
  engineProfileMs?: Record<string, number>;
  /** The same for the engine with fp32 attention, when compared. */
  engineFp32AttentionProfileMs?: Record<string, number>;
  /** Engine GEMM throughput: dense-equivalent multiply-adds per second (what the sparse kernels save counts). */
  engineGemmEffectiveGmacs?: number;
}

function tokenIds(manifest: Manifest, count: number): number[] {
  return Array.from({ length: count }, (_, i) => 5 + ((i * 7919) % Math.max(1, manifest.dimensions.vocabSize - 5)));
}

function feeds(manifest: Manifest, batch: number, sequence: number): Record<string, ort.Tensor> {
  const count = batch * sequence;
  const all: Record<string, ort.Tensor> = {
    input_ids: new ort.Tensor('int64', BigInt64Array.from(tokenIds(manifest, count), BigInt), [batch, sequence]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(count).fill(1n), [batch, sequence]),
    token_type_ids: new ort.Tensor('int64', new BigInt64Array(count), [batch, sequence]),
  };
  return Object.fromEntries(manifest.signature.inputs.map((name) => [name, all[name]]));
}

const runsPerBlock = 3;

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];

/** Multiply-adds of the encoder's linear layers for `tokens` tokens (the GEMMs; attention and heads excluded). */
function encoderGemmMacs(manifest: Manifest, tokens: number): number {
  const { hiddenSize: h, intermediateSize: i, numLayers } = manifest.dimensions;
  return tokens * numLayers * (4 * h * h + 2 * h * i);
}

/**
 * Times the variants in alternating blocks (one untimed run, then `runsPerBlock` timed) so machine drift hits all
 * alike. Blocks rather than single runs: ORT's intra-op threads keep spinning briefly after a run and would steal
 * the cores from the other session's next run (measured: +25% on int8 with run-by-run alternation).
 */
export async function benchModelLatency(
  options: LatencyBenchOptions,
): Promise<{ rows: LatencyRow[]; environment: Record<string, unknown> }> {
  const rows: LatencyRow[] = [];
  const models: Record<string, unknown>[] = [];
  for (const modelDir of options.modelDirs) {
    const manifest = JSON.parse(readFileSync(join(modelDir, 'manifest.json'), 'utf8')) as Manifest;
    const weights = options.engine ? engineWeights(manifest, readModelFile(join(modelDir, int8ModelFile))) : undefined;
    for (const threads of options.threads) {
      const sessionOptions: ort.InferenceSession.SessionOptions = {
        graphOptimizationLevel: 'all',
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        // As the server runs them: spinning ORT threads would steal the cores of the variant timed next.
        extra: { session: { intra_op: { allow_spinning: '0' } } },
      };
      const dense = options.skipFp32
        ? undefined
        : await ort.InferenceSession.create(join(modelDir, denseModelFile), sessionOptions);
      const int8 = await ort.InferenceSession.create(join(modelDir, int8ModelFile), sessionOptions);
      let engine: NativeEngine | undefined;
      let engineFp32Attention: NativeEngine | undefined;
      if (options.engine && weights) {
        const engineOptions = {
          threads,
          ...(options.engine.isa ? { isa: options.engine.isa } : {}),
          ...(options.engine.linearKernel ? { linearKernel: options.engine.linearKernel } : {}),
        };
        engine = new options.engine.addon.Engine(weights.spec, weights.tensors, {
          ...engineOptions,
          ...(options.engine.attention ? { attention: options.engine.attention } : {}),
        });
        if (options.compareAttention)
          engineFp32Attention = new options.engine.addon.Engine(weights.spec, weights.tensors, {
            ...engineOptions,
            attention: 'fp32',
          });
        if (threads === options.threads[0]) models.push({ model: basename(modelDir), engine: engine.info() });
      }
      for (const batch of options.batchSizes) {
        for (const sequence of options.sequenceLengths) {
          if (sequence > manifest.maxSequenceLength) continue;
          const input = feeds(manifest, batch, sequence);
          const ids = Int32Array.from(tokenIds(manifest, batch * sequence));
          const offsets = Int32Array.from({ length: batch + 1 }, (_, r) => r * sequence);
          const runners: [Variant, () => Promise<unknown>][] = [];
          if (dense) runners.push(['fp32', () => dense.run(input)]);
          runners.push(['int8', () => int8.run(input)]);
          if (engine) runners.push(['engine', () => engine!.run(ids, null, offsets)]);
          if (engineFp32Attention)
            runners.push(['engineFp32Attention', () => engineFp32Attention!.run(ids, null, offsets)]);
          const times: Record<Variant, number[]> = { fp32: [], int8: [], engine: [], engineFp32Attention: [] };
          const profileBefore = engine?.profile();
          const fp32AttentionProfileBefore = engineFp32Attention?.profile();
          let engineTimedRuns = 0;
          const deadline = performance.now() + options.secondsPerCase * 1000;
          do {
            for (const [key, run] of runners) {
              await run();
              for (let i = 0; i < runsPerBlock; i++) {
                const start = performance.now();
                await run();
                times[key].push(performance.now() - start);
              }
              if (key === 'engine') engineTimedRuns += runsPerBlock + 1;
            }
          } while (times.int8.length < options.runs && performance.now() < deadline);
          const row: LatencyRow = {
            model: basename(modelDir),
            encoderSparsity: manifest.sparsity.final.encoderLinearSparsity,
            threads,
            batch,
            sequence,
            medianMs: {},
            p90Ms: {},
            runs: times.int8.length,
          };
          for (const [key] of runners) {
            times[key].sort((a, b) => a - b);
            row.medianMs[key] = percentile(times[key], 0.5);
            row.p90Ms[key] = percentile(times[key], 0.9);
          }
          const m = row.medianMs;
          if (m.fp32) row.int8VsFp32 = m.fp32 / m.int8!;
          if (m.engine) row.engineVsInt8 = m.int8! / m.engine;
          if (m.engine && m.fp32) row.engineVsFp32 = m.fp32 / m.engine;
          const perRun = (native: NativeEngine, before: ReturnType<NativeEngine['profile']>) =>
            Object.fromEntries(
              Object.entries(native.profile().seconds).map(([op, s]) => [
                op,
                ((s - before.seconds[op]) * 1000) / engineTimedRuns,
              ]),
            );
          if (engineFp32Attention && fp32AttentionProfileBefore)
            row.engineFp32AttentionProfileMs = perRun(engineFp32Attention, fp32AttentionProfileBefore);
          if (engine && profileBefore) {
            row.engineProfileMs = perRun(engine, profileBefore);
            const gemmMs = Object.entries(row.engineProfileMs)
              .filter(([op]) => op.startsWith('gemm'))
              .reduce((sum, [, ms]) => sum + ms, 0);
            row.engineGemmEffectiveGmacs = encoderGemmMacs(manifest, batch * sequence) / (gemmMs * 1e6);
          }
          rows.push(row);
          options.log(formatRow(row));
        }
      }
      await dense?.release();
      await int8.release();
      engine?.dispose();
      engineFp32Attention?.dispose();
    }
  }
  const environment = {
    models,
    cpu: cpus()[0]?.model,
    cores: cpus().length,
    engineCpu: options.engine?.addon.cpuInfo(),
    onnxruntime: ort.env.versions,
    node: process.version,
  };
  return { rows, environment };
}

export const tableHeader =
  '| model | sparsity | threads | batch | seq | fp32 p50 (p90) ms | ORT int8 p50 (p90) ms | engine p50 (p90) ms | engine vs ORT int8 | engine vs fp32 | engine GEMM GMAC/s (dense-equiv.) | runs |\n|---|---|---|---|---|---|---|---|---|---|---|---|';

const cell = (row: LatencyRow, key: Variant) =>
  row.medianMs[key] === undefined ? '–' : `${row.medianMs[key]!.toFixed(1)} (${row.p90Ms[key]!.toFixed(1)})`;
const ratio = (value: number | undefined) => (value === undefined ? '–' : `${value.toFixed(2)}x`);

export function formatRow(r: LatencyRow): string {
  const line = `| ${r.model} | ${(r.encoderSparsity * 100).toFixed(0)}% | ${r.threads} | ${r.batch} | ${r.sequence} | ${cell(r, 'fp32')} | ${cell(r, 'int8')} | ${cell(r, 'engine')} | ${ratio(r.engineVsInt8)} | ${ratio(r.engineVsFp32)} | ${r.engineGemmEffectiveGmacs?.toFixed(0) ?? '–'} | ${r.runs} |`;
  if (!r.engineFp32AttentionProfileMs || !r.engineProfileMs) return line;
  const attention = r.engineProfileMs.attention;
  const fp32Attention = r.engineFp32AttentionProfileMs.attention;
  return `${line}\n  same run, engine with fp32 attention: ${cell(r, 'engineFp32Attention')} ms; attention op ${attention.toFixed(2)} ms (int8) vs ${fp32Attention.toFixed(2)} ms (fp32) = ${((100 * attention) / fp32Attention).toFixed(0)}%`;
}

/** The engine's time per operator type for one case, largest first, as a Markdown table. */
export function formatProfile(row: LatencyRow): string {
  const entries = Object.entries(row.engineProfileMs ?? {}).sort((a, b) => b[1] - a[1]);
  const total = entries.reduce((sum, [, ms]) => sum + ms, 0);
  const lines = entries.map(([op, ms]) => `| ${op} | ${ms.toFixed(2)} | ${((100 * ms) / total).toFixed(0)}% |`);
  return [
    `engine profile: ${row.model}, batch ${row.batch} x ${row.sequence}, ${row.threads} threads`,
    '| op | ms per run | share |',
    '|---|---|---|',
    ...lines,
  ].join('\n');
}
