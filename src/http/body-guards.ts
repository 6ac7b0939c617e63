import type { FastifyInstance } from 'fastify';
import { RequestError } from '../tasks/errors.js';

/**
 * Refuses, before the body is read, request bodies the JSON parser would misread: any `Content-Encoding` but
 * `identity` (a gzip body would otherwise be parsed as text; it is not decompressed, so no size cap is needed) and a
 * `charset` other than UTF-8 (JSON is UTF-8, RFC 8259; `utf-16` would be read as UTF-8). Both are 415 naming the
 * header. Registered inside each route plugin that takes a body (hooks are scoped to their plugin).
 */
export function refuseUnreadableBodies(app: FastifyInstance): void {
  app.addHook('preParsing', async (request) => {
    const encoding = request.headers['content-encoding'];
    if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity' && encoding.trim() !== '') {
      throw new RequestError(
        415,
        `Content-Encoding "${encoding.slice(0, 64)}" is not supported: send the JSON body uncompressed`,
      );
    }
    const type = request.headers['content-type'];
    const charset = type === undefined ? undefined : /;\s*charset\s*=\s*"?([^";\s]*)"?/i.exec(type)?.[1];
    if (charset !== undefined && !/^utf-?8$/i.test(charset)) {
      throw new RequestError(
        415,
        `Content-Type charset "${charset.slice(0, 64)}" is not supported: the JSON body must be UTF-8`,
      );
    }
  });
}
