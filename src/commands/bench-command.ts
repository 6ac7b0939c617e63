import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { benchModelLatency, tableHeader } from '../../bench/model-latency.js';
import { UsageError, listFlag, numberFlag } from './flags.js';

export const benchUsage = `sbs bench <model-dir> [options]

Prints session.run latency of model.onnx (dense fp32) and model.int8.onnx (sparse int8), measured alternately in
one process, and the int8 speed-up.
  --batch 1,8          batch sizes (default 1,8)
  --seq 128,384        sequence lengths (default 128,384)
  --threads 1,2        intra-op threads (default 1,2)
  --runs <n>           timed runs per case and artifact (default 9; at least 3, in blocks of 3 alternating)
  --seconds <s>        stop adding blocks to a case after this many seconds (default 30)
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
      json: { type: 'string' },
    },
  });
  const modelDir = positionals[0];
  if (!modelDir || positionals.length > 1) throw new UsageError('bench takes one converted model folder', benchUsage);
  if (!existsSync(join(modelDir, 'manifest.json')))
    throw new UsageError(`${modelDir} has no manifest.json; convert a checkpoint first`, benchUsage);
  console.log(tableHeader);
  const result = await benchModelLatency({
    modelDir,
    batchSizes: listFlag(values.batch, '--batch', [1, 8]),
    sequenceLengths: listFlag(values.seq, '--seq', [128, 384]),
    threads: listFlag(values.threads, '--threads', [1, 2]),
    runs: numberFlag(values.runs, '--runs', { min: 1, integer: true }) ?? 9,
    secondsPerCase: numberFlag(values.seconds, '--seconds', { min: 0 }) ?? 30,
    log: (line) => console.log(line),
  });
  const env = result.environment;
  console.log(
    `\n${env.model} (${env.architecture}), ${env.cpu}, ${env.cores} cores, onnxruntime-node ${(env.onnxruntime as { node: string }).node}`,
  );
  if (values.json) writeFileSync(values.json, JSON.stringify(result, null, 2) + '\n');
}
