import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { BatchRow } from '../batcher/batcher.js';
import type { ModelRunner, RowOutputs } from './runner.js';
import type { RunRequest, SessionWorkerData, WorkerMessage } from './session-worker.js';

export interface SessionSettings {
  threads: number;
  allowSpinning: boolean;
}

/** The worker runs from source under tsx (tests, `npm run`) and from dist/ after the build. */
const workerUrl = new URL(`./session-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

/**
 * Under tsx the worker is TypeScript, and Node 20 workers ignore `--import tsx`: a one-line bootstrap registers
 * tsx's loader inside the worker first. The built product (dist/) starts the compiled worker directly.
 */
function startWorker(data: SessionWorkerData): Worker {
  if (!workerUrl.pathname.endsWith('.ts')) return new Worker(workerUrl, { workerData: data });
  const bootstrap = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((tsx) => { tsx.register(); return import(${JSON.stringify(workerUrl.href)}); });`;
  return new Worker(bootstrap, { eval: true, workerData: data });
}

/**
 * Runs padded batches through one onnxruntime session living in its own worker thread, so inference never blocks
 * the event loop. Callers keep to one run at a time per runner (the batcher does).
 */
export class OnnxRunner implements ModelRunner {
  readonly backend = 'onnxruntime' as const;
  readonly kernelPath = 'cpu';
  readonly ragged = false;
  private nextId = 0;
  private readonly pending = new Map<
    number,
    { resolve(outputs: Record<string, { data: Float32Array; dims: number[] }>): void; reject(error: Error): void }
  >();

  private constructor(
    private readonly worker: Worker,
    private readonly inputNames: string[],
    private readonly outputNames: string[],
    private readonly padId: number,
    /** Token-level outputs ([B, S] / [B, S, labels]) lose their padded positions; [B, labels] rows stay whole. */
    private readonly tokenLevel: boolean,
  ) {
    worker.on('message', (message: WorkerMessage) => {
      if (message.kind !== 'result' && message.kind !== 'error') return;
      const waiter = this.pending.get(message.id);
      this.pending.delete(message.id);
      if (message.kind === 'result') waiter?.resolve(message.outputs);
      else waiter?.reject(new Error(`inference failed: ${message.message}`));
    });
    worker.on('error', (error) => this.failAll(error));
    worker.on('exit', () => this.failAll(new Error('the inference worker exited')));
  }

  static async create(
    path: string,
    signature: { inputs: string[]; outputs: string[] },
    tokenLevel: boolean,
    padId: number,
    settings: SessionSettings,
  ): Promise<OnnxRunner> {
    const data: SessionWorkerData = { path, threads: settings.threads, allowSpinning: settings.allowSpinning };
    const worker = startWorker(data);
    await new Promise<void>((resolve, reject) => {
      const onMessage = (message: WorkerMessage) => {
        if (message.kind === 'ready') resolve();
        else if (message.kind === 'failed') reject(new Error(message.message));
        else return;
        worker.off('message', onMessage);
        worker.off('error', reject);
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
    }).catch(async (error) => {
      await worker.terminate();
      throw error;
    });
    return new OnnxRunner(worker, signature.inputs, signature.outputs, padId, tokenLevel);
  }

  /** Pads every row to the longest one in the batch (not to the model maximum) and slices the padding off again. */
  readonly run = async (rows: BatchRow[]): Promise<RowOutputs[]> => {
    const batch = rows.length;
    const length = Math.max(...rows.map((row) => row.ids.length));
    const ids = new BigInt64Array(batch * length).fill(BigInt(this.padId));
    const mask = new BigInt64Array(batch * length);
    const types = new BigInt64Array(batch * length);
    rows.forEach((row, r) => {
      for (let t = 0; t < row.ids.length; t++) {
        ids[r * length + t] = BigInt(row.ids[t]);
        mask[r * length + t] = 1n;
        if (row.typeIds) types[r * length + t] = BigInt(row.typeIds[t]);
      }
    });
    const all: Record<string, BigInt64Array> = { input_ids: ids, attention_mask: mask, token_type_ids: types };
    const inputs = Object.fromEntries(this.inputNames.map((name) => [name, all[name]]));
    const request: RunRequest = { id: this.nextId++, dims: [batch, length], inputs, outputNames: this.outputNames };
    const outputs = await new Promise<Record<string, { data: Float32Array; dims: number[] }>>((resolve, reject) => {
      this.pending.set(request.id, { resolve, reject });
      this.worker.postMessage(
        request,
        Object.values(inputs).map((array) => array.buffer as ArrayBuffer),
      );
    });
    return rows.map((row, r) => {
      const sliced: RowOutputs = {};
      for (const name of this.outputNames) {
        const data = outputs[name].data;
        const perRow = data.length / batch;
        const kept = this.tokenLevel ? (perRow / length) * row.ids.length : perRow;
        sliced[name] = data.subarray(r * perRow, r * perRow + kept);
      }
      return sliced;
    });
  };

  async release(): Promise<void> {
    const exited = new Promise((resolve) => this.worker.once('exit', resolve));
    this.worker.postMessage('release');
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
    await this.worker.terminate();
  }

  private failAll(error: Error): void {
    for (const waiter of this.pending.values()) waiter.reject(error);
    this.pending.clear();
  }
}
