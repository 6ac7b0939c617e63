import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { metricValues, prepareModels, startTestServer, type TestServer } from './helpers/server-fixture.js';
import { workspace } from './helpers/workspace.js';

const root = workspace('server');
let modelsDir: string;
let server: TestServer;

before(async () => {
  modelsDir = await prepareModels(root);
  server = await startTestServer(modelsDir, (config) => (config.batching.maxBatchDelayMs = 20));
});
after(() => server.close());

const post = (url: string, payload: unknown) => server.app.inject({ method: 'POST', url, payload: payload as object });

const filler = (words: number) =>
  Array.from({ length: words }, (_, i) => ['the', 'old', 'town', 'river', 'bank', 'museum'][i % 6]).join(' ');

test('QA: the answer is the exact original text, with casing, accents and multi-byte characters around it', async () => {
  const context = '🤗 Les cafés — naïve “quotes”, 北京 and then Zürich\u2019s old town, by the river.';
  const response = await post('/qa', { question: 'Which city?', context });
  assert.equal(response.statusCode, 200, response.body);
  const answer = response.json();
  assert.equal(answer.answer, 'Zürich');
  assert.equal(context.slice(answer.start, answer.end), answer.answer);
  assert.ok(answer.score > 0 && answer.score <= 1);
});

test('QA: a context spanning many windows finds the answer in the last one', async () => {
  const context = `${filler(300)} Zürich.`;
  const response = await post('/qa', { question: 'Which city?', context, max_seq_len: 64, doc_stride: 16 });
  const answer = response.json();
  assert.equal(answer.answer, 'Zürich', response.body);
  assert.equal(answer.start, context.lastIndexOf('Zürich'));
  // 300 filler tokens in windows of 64 - 3 - 3 question tokens = 58, stepping by 42: well over one window.
  const queued = metricValues(await (await server.app.inject('/metrics')).body);
  assert.ok((queued.get('sbs_batch_size_sum{model="qa-int8"}') ?? 0) >= 7, 'all windows went through the batcher');
});

test('QA: every payload form — flat, Hugging Face inputs/parameters, arrays, model in path or body', async () => {
  const pair = { question: 'Where?', context: 'It is in Zurich today.' };
  const flat = (await post('/qa', pair)).json();
  assert.equal(flat.answer, 'Zurich');
  const hf = (await post('/qa', { inputs: pair, parameters: { top_k: 2 } })).json();
  assert.ok(Array.isArray(hf) && hf.length === 2 && hf[0].answer === 'Zurich' && hf[0].score >= hf[1].score);
  const list = (await post('/qa', [pair, { question: 'Where?', context: 'zurich' }])).json();
  assert.deepEqual(
    list.map((a: { answer: string }) => a.answer),
    ['Zurich', 'zurich'],
  );
  const inputsList = (await post('/qa', { inputs: [pair, pair] })).json();
  assert.equal(inputsList.length, 2);
  const inPath = (await post('/models/qa-fp32/qa', pair)).json();
  assert.equal(inPath.answer, 'Zurich');
  const inBody = await post('/qa', { ...pair, model: 'qa-fp32' });
  assert.equal(inBody.json().answer, 'Zurich');
});

test('classification: single text, pairs, top_k and the Hugging Face forms', async () => {
  const single = (await post('/classify', { text: 'a wonderful film' })).json();
  assert.equal(single.length, 1);
  assert.ok(['NEGATIVE', 'POSITIVE'].includes(single[0].label));
  const all = (await post('/classify', { text: 'a wonderful film', text_pair: 'the critics agreed', top_k: 5 })).json();
  assert.deepEqual(all.map((s: { label: string }) => s.label).sort(), ['NEGATIVE', 'POSITIVE']);
  assert.ok(Math.abs(all[0].score + all[1].score - 1) < 1e-6 && all[0].score >= all[1].score);
  const pairAlone = (await post('/classify', { text: 'a wonderful film', top_k: 2 })).json();
  assert.notDeepEqual(pairAlone, all, 'the second segment changes the scores');
  const hf = (
    await post('/classify', { inputs: ['good', { text: 'good', text_pair: 'bad' }], parameters: { top_k: 2 } })
  ).json();
  assert.equal(hf.length, 2);
  const array = (await post('/models/sst2-fp32/classify', ['good', 'bad'])).json();
  assert.equal(array.length, 2);
});

test('NER: every aggregation strategy returns entities whose word is the exact text slice', async () => {
  const text = 'John Smith moved from London to New York in 1999.';
  for (const strategy of ['none', 'simple', 'first', 'average', 'max']) {
    const response = await post('/ner', { text, aggregation_strategy: strategy, ignore_labels: [] });
    assert.equal(response.statusCode, 200, response.body);
    const entities = response.json();
    assert.ok(entities.length > 0, strategy);
    for (const entity of entities) {
      if (strategy === 'none') {
        // Hugging Face semantics: one entry per token, word = the vocabulary piece, index counts [CLS] as 0.
        assert.equal(
          entity.word.replace(/^##/, ''),
          text.slice(entity.start, entity.end).toLowerCase(),
          JSON.stringify(entity),
        );
        assert.ok(entity.entity && entity.index >= 1);
      } else {
        assert.equal(entity.word, text.slice(entity.start, entity.end), `${strategy}: ${JSON.stringify(entity)}`);
        assert.ok(entity.entity_group);
      }
    }
  }
  const hf = (await post('/ner', { inputs: [text, 'Paris'], parameters: { aggregation_strategy: 'simple' } })).json();
  assert.equal(hf.length, 2);
});

test('models, health, readiness and metrics', async () => {
  const models = (await server.app.inject('/models')).json();
  assert.deepEqual(models.map((m: { name: string }) => m.name).sort(), [
    'conll-fp32',
    'conll-int8',
    'qa-fp32',
    'qa-int8',
    'sst2-fp32',
    'sst2-int8',
  ]);
  const qa = models.find((m: { name: string }) => m.name === 'qa-int8');
  assert.equal(qa.task, 'question-answering');
  assert.equal(qa.precision, 'int8');
  assert.equal(qa.default, true);
  // The planted model zeroes two of six Linears per layer on top of 90% pruning.
  assert.ok(qa.encoder_sparsity > 0.9 && qa.compression_ratio > 35, JSON.stringify(qa));
  assert.equal((await server.app.inject('/healthz')).statusCode, 200);
  assert.equal((await server.app.inject('/readyz')).statusCode, 200);
  const metrics = (await server.app.inject('/metrics')).body;
  for (const name of [
    'sbs_http_requests_total',
    'sbs_http_request_duration_seconds',
    'sbs_queue_depth',
    'sbs_queue_wait_seconds',
    'sbs_tokenization_duration_seconds',
    'sbs_inference_duration_seconds',
    'sbs_postprocess_duration_seconds',
    'sbs_batch_size',
    'sbs_batch_padded_tokens',
    'sbs_rejections_total',
    'sbs_model_info',
    'sbs_process_cpu_seconds_total',
  ]) {
    assert.ok(metrics.includes(`# TYPE ${name}`), name);
  }
  assert.match(
    metrics,
    /sbs_model_info\{model="qa-int8",task="question-answering",precision="int8",sparsity="0\.9\d*",backend="engine",kernel_path="(avx512vnni|avxvnni)"\} 1/,
  );
  assert.match(metrics, /sbs_http_requests_total\{route="\/qa",model="qa-int8",status="200"\} \d+/);
});

test('Open Inference Protocol v2: health, metadata, BYTES inference for each task', async () => {
  assert.equal((await server.app.inject('/v2/health/live')).statusCode, 200);
  assert.equal((await server.app.inject('/v2/health/ready')).statusCode, 200);
  const meta = (await server.app.inject('/v2/models/qa-int8')).json();
  assert.deepEqual(
    meta.inputs.map((i: { name: string }) => i.name),
    ['question', 'context'],
  );
  assert.equal((await server.app.inject('/v2/models/qa-int8/ready')).statusCode, 200);
  assert.equal((await server.app.inject('/v2/models/nope/ready')).statusCode, 404);
  const qa = await post('/v2/models/qa-int8/infer', {
    id: 'r1',
    inputs: [
      { name: 'question', shape: [2], datatype: 'BYTES', data: ['Where?', 'Where?'] },
      { name: 'context', shape: [2], datatype: 'BYTES', data: ['in Zurich', 'Zürich it is'] },
    ],
  });
  assert.equal(qa.statusCode, 200, qa.body);
  const body = qa.json();
  assert.equal(body.id, 'r1');
  assert.deepEqual(body.outputs.find((o: { name: string }) => o.name === 'answer').data, ['Zurich', 'Zürich']);
  const cls = (
    await post('/v2/models/sst2-int8/infer', {
      inputs: [{ name: 'text', shape: [1], datatype: 'BYTES', data: ['fine'] }],
    })
  ).json();
  assert.deepEqual(
    cls.outputs.map((o: { name: string }) => o.name),
    ['label', 'score'],
  );
  const ner = (
    await post('/v2/models/conll-int8/infer', {
      inputs: [{ name: 'text', shape: [1], datatype: 'BYTES', data: ['John lives in Paris'] }],
    })
  ).json();
  assert.ok(Array.isArray(JSON.parse(ner.outputs[0].data[0])));
  const missing = await post('/v2/models/qa-int8/infer', {
    inputs: [{ name: 'question', shape: [1], datatype: 'BYTES', data: ['x'] }],
  });
  assert.equal(missing.statusCode, 400);
  assert.match(missing.json().error, /missing tensor "context"/);
});

test('bad inputs get the right 4xx naming the problem, never a 500', async () => {
  const cases: [string, unknown, number, RegExp][] = [
    ['/qa', { question: 'q' }, 400, /required property 'context'/],
    ['/qa', { question: 5, context: 'c' }, 400, /body\/question must be string/],
    ['/qa', { question: 'q', context: 'c', top_k: 0 }, 400, /top_k must be >= 1/],
    ['/qa', { question: 'q', context: 'c', top_k: '3' }, 400, /top_k must be integer/],
    ['/qa', { question: '', context: 'c' }, 400, /question must NOT have fewer than 1 characters/],
    ['/qa', { question: 'q', context: 'c', model: 'nope' }, 404, /unknown model "nope"/],
    ['/models/nope/qa', { question: 'q', context: 'c' }, 404, /unknown model "nope"/],
    [
      '/qa',
      { question: 'q', context: 'c', model: 'sst2-int8' },
      400,
      /serves text-classification, not question-answering/,
    ],
    [
      '/qa',
      { question: 'q', context: filler(20000), max_seq_len: 64, doc_stride: 0 },
      422,
      /context is too long: \d+ windows of 64 tokens, the limit is 64/,
    ],
    ['/classify', { text: filler(600) }, 422, /text is too long: 602 tokens, the limit is 512/],
    ['/classify', { text: 'x', top_k: 1.5 }, 400, /top_k must be integer/],
    [
      '/ner',
      { text: 'x', aggregation_strategy: 'longest' },
      400,
      /aggregation_strategy must be equal to one of the allowed values/,
    ],
    ['/ner', [], 400, /must NOT have fewer than 1 items/],
  ];
  for (const [url, payload, status, message] of cases) {
    const response = await post(url, payload);
    assert.equal(response.statusCode, status, `${url} ${JSON.stringify(payload).slice(0, 80)}: ${response.body}`);
    assert.match(response.json().message, message);
  }
  const notJson = await server.app.inject({
    method: 'POST',
    url: '/qa',
    headers: { 'content-type': 'application/json' },
    payload: '{"question": ',
  });
  assert.equal(notJson.statusCode, 400);
  const huge = await server.app.inject({
    method: 'POST',
    url: '/qa',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify({ question: 'q', context: 'x'.repeat(2_000_000) }),
  });
  assert.equal(huge.statusCode, 413);
  const metrics = metricValues((await server.app.inject('/metrics')).body);
  assert.ok((metrics.get('sbs_rejections_total{model="",reason="invalid"}') ?? 0) >= 5);
  assert.ok((metrics.get('sbs_rejections_total{model="sst2-int8",reason="too_long"}') ?? 0) >= 1);
});

test('concurrent requests form batches larger than one', async () => {
  const before = metricValues((await server.app.inject('/metrics')).body);
  const requests = Array.from({ length: 12 }, (_, i) =>
    post('/classify', { text: `review number ${i} ${filler(i + 3)}` }),
  );
  const responses = await Promise.all(requests);
  assert.ok(responses.every((r) => r.statusCode === 200));
  const after = metricValues((await server.app.inject('/metrics')).body);
  const key = (suffix: string) => `sbs_batch_size_${suffix}{model="sst2-int8"}`;
  const rows = (after.get(key('sum')) ?? 0) - (before.get(key('sum')) ?? 0);
  const batches = (after.get(key('count')) ?? 0) - (before.get(key('count')) ?? 0);
  assert.equal(rows, 12);
  assert.ok(batches < rows, `12 rows ran in ${batches} batches`);
  assert.ok(
    (after.get('sbs_batch_size_bucket{le="1",model="sst2-int8"}') ?? 0) < after.get(key('count'))!,
    'some batch had more than one row',
  );
});
