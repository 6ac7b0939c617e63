import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { metricValues, prepareModels, startTestServer, type TestServer } from './helpers/server-fixture.js';
import { workspace } from './helpers/workspace.js';

const root = workspace('limits');
let modelsDir: string;
const servers: TestServer[] = [];

before(async () => {
  modelsDir = await prepareModels(root);
});
after(() => Promise.all(servers.map((server) => server.close())));

async function server(configure: Parameters<typeof startTestServer>[1]): Promise<TestServer> {
  const started = await startTestServer(modelsDir, configure);
  servers.push(started);
  return started;
}

test('a full queue answers 429 with Retry-After, and the accepted requests still succeed', async () => {
  const { app } = await server((config) => {
    config.batching.maxQueueRows = 4;
    config.batching.maxBatchSize = 2;
    config.batching.maxBatchDelayMs = 50;
    config.precisions = ['int8'];
  });
  const responses = await Promise.all(
    Array.from({ length: 24 }, (_, i) =>
      app.inject({ method: 'POST', url: '/classify', payload: { text: `sentence ${i}` } }),
    ),
  );
  const statuses = responses.map((r) => r.statusCode);
  assert.ok(statuses.includes(429), `statuses: ${statuses}`);
  assert.ok(statuses.includes(200), `statuses: ${statuses}`);
  assert.ok(
    statuses.every((s) => s === 200 || s === 429),
    `statuses: ${statuses}`,
  );
  const refused = responses.find((r) => r.statusCode === 429)!;
  assert.match(refused.headers['retry-after'] as string, /^\d+$/);
  assert.match(refused.json().message, /queue is full/);
  const metrics = metricValues((await app.inject('/metrics')).body);
  assert.equal(
    metrics.get('sbs_rejections_total{model="sst2-int8",reason="queue_full"}'),
    statuses.filter((s) => s === 429).length,
  );
});

test('a request past its deadline gets 504 and its rows leave the queue before inference', async () => {
  const { app } = await server((config) => {
    config.limits.requestTimeoutMs = 60;
    config.batching.maxBatchDelayMs = 400;
    config.precisions = ['int8'];
  });
  const started = performance.now();
  const response = await app.inject({
    method: 'POST',
    url: '/qa',
    payload: { question: 'Where?', context: 'in Zurich' },
  });
  const elapsed = performance.now() - started;
  assert.equal(response.statusCode, 504, response.body);
  assert.match(response.json().message, /did not finish within its 60 ms deadline/);
  assert.ok(elapsed < 350, `answered after ${elapsed.toFixed(0)} ms, before the batch would have run`);
  const metrics = metricValues((await app.inject('/metrics')).body);
  assert.equal(metrics.get('sbs_dropped_rows_total{model="qa-int8",reason="deadline"}'), 1);
  assert.equal(metrics.get('sbs_queue_depth{model="qa-int8"}'), 0);
  assert.equal(metrics.get('sbs_batch_size_count{model="qa-int8"}') ?? 0, 0, 'no batch ran');
});

test('readiness is false until warm-up completes', async () => {
  const cold = await startTestServer(modelsDir, (config) => (config.precisions = ['int8']), false);
  servers.push(cold);
  const { app, registry, state } = cold;
  assert.equal((await app.inject('/readyz')).statusCode, 503);
  assert.equal((await app.inject('/v2/health/ready')).statusCode, 503);
  assert.equal((await app.inject('/healthz')).statusCode, 200);
  const early = await app.inject({ method: 'POST', url: '/qa', payload: { question: 'q', context: 'c' } });
  assert.equal(early.statusCode, 503);
  assert.match(early.json().message, /warming up/);
  await registry.warmUp();
  state.warmedUp = true;
  assert.equal((await app.inject('/readyz')).statusCode, 200);
  state.draining = true;
  assert.equal((await app.inject('/readyz')).json().status, 'draining');
  const refused = await app.inject({ method: 'POST', url: '/qa', payload: { question: 'q', context: 'c' } });
  assert.equal(refused.statusCode, 503);
  assert.match(refused.json().message, /shutting down/);
});
