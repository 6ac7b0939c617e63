import type { FastifyPluginAsync } from 'fastify';
import { prepareClassify, type ClassifyInput } from '../../tasks/classify-task.js';
import { runJobs } from '../../tasks/task-job.js';
import { selectModel } from '../model-selection.js';
import { requestSignal } from '../request-signal.js';
import { bodyInputs, bodyOption, classifyBody, modelParams, type TaskBody } from '../schemas.js';
import { refuseUnreadableBodies } from '../body-guards.js';
import type { RouteContext } from '../server.js';

type RawInput = string | { text: string; text_pair?: string };

const isInferenceApiForm = (body: TaskBody | unknown[]) => !Array.isArray(body) && body.inputs !== undefined;

export const classifyRoutes =
  (ctx: RouteContext): FastifyPluginAsync =>
  async (app) => {
    refuseUnreadableBodies(app);
    for (const url of ['/classify', '/models/:model/classify']) {
      app.post<{ Body: TaskBody | RawInput[]; Params: { model?: string } }>(
        url,
        { schema: { body: classifyBody, params: modelParams } },
        async (request, reply) => {
          const body = request.body;
          const model = selectModel(
            ctx.registry,
            'text-classification',
            request.params.model ?? bodyOption(body, 'model'),
            request.params.model ? 'path model' : 'model',
          );
          request.modelName = model.name;
          const { inputs, isList } = bodyInputs<RawInput>(body, (b) => ({
            text: b.text as string,
            text_pair: b.text_pair as string | undefined,
          }));
          const topK = bodyOption<number>(body, 'top_k') ?? 1;
          const signal = requestSignal(reply, ctx.config.limits.requestTimeoutMs);
          const toInput = (raw: RawInput): ClassifyInput =>
            typeof raw === 'string' ? { text: raw } : { text: raw.text, textPair: raw.text_pair };
          const run = { signal, metrics: ctx.metrics };
          const results = await runJobs(model, inputs, (raw) => prepareClassify(model, toInput(raw), topK, run), run);
          // Our forms answer a single input with its list; the Hugging Face Inference API form (`inputs`) always
          // answers a list per input, `[[{label, score}, ...]]`, which is what its clients read (`response[0]`).
          return isList || isInferenceApiForm(body) ? results : results[0];
        },
      );
    }
  };
