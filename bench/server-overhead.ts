/**
 * Server overhead at concurrency 1: the same QA requests answered (a) in process — tokenization, windows,
 * session.run, span search, no HTTP and no batching delay — and (b) through the HTTP server, one at a time.
 * Usage: npm run bench:server-overhead -- <model-dir> [--dataset dev-v1.1.json] [--requests 100] [--precision int8]
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseServerConfig } from '../src/config.js';
import { ServerMetrics } from '../src/metrics.js';
import { loadModelFolder } from '../src/models/registry.js';
import { answerQuestion, defaultQaOptions } from '../src/tasks/qa-task.js';
import { squadPayloads } from './squad-payloads.js';

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
const payloads = squadPayloads(values.dataset, Number(values.requests));
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

async function freePort(): Promise<number> {
  return new Promise((done) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => done(port));
    });
  });
}

async function throughServer(): Promise<number[]> {
  const port = await freePort();
  const cli = join(dirname(new URL(import.meta.url).pathname), '..', 'src', 'cli.ts');
  const folder = modelDir.split('/').pop()!;
  const server = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      cli,
      'serve',
      '--models-dir',
      dirname(modelDir),
      '--models',
      folder,
      '--port',
      String(port),
      '--precisions',
      precision,
      '--threads',
      String(threads),
      '--log-level',
      'warn',
    ],
    { stdio: 'inherit' },
  );
  try {
    const base = `http://127.0.0.1:${port}`;
    for (let ready = false; !ready;) {
      await new Promise((r) => setTimeout(r, 200));
      ready = await fetch(`${base}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
    }
    const ask = (payload: object) =>
      fetch(`${base}/models/${folder}-${precision}/qa`, {
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
    server.kill('SIGTERM');
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
