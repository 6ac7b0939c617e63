import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { Manifest } from '../conversion/manifest.js';
import { denseModelFile, int8ModelFile } from '../conversion/manifest.js';

export interface LatencyBenchOptions {
  modelDir: string;
  batchSizes: number[];
  sequenceLengths: number[];
  threads: number[];
  /** Timed runs per artifact and shape (after warm-up), unless the time budget ends first (at least 3 are kept). */
  runs: number;
  secondsPerCase: number;
  log: (line: string) => void;
}

export interface LatencyRow {
  threads: number;
  batch: number;
  sequence: number;
  denseMedianMs: number;
  int8MedianMs: number;
  denseP90Ms: number;
  int8P90Ms: number;
  runs: number;
  /** dense median / int8 median, from runs interleaved in the same process. */
  speedup: number;
}

function feeds(manifest: Manifest, batch: number, sequence: number): Record<string, ort.Tensor> {
  const count = batch * sequence;
  const ids = BigInt64Array.from({ length: count }, (_, i) =>
    BigInt(5 + ((i * 7919) % Math.max(1, manifest.dimensions.vocabSize - 5))),
  );
  const all: Record<string, ort.Tensor> = {
    input_ids: new ort.Tensor('int64', ids, [batch, sequence]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(count).fill(1n), [batch, sequence]),
    token_type_ids: new ort.Tensor('int64', new BigInt64Array(count), [batch, sequence]),
  };
  return Object.fromEntries(manifest.signature.inputs.map((name) => [name, all[name]]));
}

const runsPerBlock = 3;

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];

/**
 * Times dense and int8 in alternating blocks (one untimed run, then `runsPerBlock` timed) so machine drift hits
 * both alike. Blocks rather than single runs: ORT's intra-op threads keep spinning briefly after a run and would
 * steal the cores from the other session's next run (measured: +25% on int8 with run-by-run alternation).
 */
export async function benchModelLatency(
  options: LatencyBenchOptions,
): Promise<{ rows: LatencyRow[]; environment: Record<string, unknown> }> {
  const manifest = JSON.parse(readFileSync(join(options.modelDir, 'manifest.json'), 'utf8')) as Manifest;
  const rows: LatencyRow[] = [];
  for (const threads of options.threads) {
    const sessionOptions: ort.InferenceSession.SessionOptions = {
      graphOptimizationLevel: 'all',
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
    };
    const dense = await ort.InferenceSession.create(join(options.modelDir, denseModelFile), sessionOptions);
    const int8 = await ort.InferenceSession.create(join(options.modelDir, int8ModelFile), sessionOptions);
    for (const batch of options.batchSizes) {
      for (const sequence of options.sequenceLengths) {
        if (sequence > manifest.maxSequenceLength) continue;
        const input = feeds(manifest, batch, sequence);
        const times: { dense: number[]; int8: number[] } = { dense: [], int8: [] };
        const deadline = performance.now() + options.secondsPerCase * 1000;
        do {
          for (const [key, session] of [
            ['dense', dense],
            ['int8', int8],
          ] as const) {
            await session.run(input);
            for (let i = 0; i < runsPerBlock; i++) {
              const start = performance.now();
              await session.run(input);
              times[key].push(performance.now() - start);
            }
          }
        } while (times.dense.length < options.runs && performance.now() < deadline);
        times.dense.sort((a, b) => a - b);
        times.int8.sort((a, b) => a - b);
        const row: LatencyRow = {
          threads,
          batch,
          sequence,
          denseMedianMs: percentile(times.dense, 0.5),
          int8MedianMs: percentile(times.int8, 0.5),
          denseP90Ms: percentile(times.dense, 0.9),
          int8P90Ms: percentile(times.int8, 0.9),
          runs: times.dense.length,
          speedup: percentile(times.dense, 0.5) / percentile(times.int8, 0.5),
        };
        rows.push(row);
        options.log(formatRow(row));
      }
    }
    await dense.release();
    await int8.release();
  }
  const environment = {
    model: manifest.name,
    architecture: manifest.architecture,
    dimensions: manifest.dimensions,
    encoderSparsity: manifest.sparsity.final.encoderLinearSparsity,
    cpu: cpus()[0]?.model,
    cores: cpus().length,
    onnxruntime: ort.env.versions,
    node: process.version,
  };
  return { rows, environment };
}

export const tableHeader =
  '| threads | batch | seq | dense fp32 p50 (p90) ms | sparse int8 p50 (p90) ms | int8 speed-up | runs |\n|---|---|---|---|---|---|---|';

export function formatRow(r: LatencyRow): string {
  return `| ${r.threads} | ${r.batch} | ${r.sequence} | ${r.denseMedianMs.toFixed(1)} (${r.denseP90Ms.toFixed(1)}) | ${r.int8MedianMs.toFixed(1)} (${r.int8P90Ms.toFixed(1)}) | ${r.speedup.toFixed(2)}x | ${r.runs} |`;
}
