import type { FastifyReply } from 'fastify';

export class ClientGoneError extends Error {
  constructor() {
    super('the client closed the connection');
    this.name = 'ClientGoneError';
  }
}

/** Responses whose client disconnected before the answer was written; metrics count them as 499. */
const abandoned = new WeakSet<object>();

export function clientLeft(reply: FastifyReply): boolean {
  return abandoned.has(reply.raw);
}

/** Aborts when the per-request deadline passes (TimeoutError) or the client disconnects before the answer. */
export function requestSignal(reply: FastifyReply, timeoutMs: number): AbortSignal {
  const gone = new AbortController();
  reply.raw.once('close', () => {
    if (reply.raw.writableEnded) return;
    abandoned.add(reply.raw);
    gone.abort(new ClientGoneError());
  });
  return AbortSignal.any([gone.signal, AbortSignal.timeout(timeoutMs)]);
}
