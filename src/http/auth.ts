import { createHash, timingSafeEqual } from 'node:crypto';

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest();

/** Routes anyone may call: the probes (kubelet, KServe) and the API description. */
const openRoutes = new Set(['/healthz', '/readyz', '/v2/health/live', '/v2/health/ready', '/openapi.json']);
const isOpenRoute = (route: string | undefined, metricsOpen: boolean) =>
  route !== undefined &&
  (openRoutes.has(route) || route === '/docs' || route.startsWith('/docs/') || (metricsOpen && route === '/metrics'));

export const wwwAuthenticate = 'Bearer realm="sparse-bert-serve"';

/**
 * `Authorization: Bearer <key>` against the configured keys. Keys and the presented token are compared as SHA-256
 * digests with crypto.timingSafeEqual, against every key without stopping at a match: neither the time taken nor the
 * answer tells which part (scheme, key, length) was wrong.
 */
export class ApiKeys {
  private readonly digests: Buffer[];

  constructor(
    keys: string[],
    private readonly metricsAuth: boolean,
  ) {
    this.digests = keys.map(sha256);
  }

  get enabled(): boolean {
    return this.digests.length > 0;
  }

  /** Whether a request to `route` (the matched route pattern, undefined when none matched) must carry a key. */
  required(route: string | undefined): boolean {
    return this.enabled && !isOpenRoute(route, !this.metricsAuth);
  }

  accepts(authorization: string | undefined): boolean {
    const match = /^Bearer[ \t]+([\x21-\x7e]+)[ \t]*$/i.exec(authorization ?? '');
    // Hash something even when the header is missing or malformed, so those cost what a wrong key costs.
    const presented = sha256(match ? match[1] : '');
    let accepted = false;
    for (const digest of this.digests) accepted = timingSafeEqual(digest, presented) || accepted;
    return accepted && match !== null;
  }
}
