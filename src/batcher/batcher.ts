import { RequestError } from '../tasks/errors.js';

/**
 * One queue per model. Forms batches from waiting rows up to a row count and a padded-token budget (longest row x
 * rows), waiting at most `maxBatchDelayMs` for more work when the queue is short, and grouping rows of similar length
 * so padding stays small. Knows nothing about tasks: a row is token ids, a result is whatever the runner returns.
 */
export interface BatchRow {
  ids: number[];
  typeIds?: number[];
}

export type BatchRunner<Result> = (rows: BatchRow[]) => Promise<Result[]>;

export interface BatcherLimits {
  maxBatchSize: number;
  maxBatchTokens: number;
  maxBatchDelayMs: number;
  maxQueueRows: number;
  /**
   * Padding allowed in a batch, as a fraction of its real tokens. On a 2-core CPU onnxruntime already keeps both
   * cores busy at batch 1 for long rows, so a padded token is pure waste: rows join a batch only while it stays lean.
   */
  maxPaddingRatio: number;
  /**
   * The runner takes ragged batches (the engine: concatenated tokens, no padding): the token budget counts real
   * tokens, the padding cap does not apply, and rows are taken oldest first.
   */
  ragged?: boolean;
}

/** Where the batcher reports what only it knows; the server turns these into metrics. */
export interface BatcherObserver {
  batchRan?(rows: number, paddedTokens: number, seconds: number): void;
  rowWaited?(seconds: number): void;
  rowsDropped?(reason: 'deadline' | 'client_gone', rows: number): void;
  depthChanged?(rows: number): void;
}

/**
 * A request whose rows can never fit the queue, however long it waits: a client mistake (422 naming the limit), never
 * a 429.
 */
export class QueueCapacityError extends RequestError {
  constructor(
    readonly rows: number,
    readonly maxQueueRows: number,
  ) {
    super(
      422,
      `the request needs ${rows} inference rows (inputs, or QA windows), more than the model queue holds ` +
        `(--max-queue ${maxQueueRows}); send fewer or shorter inputs`,
      'too_long',
    );
    this.name = 'QueueCapacityError';
  }
}

/** The queue has no room now, but would have for this request once it drains: 429, retry later. */
export class QueueFullError extends Error {
  constructor(readonly retryAfterSeconds: number) {
    super('the model queue is full');
    this.name = 'QueueFullError';
  }
}

interface Pending<Result> {
  row: BatchRow;
  enqueuedAt: number;
  request: Request<Result>;
  index: number;
}

interface Request<Result> {
  results: Result[];
  remaining: number;
  settled: boolean;
  resolve(results: Result[]): void;
  reject(error: unknown): void;
}

/** How far past the oldest row the batcher looks for rows of similar length. */
const lookaheadFactor = 4;

export class Batcher<Result> {
  private queue: Pending<Result>[] = [];
  private readonly idleRunners: BatchRunner<Result>[];
  private running = 0;
  private timer: NodeJS.Timeout | undefined;
  private draining = false;
  private drainWaiters: (() => void)[] = [];
  /** Recent seconds per padded token, for a Retry-After estimate. */
  private secondsPerToken = 0;

  constructor(
    private readonly limits: BatcherLimits,
    runners: BatchRunner<Result>[],
    private readonly observer: BatcherObserver = {},
  ) {
    this.idleRunners = [...runners];
  }

  get depth(): number {
    return this.queue.length;
  }

  /**
   * Queues every row of one request together — all of them or none: a refused request leaves nothing behind. Resolves
   * with one result per row, in order. More rows than the queue can ever hold: `QueueCapacityError`; no room now:
   * `QueueFullError`. Aborting the signal (deadline, client gone) removes the request's waiting rows at once and
   * rejects with the signal's reason. No rows: resolves at once with no results (nothing is queued, so no batch
   * would ever settle it).
   */
  submit(rows: BatchRow[], signal?: AbortSignal): Promise<Result[]> {
    if (rows.length > this.limits.maxQueueRows) {
      return Promise.reject(new QueueCapacityError(rows.length, this.limits.maxQueueRows));
    }
    if (this.queue.length + rows.length > this.limits.maxQueueRows) {
      return Promise.reject(new QueueFullError(this.retryAfterSeconds()));
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (rows.length === 0) return Promise.resolve([]);
    return new Promise<Result[]>((resolve, reject) => {
      const request: Request<Result> = {
        results: new Array(rows.length),
        remaining: rows.length,
        settled: false,
        resolve,
        reject,
      };
      const now = performance.now();
      rows.forEach((row, index) => this.queue.push({ row, enqueuedAt: now, request, index }));
      this.observer.depthChanged?.(this.queue.length);
      if (signal) {
        const onAbort = () => this.abandon(request, signal.reason);
        signal.addEventListener('abort', onAbort, { once: true });
        const settle = request.resolve;
        const fail = request.reject;
        request.resolve = (results) => (signal.removeEventListener('abort', onAbort), settle(results));
        request.reject = (error) => (signal.removeEventListener('abort', onAbort), fail(error));
      }
      this.schedule();
    });
  }

  /**
   * Runs queued work without waiting for more; resolves once every queued and running row has finished. Work
   * submitted meanwhile is still taken: the server stops new requests at its door, not here, so a request
   * accepted before shutdown but still tokenizing is answered too.
   */
  drain(): Promise<void> {
    this.draining = true;
    this.schedule();
    if (this.queue.length === 0 && this.running === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private abandon(request: Request<Result>, reason: unknown): void {
    if (request.settled) return;
    const before = this.queue.length;
    this.queue = this.queue.filter((pending) => pending.request !== request);
    const dropped = before - this.queue.length;
    if (dropped) {
      const isDeadline = (reason as { name?: string })?.name === 'TimeoutError';
      this.observer.rowsDropped?.(isDeadline ? 'deadline' : 'client_gone', dropped);
      this.observer.depthChanged?.(this.queue.length);
    }
    request.settled = true;
    request.reject(reason);
    this.checkDrained();
  }

  private retryAfterSeconds(): number {
    const queuedTokens = this.queue.reduce((sum, pending) => sum + pending.row.ids.length, 0);
    return Math.max(1, Math.ceil(queuedTokens * this.secondsPerToken));
  }

  private schedule(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    while (this.idleRunners.length && this.queue.length) {
      const waitedMs = performance.now() - this.queue[0].enqueuedAt;
      const full =
        this.queue.length >= this.limits.maxBatchSize || this.paddedTokensOfAll() >= this.limits.maxBatchTokens;
      if (!full && !this.draining && waitedMs < this.limits.maxBatchDelayMs) {
        this.timer = setTimeout(() => this.schedule(), this.limits.maxBatchDelayMs - waitedMs);
        return;
      }
      this.dispatch(this.idleRunners.pop()!, this.formBatch());
    }
  }

  private paddedTokensOfAll(): number {
    if (this.limits.ragged) return this.queue.reduce((sum, pending) => sum + pending.row.ids.length, 0);
    let longest = 0;
    for (const pending of this.queue) longest = Math.max(longest, pending.row.ids.length);
    return longest * this.queue.length;
  }

  /** The oldest row always goes; the rest are the nearest in length among the next few, within the budget. */
  private formBatch(): Pending<Result>[] {
    if (this.limits.ragged) return this.formRaggedBatch();
    const [first, ...rest] = this.queue;
    const lookahead = rest.slice(0, this.limits.maxBatchSize * lookaheadFactor);
    const firstLength = first.row.ids.length;
    lookahead.sort(
      (a, b) =>
        Math.abs(a.row.ids.length - firstLength) - Math.abs(b.row.ids.length - firstLength) ||
        a.enqueuedAt - b.enqueuedAt,
    );
    const chosen = [first];
    let longest = firstLength;
    let realTokens = firstLength;
    for (const candidate of lookahead) {
      if (chosen.length >= this.limits.maxBatchSize) break;
      const length = candidate.row.ids.length;
      const padded = Math.max(longest, length) * (chosen.length + 1);
      if (padded > this.limits.maxBatchTokens || padded > (realTokens + length) * (1 + this.limits.maxPaddingRatio))
        continue;
      chosen.push(candidate);
      longest = Math.max(longest, length);
      realTokens += length;
    }
    const taken = new Set(chosen);
    this.queue = this.queue.filter((pending) => !taken.has(pending));
    this.observer.depthChanged?.(this.queue.length);
    return chosen;
  }

  /** Oldest first up to the row and real-token budgets; the oldest row always goes, however long. */
  private formRaggedBatch(): Pending<Result>[] {
    let tokens = 0;
    let taken = 0;
    for (const pending of this.queue) {
      if (taken >= this.limits.maxBatchSize) break;
      const length = pending.row.ids.length;
      if (taken > 0 && tokens + length > this.limits.maxBatchTokens) break;
      tokens += length;
      taken++;
    }
    const chosen = this.queue.splice(0, taken);
    this.observer.depthChanged?.(this.queue.length);
    return chosen;
  }

  private async dispatch(runner: BatchRunner<Result>, batch: Pending<Result>[]): Promise<void> {
    this.running++;
    const started = performance.now();
    for (const pending of batch) this.observer.rowWaited?.((started - pending.enqueuedAt) / 1000);
    const paddedTokens = this.limits.ragged
      ? batch.reduce((sum, pending) => sum + pending.row.ids.length, 0)
      : Math.max(...batch.map((pending) => pending.row.ids.length)) * batch.length;
    try {
      const results = await runner(batch.map((pending) => pending.row));
      const seconds = (performance.now() - started) / 1000;
      this.secondsPerToken = seconds / paddedTokens;
      this.observer.batchRan?.(batch.length, paddedTokens, seconds);
      batch.forEach((pending, i) => this.deliver(pending, results[i]));
    } catch (error) {
      for (const pending of batch) {
        if (pending.request.settled) continue;
        pending.request.settled = true;
        pending.request.reject(error);
      }
    } finally {
      this.running--;
      this.idleRunners.push(runner);
      this.schedule();
      this.checkDrained();
    }
  }

  private deliver(pending: Pending<Result>, result: Result): void {
    const request = pending.request;
    if (request.settled) return;
    request.results[pending.index] = result;
    if (--request.remaining === 0) {
      request.settled = true;
      request.resolve(request.results);
    }
  }

  private checkDrained(): void {
    if (this.draining && this.queue.length === 0 && this.running === 0) {
      for (const resolve of this.drainWaiters.splice(0)) resolve();
    }
  }
}
