/**
 * Server overhead at concurrency 1: the same QA requests answered (a) in process — tokenization, windows,
 * session.run, span search, no HTTP and no batching delay — and (b) through the HTTP server, one at a time.
 * Usage: npm run bench:server-overhead -- <model-dir> [--dataset dev-v1.1.json] [--requests 100] [--precision int8]
 */
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadPayloads } from '../loadtest/payloads.js';
import { startServer } from '../loadtest/target.js';
import { parseServerConfig } from '../src/config.js';
import { ServerMetrics } from '../src/metrics.js';
import { loadModelFolder } from '../src/models/registry.js';
import { answerQuestion, defaultQaOptions, type QaInput } from '../src/tasks/qa-task.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    dataset: { type: 'string' },
    requests: { type: 'string', default: '100' },
    precision: { type: 'string', default: 'int8' },
    threads: { type: 'string', default: '2' },
  },
});
const modelDir = resolve(positionals[0] ?? '');
const precision = values.precision as 'int8' | 'fp32';
const threads = Number(values.threads);
// The load test's payloads (same readers, same seeded order), so both benchmarks ask the same questions.
const payloads = loadPayloads('qa', values.dataset, 1, Number(values.requests), Number(values.requests)).bodies.map(
  (body) => JSON.parse(body) as QaInput,
);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)];

async function inProcess(): Promise<number[]> {
  // The server's own defaults, minus any batching delay: the in-process path is the floor the server is held to.
  const config = parseServerConfig(
    ['--precisions', precision, '--threads', String(threads), '--max-batch-delay-ms', '0'],
    {},
  );
  const [model] = await loadModelFolder(modelDir, config, new ServerMetrics());
  const options = { ...defaultQaOptions, maxWindows: 64 };
  for (const payload of payloads.slice(0, 5)) await answerQuestion(model, payload, options);
  const times: number[] = [];
  for (const payload of payloads) {
    const started = performance.now();
    await answerQuestion(model, payload, options);
    times.push(performance.now() - started);
  }
  await Promise.all(model.runners.map((runner) => runner.release()));
  return times;
}

async function throughServer(): Promise<number[]> {
  const folder = basename(modelDir);
  const server = await startServer({
    modelsDir: dirname(modelDir),
    folders: [folder],
    precisions: [precision],
    serveArgs: ['--threads', String(threads)],
    logFile: join(tmpdir(), `sbs-bench-server-${process.pid}.log`),
    log: () => {},
  });
  try {
    const ask = (payload: object) =>
      fetch(`${server.baseUrl}/models/${folder}-${precision}/qa`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(payload),
      }).then((r) => r.json());
    for (const payload of payloads.slice(0, 5)) await ask(payload);
    const times: number[] = [];
    for (const payload of payloads) {
      const started = performance.now();
      await ask(payload);
      times.push(performance.now() - started);
    }
    return times;
  } finally {
    await server.stop();
  }
}

// Alternate in-process and server passes so machine drift hits both alike.
const local: number[] = [];
const remote: number[] = [];
for (let pass = 0; pass < 2; pass++) {
  local.push(...(await inProcess()));
  remote.push(...(await throughServer()));
}
console.log(`${payloads.length} SQuAD-style requests x 2 passes, ${precision}, ${threads} threads, concurrency 1`);
console.log(`| path | p50 ms | p90 ms |\n|---|---|---|`);
console.log(
  `| in process (tokenize + windows + session.run + spans) | ${median(local).toFixed(1)} | ${p90(local).toFixed(1)} |`,
);
console.log(`| HTTP server | ${median(remote).toFixed(1)} | ${p90(remote).toFixed(1)} |`);
console.log(`server p50 / in-process p50 = ${(median(remote) / median(local)).toFixed(3)}`);
