import type { FastifyPluginAsync } from 'fastify';
import type { ServedModel } from '../../models/registry.js';
import { prepareClassify } from '../../tasks/classify-task.js';
import { RequestError } from '../../tasks/errors.js';
import { prepareEntities } from '../../tasks/ner-task.js';
import { defaultQaOptions, prepareQuestion } from '../../tasks/qa-task.js';
import { runJobs } from '../../tasks/task-job.js';
import { requestSignal } from '../request-signal.js';
import { refuseUnreadableBodies } from '../body-guards.js';
import type { RouteContext } from '../server.js';

/** The Open Inference Protocol (KServe v2 / Triton) over the same tasks, with BYTES text tensors. */
interface V2Tensor {
  name: string;
  shape: number[];
  datatype: string;
  data: unknown[];
}

const tensorSchema = {
  type: 'object',
  required: ['name', 'shape', 'datatype', 'data'],
  properties: {
    name: { type: 'string', minLength: 1 },
    shape: { type: 'array', items: { type: 'integer', minimum: 0 }, minItems: 1, maxItems: 2 },
    datatype: { type: 'string', enum: ['BYTES'] },
    data: { type: 'array', maxItems: 64 },
    parameters: { type: 'object' },
  },
} as const;

const inferBody = {
  type: 'object',
  required: ['inputs'],
  properties: {
    id: { type: 'string' },
    inputs: { type: 'array', items: tensorSchema, minItems: 1, maxItems: 4 },
    outputs: {
      type: 'array',
      maxItems: 8,
      items: {
        type: 'object',
        required: ['name'],
        properties: { name: { type: 'string', minLength: 1, maxLength: 256 }, parameters: { type: 'object' } },
      },
    },
    parameters: { type: 'object' },
  },
} as const;

const taskInputs: Record<string, { required: string[]; optional: string[] }> = {
  'question-answering': { required: ['question', 'context'], optional: [] },
  'text-classification': { required: ['text'], optional: ['text_pair'] },
  'token-classification': { required: ['text'], optional: [] },
};

const taskOutputs: Record<string, { name: string; datatype: string }[]> = {
  'question-answering': [
    { name: 'answer', datatype: 'BYTES' },
    { name: 'score', datatype: 'FP32' },
    { name: 'start', datatype: 'INT64' },
    { name: 'end', datatype: 'INT64' },
  ],
  'text-classification': [
    { name: 'label', datatype: 'BYTES' },
    { name: 'score', datatype: 'FP32' },
  ],
  'token-classification': [{ name: 'entities', datatype: 'BYTES' }],
};

function metadata(model: ServedModel) {
  const task = model.manifest.task;
  return {
    name: model.name,
    versions: ['1'],
    platform: model.backend === 'engine' ? 'sparse_bert_engine' : 'onnxruntime_onnx',
    inputs: [...taskInputs[task].required, ...taskInputs[task].optional].map((name) => ({
      name,
      datatype: 'BYTES',
      shape: [-1],
    })),
    outputs: taskOutputs[task].map((output) => ({ ...output, shape: [-1] })),
    parameters: {
      task,
      precision: model.precision,
      backend: model.backend,
      kernel_path: model.kernelPath,
      encoder_sparsity: model.manifest.sparsity.final.encoderLinearSparsity,
    },
  };
}

function readTexts(inputs: V2Tensor[], task: string): Record<string, string[]> {
  const spec = taskInputs[task];
  const byName = new Map<string, V2Tensor>();
  for (const tensor of inputs) {
    if (byName.has(tensor.name)) throw new RequestError(400, `inputs: tensor "${tensor.name}" is given more than once`);
    byName.set(tensor.name, tensor);
  }
  for (const tensor of inputs) {
    if (![...spec.required, ...spec.optional].includes(tensor.name))
      throw new RequestError(
        400,
        `inputs: unexpected tensor "${tensor.name}"; this model takes ${[...spec.required, ...spec.optional].join(', ')}`,
      );
  }
  const texts: Record<string, string[]> = {};
  let count: number | undefined;
  for (const name of [...spec.required, ...spec.optional]) {
    const tensor = byName.get(name);
    if (!tensor) {
      if (spec.required.includes(name)) throw new RequestError(400, `inputs: missing tensor "${name}"`);
      continue;
    }
    const elements = tensor.shape.reduce((a, b) => a * b, 1);
    if (elements !== tensor.data.length)
      throw new RequestError(
        400,
        `inputs[${name}].shape [${tensor.shape}] does not match its ${tensor.data.length} data elements`,
      );
    if (tensor.data.some((value) => typeof value !== 'string' || value.length === 0))
      throw new RequestError(400, `inputs[${name}].data must hold non-empty strings`);
    if (count !== undefined && count !== elements)
      throw new RequestError(400, `inputs[${name}] has ${elements} elements, the other inputs ${count}`);
    count = elements;
    texts[name] = tensor.data as string[];
  }
  return texts;
}

/** The output names a request asks for (all of the task's, in their order, when it names none); 400 for others. */
function requestedOutputs(outputs: { name: string }[] | undefined, task: string): string[] {
  const known = taskOutputs[task].map((output) => output.name);
  if (outputs === undefined || outputs.length === 0) return known;
  const names: string[] = [];
  for (const { name } of outputs) {
    if (!known.includes(name))
      throw new RequestError(400, `outputs: unknown output "${name}"; this model returns ${known.join(', ')}`);
    if (names.includes(name)) throw new RequestError(400, `outputs: output "${name}" is requested more than once`);
    names.push(name);
  }
  return names;
}

export const v2Routes =
  (ctx: RouteContext): FastifyPluginAsync =>
  async (app) => {
    refuseUnreadableBodies(app);
    const find = (name: string): ServedModel => {
      const model = ctx.registry.get(name);
      if (!model) throw new RequestError(404, `unknown model "${name}"`, 'unknown_model');
      return model;
    };

    app.get('/v2', async () => ({ name: 'sparse-bert-serve', version: ctx.version, extensions: [] }));
    app.get('/v2/health/live', async () => ({ live: true }));
    app.get('/v2/health/ready', async (_request, reply) => {
      reply.code(ctx.state.ready ? 200 : 503);
      return { ready: ctx.state.ready };
    });
    app.get<{ Params: { name: string } }>('/v2/models/:name', async (request) => metadata(find(request.params.name)));
    app.get<{ Params: { name: string } }>('/v2/models/:name/ready', async (request, reply) => {
      find(request.params.name);
      reply.code(ctx.state.ready ? 200 : 503);
      return { name: request.params.name, ready: ctx.state.ready };
    });

    app.post<{
      Params: { name: string };
      Body: { id?: string; inputs: V2Tensor[]; outputs?: { name: string }[] };
    }>('/v2/models/:name/infer', { schema: { body: inferBody } }, async (request, reply) => {
      const model = find(request.params.name);
      request.modelName = model.name;
      const task = model.manifest.task;
      const texts = readTexts(request.body.inputs, task);
      const wanted = requestedOutputs(request.body.outputs, task);
      const count = texts[taskInputs[task].required[0]].length;
      const indices = Array.from({ length: count }, (_, i) => i);
      const signal = requestSignal(reply, ctx.config.limits.requestTimeoutMs);
      const run = { signal, metrics: ctx.metrics };
      let columns: Record<string, unknown[]>;
      if (task === 'question-answering') {
        const options = { ...defaultQaOptions, maxWindows: ctx.config.limits.maxQaWindows };
        const answers = (
          await runJobs(
            model,
            indices,
            (i) => prepareQuestion(model, { question: texts.question[i], context: texts.context[i] }, options, run),
            run,
          )
        ).map((list) => list[0] ?? { answer: '', score: 0, start: 0, end: 0 });
        columns = {
          answer: answers.map((a) => a.answer),
          score: answers.map((a) => a.score),
          start: answers.map((a) => a.start),
          end: answers.map((a) => a.end),
        };
      } else if (task === 'text-classification') {
        const best = (
          await runJobs(
            model,
            indices,
            (i) => prepareClassify(model, { text: texts.text[i], textPair: texts.text_pair?.[i] }, 1, run),
            run,
          )
        ).map((scores) => scores[0]);
        columns = { label: best.map((b) => b.label), score: best.map((b) => b.score) };
      } else {
        const entities = await runJobs(
          model,
          indices,
          (i) => prepareEntities(model, texts.text[i], { aggregationStrategy: 'simple' }, run),
          run,
        );
        columns = { entities: entities.map((list) => JSON.stringify(list)) };
      }
      const datatypes = new Map(taskOutputs[task].map((output) => [output.name, output.datatype]));
      const outputs = wanted.map((name) => ({
        name,
        datatype: datatypes.get(name)!,
        shape: [count],
        data: columns[name],
      }));
      return { model_name: model.name, model_version: '1', id: request.body.id, outputs };
    });
  };
