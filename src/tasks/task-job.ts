import type { BatchRow } from '../batcher/batcher.js';
import type { ServedModel } from '../models/registry.js';
import type { RowOutputs } from '../runtime/runner.js';
import type { RunContext } from './run-context.js';

/**
 * One input of a request, tokenized and checked against every limit, ready for inference: the rows it needs (QA: one
 * per window) and how to turn their outputs into the answer. Splitting preparation from inference lets a request
 * with several inputs queue all its rows at once — all-or-nothing admission — after every input has passed its checks.
 */
export interface TaskJob<Result> {
  rows: BatchRow[];
  finish(outputs: RowOutputs[]): Result;
}

/** Runs one job: its rows queued together, then its answer. */
export async function runJob<Result>(model: ServedModel, job: TaskJob<Result>, context: RunContext): Promise<Result> {
  return job.finish(await model.batcher.submit(job.rows, context.signal));
}

/**
 * Prepares every input (yielding to the event loop between inputs), then queues the rows of all of them in one
 * `submit`: they enter the queue together or not at all (a refused request leaves no rows behind, and a request
 * whose rows could never fit the queue is refused before anything is queued). A client mistake in any input
 * refuses the whole request before any inference.
 */
export async function runJobs<Input, Result>(
  model: ServedModel,
  inputs: readonly Input[],
  prepare: (input: Input) => TaskJob<Result> | Promise<TaskJob<Result>>,
  context: RunContext,
): Promise<Result[]> {
  const jobs: TaskJob<Result>[] = [];
  for (const [i, input] of inputs.entries()) {
    if (i > 0) await new Promise<void>((resolve) => setImmediate(resolve));
    context.signal?.throwIfAborted();
    jobs.push(await prepare(input));
  }
  const outputs = await model.batcher.submit(
    jobs.flatMap((job) => job.rows),
    context.signal,
  );
  let at = 0;
  return jobs.map((job) => {
    const mine = outputs.slice(at, at + job.rows.length);
    at += job.rows.length;
    return job.finish(mine);
  });
}
