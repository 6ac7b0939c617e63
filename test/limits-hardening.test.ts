/**
 * Issue 10, defects 1, 4, 5 and 9: every request limit is checked from counts before the work it bounds, refusals
 * name the limit and use the right status, admission to the queue is all-or-nothing, and odd bodies are refused.
 */
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { after, before, test } from 'node:test';
import { metricValues, prepareModels, startTestServer, type TestServer } from './helpers/server-fixture.js';
import { workspace } from './helpers/workspace.js';

const root = workspace('limits-hardening');
let modelsDir: string;
const servers: TestServer[] = [];

before(async () => {
  modelsDir = await prepareModels(root);
});
after(() => Promise.all(servers.map((server) => server.close())));

async function server(configure: Parameters<typeof startTestServer>[1] = () => {}): Promise<TestServer> {
  const started = await startTestServer(modelsDir, (config) => {
    config.precisions = ['int8'];
    configure(config);
  });
  servers.push(started);
  return started;
}

/** Runs `work` while a 1 ms timer measures the longest gap between its ticks (the longest event-loop block). */
async function longestBlock<T>(work: () => Promise<T>): Promise<{ result: T; blockMs: number; wallMs: number }> {
  let longest = 0;
  let last = performance.now();
  const ticker = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 1);
  const started = performance.now();
  try {
    const result = await work();
    return { result, blockMs: Math.max(longest, performance.now() - last), wallMs: performance.now() - started };
  } finally {
    clearInterval(ticker);
  }
}

const words = (count: number, from = 'abcdefghijklmnopqrstuvwxyz') =>
  Array.from({ length: count }, (_, i) => from[i % from.length]).join(' ');

// ---- defect 1: QA window explosion --------------------------------------------------------------------------------

test('defect 1: a ~1 MB QA body that would need 480,000 windows gets a 422 naming the limit within tens of ms', async (t) => {
  const { app } = await server();
  const payload = JSON.stringify({
    question: Array.from({ length: 60 }, (_, i) => `word${i}`).join(' '),
    context: words(480_000),
    max_seq_len: 32,
    doc_stride: 0,
  });
  assert.ok(payload.length > 950_000 && payload.length < 1024 * 1024, `${payload.length} bytes`);
  const inject = () =>
    app.inject({ method: 'POST', url: '/qa', headers: { 'content-type': 'application/json' }, payload });
  await inject(); // warm up (JIT, caches)
  const rssBefore = process.memoryUsage().rss;
  const runs = [];
  for (let i = 0; i < 3; i++) {
    const health = { slowestMs: 0 };
    const { result, blockMs, wallMs } = await longestBlock(async () => {
      const pending = inject();
      // /healthz keeps answering while the big request is handled.
      const started = performance.now();
      const healthz = await app.inject('/healthz');
      health.slowestMs = performance.now() - started;
      assert.equal(healthz.statusCode, 200);
      return pending;
    });
    assert.equal(result.statusCode, 422, result.body);
    assert.match(result.json().message, /^context is too long: more than \d+ windows of 32 tokens, the limit is 64/);
    assert.match(result.json().message, /--max-qa-windows/);
    runs.push({ wallMs, blockMs, healthzMs: health.slowestMs });
  }
  const rssGrowthMb = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
  t.diagnostic(
    `1 MB body, 3 runs: ${runs.map((r) => `422 in ${r.wallMs.toFixed(1)} ms (longest block ${r.blockMs.toFixed(1)} ms, ` +
      `/healthz ${r.healthzMs.toFixed(1)} ms)`).join('; ')}; RSS growth ${rssGrowthMb.toFixed(0)} MB`,
  );
  const best = Math.min(...runs.map((r) => r.wallMs));
  assert.ok(best < 100, `422 after ${best.toFixed(0)} ms`);
  assert.ok(rssGrowthMb < 100, `RSS grew by ${rssGrowthMb.toFixed(0)} MB`);
});

test('defect 1: the largest QA context the limits allow, and a refused one, never block the event loop for long', async (t) => {
  const { app, registry } = await server();
  const model = registry.get('qa-int8')!;
  const question = 'Which city?';
  const questionTokens = model.tokenizer.tokenize(question).ids.length;
  const maxSeqLen = Math.min(384, model.manifest.maxSequenceLength);
  const capacity = maxSeqLen - questionTokens - 3;
  const stride = Math.min(128, maxSeqLen / 2);
  const allowed = capacity + 63 * (capacity - stride); // 64 windows (the default --max-qa-windows)
  const context = words(allowed - 1, 'bcdefgh') + ' zurich';
  assert.equal(model.tokenizer.tokenize(context).ids.length, allowed);

  const tokenization = await longestBlock(() => model.tokenizer.tokenizeAsync(context, allowed * 8));
  t.diagnostic(
    `tokenizing the largest allowed context (${allowed} tokens, ${context.length} chars): ` +
      `${tokenization.result.busyMs.toFixed(1)} ms busy, longest event-loop block ${tokenization.blockMs.toFixed(1)} ms`,
  );
  assert.ok(tokenization.blockMs < 50, `blocked ${tokenization.blockMs.toFixed(1)} ms`);

  const ok = await longestBlock(() => app.inject({ method: 'POST', url: '/qa', payload: { question, context } }));
  assert.equal(ok.result.statusCode, 200, ok.result.body);
  assert.equal(ok.result.json().answer, 'zurich');
  const metrics = metricValues((await app.inject('/metrics')).body);
  assert.equal(metrics.get('sbs_batch_size_sum{model="qa-int8"}'), 64, 'exactly 64 windows ran');
  const tooLong = await longestBlock(() =>
    app.inject({ method: 'POST', url: '/qa', payload: { question, context: `${context} b` } }),
  );
  assert.equal(tooLong.result.statusCode, 422);
  assert.match(tooLong.result.json().message, /context is too long: 65 windows of 384 tokens, the limit is 64/);
  // The most a refused context costs: tokenized up to 8x what is allowed (for the exact count), then cut off.
  const hugePayload = { question, context: words(480_000) };
  await app.inject({ method: 'POST', url: '/qa', payload: hugePayload }); // warm up
  const huge = await longestBlock(() => app.inject({ method: 'POST', url: '/qa', payload: hugePayload }));
  assert.equal(huge.result.statusCode, 422);
  t.diagnostic(
    `whole request, largest allowed context: ${ok.wallMs.toFixed(0)} ms, longest block ${ok.blockMs.toFixed(1)} ms; ` +
      `one token more: 422 in ${tooLong.wallMs.toFixed(0)} ms; 1 MB context at the defaults: 422 in ` +
      `${huge.wallMs.toFixed(0)} ms, longest block ${huge.blockMs.toFixed(1)} ms`,
  );
  assert.ok(huge.blockMs < 60, `blocked ${huge.blockMs.toFixed(1)} ms`);
});

test('defect 9: a doc_stride that cannot fit the window is a 422 naming doc_stride, not the context', async () => {
  const { app } = await server();
  const post = (payload: object) => app.inject({ method: 'POST', url: '/qa', payload });
  const long = `${words(200, 'bcdefgh')} zurich`;
  const refused = await post({ question: 'Where?', context: long, max_seq_len: 32, doc_stride: 40 });
  assert.equal(refused.statusCode, 422, refused.body);
  assert.match(refused.json().message, /^doc_stride 40 does not fit: it must be smaller than the \d+ context tokens/);
  // The same stride is fine when the context fits one window (as in the tokenizers truncation), and so is leaving
  // doc_stride out: the default adapts to the window.
  const short = await post({ question: 'Where?', context: 'in zurich', max_seq_len: 32, doc_stride: 40 });
  assert.equal(short.statusCode, 200, short.body);
  const defaulted = await post({ question: 'Where?', context: long, max_seq_len: 32 });
  assert.equal(defaulted.statusCode, 200, defaulted.body);
  assert.equal(defaulted.json().answer, 'zurich');
});
