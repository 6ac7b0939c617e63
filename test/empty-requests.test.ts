/**
 * Requests with nothing to compute are answered at once: a v2 tensor of zero elements gets 200 with empty outputs of
 * shape [0] (as Triton answers), a mismatch or an empty list form gets a 400 naming the field, and a text that
 * tokenizes to nothing is one row of [CLS][SEP] that is answered like any other. Every request here must be
 * answered well within a few seconds: before the fix, a submit of zero rows waited for the 30 s deadline and a 504.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { Batcher, type BatchRow } from '../src/batcher/batcher.js';
import { prepareModels, startTestServer, type TestServer } from './helpers/server-fixture.js';
import { workspace } from './helpers/workspace.js';

const root = workspace('empty-requests');
let server: TestServer;

before(async () => {
  const modelsDir = await prepareModels(root);
  server = await startTestServer(modelsDir, (config) => (config.batching.maxBatchDelayMs = 5));
});
after(() => server.close());

/** Far below the 30 s request deadline: a request that waits for work never queued fails here, not after 30 s. */
const answerWithinMs = 5000;

async function within<T>(what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${answerWithinMs} ms`)), answerWithinMs);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function post(url: string, payload: unknown): Promise<LightMyRequestResponse> {
  const what = `POST ${url} ${JSON.stringify(payload).slice(0, 120)}`;
  return within(what, server.app.inject({ method: 'POST', url, payload: payload as object }));
}

const tensor = (name: string, shape: number[], data: string[]) => ({ name, shape, datatype: 'BYTES', data });

interface V2Output {
  name: string;
  datatype: string;
  shape: number[];
  data: unknown[];
}

test('batcher: a submit of zero rows resolves at once with no results and queues nothing', async () => {
  let runs = 0;
  const runner = async (rows: BatchRow[]) => (runs++, rows.map((row) => row.ids.length));
  const limits = {
    maxBatchSize: 8,
    maxBatchTokens: 1024,
    maxBatchDelayMs: 60_000,
    maxQueueRows: 4,
    maxPaddingRatio: 1,
  };
  for (const ragged of [false, true]) {
    const batcher = new Batcher<number>({ ...limits, ragged }, [runner]);
    assert.deepEqual(await within('submit([])', batcher.submit([])), []);
    assert.deepEqual(await within('submit([], signal)', batcher.submit([], new AbortController().signal)), []);
    assert.equal(batcher.depth, 0);
    // A zero-row request beside real work neither waits for it nor disturbs it.
    const real = batcher.submit([{ ids: [1, 2, 3] }]);
    assert.deepEqual(await within('submit([]) beside a queued row', batcher.submit([])), []);
    assert.equal(batcher.depth, 1, 'the real row is still waiting for its batch delay');
    await within('drain', batcher.drain());
    assert.deepEqual(await real, [3]);
    // An already aborted request is still refused with its reason, rows or not.
    const gone = AbortSignal.abort(new Error('gone'));
    await assert.rejects(batcher.submit([], gone), /gone/);
  }
  assert.equal(runs, 2, 'the runner ran only for the real rows');
});

const v2Models = ['sst2-int8', 'sst2-fp32', 'conll-int8', 'conll-fp32', 'qa-int8', 'qa-fp32'];
const v2Inputs: Record<string, string[]> = {
  sst2: ['text'],
  conll: ['text'],
  qa: ['question', 'context'],
};
const v2OutputNames: Record<string, string[]> = {
  sst2: ['label', 'score'],
  conll: ['entities'],
  qa: ['answer', 'score', 'start', 'end'],
};

test('v2: an input of zero elements, of any shape, answers 200 with every output of shape [0] and no data', async () => {
  for (const model of v2Models) {
    const family = model.split('-')[0];
    for (const shape of [[0], [0, 1], [1, 0], [0, 0]]) {
      const inputs = v2Inputs[family].map((name) => tensor(name, shape, []));
      const response = await post(`/v2/models/${model}/infer`, { id: 'empty', inputs });
      assert.equal(response.statusCode, 200, `${model} shape [${shape}]: ${response.body}`);
      const body = response.json() as { model_name: string; id: string; outputs: V2Output[] };
      assert.equal(body.model_name, model);
      assert.equal(body.id, 'empty');
      assert.deepEqual(
        body.outputs.map((output) => output.name),
        v2OutputNames[family],
      );
      for (const output of body.outputs) {
        assert.deepEqual(output.shape, [0], `${model} ${output.name}`);
        assert.deepEqual(output.data, [], `${model} ${output.name}`);
      }
    }
  }
  // Only the outputs asked for, still empty.
  const some = await post('/v2/models/qa-int8/infer', {
    inputs: [tensor('question', [0], []), tensor('context', [0], [])],
    outputs: [{ name: 'score' }],
  });
  assert.equal(some.statusCode, 200, some.body);
  assert.deepEqual(some.json().outputs, [{ name: 'score', datatype: 'FP32', shape: [0], data: [] }]);
  // A pair classifier with both segments empty.
  const pair = await post('/v2/models/sst2-int8/infer', {
    inputs: [tensor('text', [0], []), tensor('text_pair', [0], [])],
  });
  assert.equal(pair.statusCode, 200, pair.body);
  assert.deepEqual(
    pair.json().outputs.map((output: V2Output) => output.shape),
    [[0], [0]],
  );
});

test('v2: zero elements beside a non-empty input, or a shape its data does not fill, is a 400 naming the input', async () => {
  const cases: [string, object[], RegExp][] = [
    ['qa-int8', [tensor('question', [0], []), tensor('context', [1], ['Zurich'])], /inputs\[context\] has 1 elements/],
    ['qa-fp32', [tensor('question', [1], ['Where?']), tensor('context', [0], [])], /inputs\[context\] has 0 elements/],
    ['sst2-int8', [tensor('text', [1], ['good']), tensor('text_pair', [0], [])], /inputs\[text_pair\] has 0 elements/],
    ['conll-int8', [tensor('text', [0], ['John'])], /inputs\[text\]\.shape \[0\] does not match its 1 data/],
    ['sst2-int8', [tensor('text', [1, 0], ['good'])], /inputs\[text\]\.shape \[1,0\] does not match its 1 data/],
    ['conll-fp32', [tensor('text', [1], [''])], /inputs\[text\]\.data must hold non-empty strings/],
  ];
  for (const [model, inputs, message] of cases) {
    const response = await post(`/v2/models/${model}/infer`, { inputs });
    assert.equal(response.statusCode, 400, `${model} ${JSON.stringify(inputs)}: ${response.body}`);
    assert.match(response.json().error, message);
  }
});

test('v2: a text that tokenizes to nothing is one [CLS][SEP] row and is answered', async () => {
  for (const model of ['sst2-int8', 'sst2-fp32']) {
    const response = await post(`/v2/models/${model}/infer`, { inputs: [tensor('text', [2], [' ', '\t\n'])] });
    assert.equal(response.statusCode, 200, response.body);
    const [label, score] = response.json().outputs as V2Output[];
    assert.deepEqual(label.shape, [2]);
    assert.ok(label.data.every((value) => ['NEGATIVE', 'POSITIVE'].includes(value as string)));
    assert.ok(score.data.every((value) => (value as number) > 0 && (value as number) <= 1));
  }
  for (const model of ['conll-int8', 'conll-fp32']) {
    const response = await post(`/v2/models/${model}/infer`, { inputs: [tensor('text', [1], ['   '])] });
    assert.equal(response.statusCode, 200, response.body);
    assert.deepEqual(response.json().outputs[0].data, ['[]']);
  }
});

test('task routes: empty lists are a 400 naming the body or its inputs, never a wait', async () => {
  const cases: [string, unknown, RegExp][] = [
    ['/classify', [], /^body must NOT have fewer than 1 items/],
    ['/classify', { inputs: [] }, /body\/inputs must NOT have fewer than 1 items/],
    [
      '/models/sst2-fp32/classify',
      { inputs: [], parameters: { top_k: 2 } },
      /body\/inputs must NOT have fewer than 1 items/,
    ],
    ['/ner', [], /^body must NOT have fewer than 1 items/],
    ['/ner', { inputs: [] }, /body\/inputs must NOT have fewer than 1 items/],
    ['/qa', [], /^body must NOT have fewer than 1 items/],
    ['/qa', { inputs: [] }, /body\/inputs must NOT have fewer than 1 items/],
    ['/classify', { text: '' }, /body\/text must NOT have fewer than 1 characters/],
    ['/classify', { inputs: '' }, /body\/inputs must NOT have fewer than 1 characters/],
    ['/ner', { text: '' }, /body\/text must NOT have fewer than 1 characters/],
    ['/qa', { question: 'Where?', context: '' }, /body\/context must NOT have fewer than 1 characters/],
  ];
  for (const [url, payload, message] of cases) {
    const response = await post(url, payload);
    assert.equal(response.statusCode, 400, `${url} ${JSON.stringify(payload)}: ${response.body}`);
    assert.match(response.json().message, message);
  }
});

test('task routes: texts that tokenize to nothing are answered like any other', async () => {
  const classified = await post('/classify', { text: ' ' });
  assert.equal(classified.statusCode, 200, classified.body);
  assert.equal(classified.json().length, 1);
  const pairs = await post('/classify', [{ text: ' ', text_pair: '\n' }, '\t']);
  assert.equal(pairs.statusCode, 200, pairs.body);
  assert.equal(pairs.json().length, 2);

  const entities = await post('/ner', { text: '  ' });
  assert.equal(entities.statusCode, 200, entities.body);
  assert.deepEqual(entities.json(), []);
  const entityLists = await post('/ner', { inputs: [' ', '\n'] });
  assert.equal(entityLists.statusCode, 200, entityLists.body);
  assert.deepEqual(entityLists.json(), [[], []]);

  // A question of no tokens still reads the context; a context of no tokens has no span to answer with.
  const blankQuestion = await post('/qa', { question: ' ', context: 'It is in Zurich.' });
  assert.equal(blankQuestion.statusCode, 200, blankQuestion.body);
  assert.equal(blankQuestion.json().answer, 'Zurich');
  const blankContext = await post('/qa', { question: 'Where?', context: ' \n ' });
  assert.equal(blankContext.statusCode, 200, blankContext.body);
  assert.deepEqual(blankContext.json(), { answer: '', score: 0, start: 0, end: 0 });
  const blankContexts = await post('/qa', { inputs: [{ question: 'Where?', context: ' ' }], parameters: { top_k: 3 } });
  assert.equal(blankContexts.statusCode, 200, blankContexts.body);
  assert.deepEqual(blankContexts.json(), [[]]);
});
