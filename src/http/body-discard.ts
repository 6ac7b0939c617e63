import type { IncomingMessage } from 'node:http';

/**
 * Reads and drops what is left of a request body the server answers early (413 by Content-Length, 401, 503 while
 * draining...). Answering and closing while the client is still uploading makes the kernel reset the connection,
 * and most clients then report EPIPE/ECONNRESET instead of the answer. Resolves true once the body has ended, false
 * if more than `maxBytes` arrived first (the caller then closes the connection: the discard is bounded) or the
 * connection went away. Time is bounded by the server's request timeout (--body-timeout-ms).
 */
export function discardBody(request: IncomingMessage, maxBytes: number): Promise<boolean> {
  if (request.complete || request.readableEnded) return Promise.resolve(true);
  return new Promise((resolve) => {
    let received = 0;
    const finish = (drained: boolean) => {
      request.off('data', onData);
      request.off('end', onEnd);
      request.off('close', onClose);
      request.off('error', onClose);
      if (!drained) request.pause();
      resolve(drained);
    };
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received > maxBytes) finish(false);
    };
    const onEnd = () => finish(true);
    const onClose = () => finish(request.complete);
    request.on('data', onData);
    request.once('end', onEnd);
    request.once('close', onClose);
    request.once('error', onClose);
    request.resume();
  });
}
