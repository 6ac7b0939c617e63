/**
 * The official Hugging Face JS client (`@huggingface/inference`, `InferenceClient` with `endpointUrl`) against a real
 * server on loopback, with an API key: every call must pass the client's own response validation unchanged. A
 * recording `fetch` keeps the raw bodies so the wire shapes (a list per input for classification, grouped entities
 * for NER) are checked too, including for lists, which the client itself reduces to the first input.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { InferenceClient, InferenceClientProviderApiError } from '@huggingface/inference';
import { prepareModels, startTestServer, type TestServer } from './helpers/server-fixture.js';
import { workspace } from './helpers/workspace.js';

const root = workspace('hf-client');
const apiKey = 'sbs-test-key-0123456789';
let server: TestServer;
let base: string;
const raw: { url: string; status: number; body: unknown }[] = [];

/** Node's fetch, keeping each answer's status and parsed body. */
const recordingFetch: typeof fetch = async (input, init) => {
  const response = await fetch(input, init);
  const text = await response.clone().text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: kept as text
  }
  raw.push({ url: String(input), status: response.status, body });
  return response;
};
const lastRaw = () => raw[raw.length - 1];

const client = (path: string, key = apiKey) =>
  new InferenceClient(key, { endpointUrl: `${base}${path}`, fetch: recordingFetch });

before(async () => {
  const modelsDir = await prepareModels(root);
  server = await startTestServer(modelsDir, (config) => {
    config.auth.apiKeys = [apiKey];
    config.batching.maxBatchDelayMs = 5;
  });
  await server.app.listen({ host: '127.0.0.1', port: 0 });
  const address = server.app.server.address() as { port: number };
  base = `http://127.0.0.1:${address.port}`;
});
after(() => server.close());

const isLabelScore = (x: unknown) =>
  typeof (x as { label?: unknown }).label === 'string' && typeof (x as { score?: unknown }).score === 'number';

test('question answering: one answer object, also with top_k (the client takes the best), through both routes', async () => {
  const inputs = { question: 'Which city?', context: 'The museum is in zurich, by the river.' };
  for (const path of ['/qa', '/models/qa-int8/qa']) {
    const answer = await client(path).questionAnswering({ inputs });
    assert.equal(answer.answer, 'zurich');
    assert.equal(inputs.context.slice(answer.start, answer.end), answer.answer);
    assert.ok(answer.score > 0 && answer.score <= 1);
    assert.deepEqual(lastRaw().body, answer, 'top_k 1: the wire body is the answer object itself');
  }
  const best = await client('/qa').questionAnswering({ inputs, parameters: { top_k: 3, max_answer_len: 5 } });
  assert.equal(best.answer, 'zurich');
  const list = lastRaw().body as { answer: string; score: number }[];
  assert.ok(Array.isArray(list) && list.length === 3 && list[0].score >= list[1].score, JSON.stringify(list));
  assert.deepEqual(list[0], best);
});

test('text classification: a single string answers [[{label, score}]] and top_k sets the length', async () => {
  const labels = await client('/classify').textClassification({ inputs: 'a wonderful film' });
  assert.equal(labels.length, 1);
  assert.ok(labels.every(isLabelScore) && ['NEGATIVE', 'POSITIVE'].includes(labels[0].label));
  assert.deepEqual(lastRaw().body, [labels], 'a list per input');
  const all = await client('/models/sst2-fp32/classify').textClassification({
    inputs: 'a wonderful film',
    parameters: { top_k: 5 },
  });
  assert.deepEqual(all.map((x) => x.label).sort(), ['NEGATIVE', 'POSITIVE']);
  assert.ok(Math.abs(all[0].score + all[1].score - 1) < 1e-6 && all[0].score >= all[1].score);
  assert.deepEqual(lastRaw().body, [all]);
});

test('text classification: a {text, text_pair} input and a list of inputs', async () => {
  const pair = await client('/classify').textClassification({
    // The Inference API form of a GLUE pair; the client's TypeScript type names only strings.
    inputs: { text: 'a wonderful film', text_pair: 'the critics agreed' } as unknown as string,
    parameters: { top_k: 2 },
  });
  assert.equal(pair.length, 2);
  assert.ok(pair.every(isLabelScore));
  const alone = await client('/classify').textClassification({ inputs: 'a wonderful film', parameters: { top_k: 2 } });
  assert.notDeepEqual(pair, alone, 'the second segment changes the scores');

  const inputs = ['good', { text: 'good', text_pair: 'bad' }, 'terrible'];
  const first = await client('/classify').textClassification({
    inputs: inputs as unknown as string,
    parameters: { top_k: 2 },
  });
  const body = lastRaw().body as unknown[][];
  assert.equal(body.length, 3, 'one list per input');
  assert.ok(body.every((list) => Array.isArray(list) && list.length === 2 && list.every(isLabelScore)));
  assert.deepEqual(first, body[0], 'the client reads the first input');
});

test('token classification: grouped entities by default, word = text slice; lists and explicit strategies', async () => {
  const text = 'John Smith moved from London to New York in 1999.';
  const grouped = await client('/ner').tokenClassification({ inputs: text });
  assert.ok(Array.isArray(grouped));
  // The tiny random model may call everything "O" (ignored by default): ask for every label too.
  const everything = await client('/models/conll-int8/ner').tokenClassification({
    inputs: text,
    parameters: { ignore_labels: [] },
  });
  assert.ok(everything.length > 0);
  for (const entity of [...grouped, ...everything]) {
    assert.equal(typeof entity.entity_group, 'string');
    assert.equal(entity.word, text.slice(entity.start, entity.end), JSON.stringify(entity));
  }
  for (const strategy of ['simple', 'first', 'average', 'max'] as const) {
    const entities = await client('/ner').tokenClassification({
      inputs: text,
      parameters: { aggregation_strategy: strategy, ignore_labels: [] },
    });
    assert.ok(entities.length > 0 && entities.every((e) => e.word === text.slice(e.start, e.end)), strategy);
  }
  // A list answers a list per input (the client's typing covers one string; the wire shape is checked here).
  await assert.rejects(
    client('/ner').tokenClassification({ inputs: [text, 'Paris'] as unknown as string }),
    /malformed response/,
  );
  const lists = lastRaw().body as unknown[][];
  assert.ok(Array.isArray(lists) && lists.length === 2 && lists.every(Array.isArray));
});

test('errors reach the client as its own error type, our message in its httpResponse; a wrong key is a 401', async () => {
  // The client's message shows our body's `error` (a reason code such as "unknown_model"); the full sentence is in
  // `message`, which the client keeps in httpResponse.body.
  const failure = async (call: Promise<unknown>) => {
    const error = await call.then(
      () => assert.fail('expected a rejection'),
      (error: unknown) => error,
    );
    assert.ok(error instanceof InferenceClientProviderApiError, String(error));
    return { status: error.httpResponse.status, body: error.httpResponse.body as { message?: string } };
  };
  const unauthorized = await failure(client('/classify', 'not-the-key').textClassification({ inputs: 'good' }));
  assert.equal(unauthorized.status, 401);
  const unknown = await failure(client('/models/nope/classify').textClassification({ inputs: 'good' }));
  assert.equal(unknown.status, 404);
  assert.match(unknown.body.message ?? '', /unknown model "nope"/);
  const badTopK = await failure(client('/classify').textClassification({ inputs: 'good', parameters: { top_k: 0 } }));
  assert.equal(badTopK.status, 400);
  assert.match(badTopK.body.message ?? '', /top_k must be >= 1/);
});
