/**
 * Owns one onnxruntime session in a worker thread. onnxruntime-node's session.run is synchronous on the calling
 * thread (it only defers to setImmediate), so run on the main thread it would block HTTP, tokenization and timers
 * for the whole inference (measured: 343 ms event-loop stalls under load).
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';

export interface SessionWorkerData {
  path: string;
  threads: number;
  allowSpinning: boolean;
}

export interface RunRequest {
  id: number;
  dims: [number, number];
  /** int64 tensors by input name. */
  inputs: Record<string, BigInt64Array>;
  outputNames: string[];
}

export type WorkerMessage =
  | { kind: 'ready' }
  | { kind: 'failed'; message: string }
  | { kind: 'result'; id: number; outputs: Record<string, { data: Float32Array; dims: number[] }> }
  | { kind: 'error'; id: number; message: string };

const { path, threads, allowSpinning } = workerData as SessionWorkerData;
const port = parentPort!;

try {
  const session = await ort.InferenceSession.create(path, {
    graphOptimizationLevel: 'all',
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    extra: { session: { intra_op: { allow_spinning: allowSpinning ? '1' : '0' } } },
  });
  port.on('message', async (message: RunRequest | 'release') => {
    if (message === 'release') {
      await session.release();
      port.close();
      return;
    }
    try {
      const feeds = Object.fromEntries(
        Object.entries(message.inputs).map(([name, data]) => [name, new ort.Tensor('int64', data, message.dims)]),
      );
      const result = await session.run(feeds);
      const outputs: Record<string, { data: Float32Array; dims: number[] }> = {};
      for (const name of message.outputNames)
        outputs[name] = { data: result[name].data as Float32Array, dims: [...result[name].dims] };
      const reply: WorkerMessage = { kind: 'result', id: message.id, outputs };
      port.postMessage(
        reply,
        Object.values(outputs).map((output) => output.data.buffer as ArrayBuffer),
      );
    } catch (error) {
      port.postMessage({ kind: 'error', id: message.id, message: (error as Error).message } satisfies WorkerMessage);
    }
  });
  port.postMessage({ kind: 'ready' } satisfies WorkerMessage);
} catch (error) {
  port.postMessage({ kind: 'failed', message: (error as Error).message } satisfies WorkerMessage);
}
