import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { benchModelLatency, formatProfile, tableHeader } from '../../bench/model-latency.js';
import { parseRuntimeBackend } from '../config.js';
import { loadEngineAddon } from '../runtime/engine-addon.js';
import { UsageError, listFlag, numberFlag } from './flags.js';

export const benchUsage = `sbs bench <model-dir> [<model-dir> ...] [options]

Times, in one process and alternating, the dense fp32 model (onnxruntime), the sparse int8 model on onnxruntime and
the same int8 weights on the sparse engine; prints medians, the ratios, the engine's GEMM throughput and its time
per operator type.
  --batch 1,8          batch sizes (default 1,8)
  --seq 128,384        sequence lengths (default 128,384)
  --threads 1,2        threads per session / engine (default 2)
  --runs <n>           timed runs per case and variant (default 9; at least 3, in blocks of 3 alternating)
  --seconds <s>        stop adding blocks to a case after this many seconds (default 30)
  --no-fp32            leave out the dense fp32 model
  --backend onnxruntime  leave out the engine
  --engine-isa <path>  force the engine's kernels: avx512vnni, avxvnni, avx2, scalar
  --compare-attention  also time the engine with fp32 attention (same run, alternating) and compare the op
  --json <file>        also write the figures and the environment as JSON`;

export async function benchCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      batch: { type: 'string' },
      seq: { type: 'string' },
      threads: { type: 'string' },
      runs: { type: 'string' },
      seconds: { type: 'string' },
      'no-fp32': { type: 'boolean' },
      backend: { type: 'string' },
      'engine-isa': { type: 'string' },
      'compare-attention': { type: 'boolean' },
      json: { type: 'string' },
    },
  });
  if (!positionals.length) throw new UsageError('bench takes one or more converted model folders', benchUsage);
  for (const dir of positionals)
    if (!existsSync(join(dir, 'manifest.json')))
      throw new UsageError(`${dir} has no manifest.json; convert a checkpoint first`, benchUsage);
  const runtime = parseRuntimeBackend(values.backend, values['engine-isa'], process.env, benchUsage);
  let engine;
  if (runtime.backend !== 'onnxruntime') {
    const status = loadEngineAddon(runtime.engine.addonPath);
    if (status.available) engine = { addon: status.addon, ...runtime.engine };
    else console.log(`sparse engine unavailable (${status.reason}); timing onnxruntime only`);
  }
  if (engine) {
    const cpu = engine.addon.cpuInfo();
    console.log(
      `engine: ${engine.isa ?? cpu.best} kernels (this CPU runs ${cpu.supported.join(', ')}), ${cpu.ops} ops`,
    );
  }
  console.log(tableHeader);
  const result = await benchModelLatency({
    modelDirs: positionals,
    batchSizes: listFlag(values.batch, '--batch', [1, 8]),
    sequenceLengths: listFlag(values.seq, '--seq', [128, 384]),
    threads: listFlag(values.threads, '--threads', [2]),
    runs: numberFlag(values.runs, '--runs', { min: 1, integer: true }) ?? 9,
    secondsPerCase: numberFlag(values.seconds, '--seconds', { min: 0 }) ?? 30,
    engine,
    compareAttention: values['compare-attention'] ?? false,
    skipFp32: values['no-fp32'] ?? false,
    log: (line) => console.log(line),
  });
  const env = result.environment;
  console.log(`\n${env.cpu}, ${env.cores} cores, onnxruntime-node ${(env.onnxruntime as { node: string }).node}`);
  for (const model of env.models as { model: string; engine: { layers: string } }[])
    console.log(`${model.model}: ${model.engine.layers}`);
  for (const row of result.rows) if (row.engineProfileMs) console.log(`\n${formatProfile(row)}`);
  if (values.json) writeFileSync(values.json, JSON.stringify(result, null, 2) + '\n');
}
