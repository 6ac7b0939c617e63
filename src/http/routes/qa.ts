import type { FastifyPluginAsync } from 'fastify';
import { defaultQaOptions, prepareQuestion, type QaInput } from '../../tasks/qa-task.js';
import { runJobs } from '../../tasks/task-job.js';
import { selectModel } from '../model-selection.js';
import { requestSignal } from '../request-signal.js';
import { bodyInputs, bodyOption, modelParams, qaBody, type TaskBody } from '../schemas.js';
import { refuseUnreadableBodies } from '../body-guards.js';
import type { RouteContext } from '../server.js';

export const qaRoutes =
  (ctx: RouteContext): FastifyPluginAsync =>
  async (app) => {
    refuseUnreadableBodies(app);
    for (const url of ['/qa', '/models/:model/qa']) {
      app.post<{ Body: TaskBody | QaInput[]; Params: { model?: string } }>(
        url,
        { schema: { body: qaBody, params: modelParams } },
        async (request, reply) => {
          const body = request.body;
          const model = selectModel(
            ctx.registry,
            'question-answering',
            request.params.model ?? bodyOption(body, 'model'),
            request.params.model ? 'path model' : 'model',
          );
          request.modelName = model.name;
          const { inputs, isList } = bodyInputs<QaInput>(body, (b) => ({
            question: b.question as string,
            context: b.context as string,
          }));
          const topK = bodyOption<number>(body, 'top_k') ?? defaultQaOptions.topK;
          const options = {
            topK,
            maxAnswerLen: bodyOption<number>(body, 'max_answer_len') ?? defaultQaOptions.maxAnswerLen,
            docStride: bodyOption<number>(body, 'doc_stride'),
            maxSeqLen: bodyOption<number>(body, 'max_seq_len'),
            maxQuestionLen: bodyOption<number>(body, 'max_question_len') ?? defaultQaOptions.maxQuestionLen,
            handleImpossibleAnswer: bodyOption<boolean>(body, 'handle_impossible_answer') ?? false,
            maxWindows: ctx.config.limits.maxQaWindows,
          };
          const signal = requestSignal(reply, ctx.config.limits.requestTimeoutMs);
          const run = { signal, metrics: ctx.metrics };
          const answers = await runJobs(model, inputs, (input) => prepareQuestion(model, input, options, run), run);
          // Like the Hugging Face pipeline: one answer object when top_k is 1, else a list per input.
          const shaped = answers.map((list) =>
            topK === 1 ? (list[0] ?? { answer: '', score: 0, start: 0, end: 0 }) : list,
          );
          return isList ? shaped : shaped[0];
        },
      );
    }
  };
