// Plain fetch rather than @huggingface/hub: its downloadFile first probes each file with a `Range: bytes=0-0` request
// that must answer with ETag/Content-Range (or xet headers) and hands back a Blob rather than a stream we can write to
// `<name>.part` with progress, so for three kinds of GET it would add a dependency without removing any of our code.
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';

export interface HubOptions {
  /** e.g. 'https://huggingface.co' or process.env.HF_ENDPOINT (the caller passes it; env is not read here). */
  endpoint: string;
  /** HF_TOKEN; sent as `Authorization: Bearer`. */
  token?: string;
  /** Branch, tag or commit; the caller defaults it to 'main'. */
  revision: string;
  /** Files land in `<cacheDir>/<owner>--<name>/<revision>/`. */
  cacheDir: string;
  onProgress?: (event: { file: string; receivedBytes: number; totalBytes?: number; done: boolean }) => void;
  /** For tests; defaults to the global fetch. */
  fetchImpl?: typeof fetch;
  /** Longest wait for response headers, and for the next chunk of a body. Default 30 000 ms. */
  timeoutMs?: number;
}

/** A problem talking to the Hub or with what it serves; the message is one line. */
export class HubError extends Error {
  override name = 'HubError';
}

const DEFAULT_TIMEOUT_MS = 30_000;
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'vocab.txt', 'special_tokens_map.json'];
/** In the order Hugging Face (and findWeightFiles in load-checkpoint.ts) prefers them. */
const WEIGHT_CANDIDATES = [
  { file: 'model.safetensors', sharded: false },
  { file: 'model.safetensors.index.json', sharded: true },
  { file: 'pytorch_model.bin', sharded: false },
  { file: 'pytorch_model.bin.index.json', sharded: true },
] as const;

interface Context {
  id: string;
  endpoint: string;
  revision: string;
  token?: string;
  dir: string;
  fetch: typeof fetch;
  timeoutMs: number;
  onProgress?: HubOptions['onProgress'];
}

/** Listed files and their sizes (undefined when the listing does not say). */
type Listing = Map<string, number | undefined>;

/**
 * Downloads what the converter needs from `modelId` at `options.revision`: config.json, the tokenizer files that
 * exist and one set of weights. Files already complete in the cache are not fetched again. Returns the local dir.
 */
export async function downloadCheckpoint(modelId: string, options: HubOptions): Promise<string> {
  validateModelId(modelId);
  validateRevision(options.revision);
  const endpoint = normalizeEndpoint(options.endpoint);
  const dir = resolve(options.cacheDir, modelId.replace('/', '--'), options.revision.replaceAll('/', '--'));
  const ctx: Context = {
    id: modelId,
    endpoint,
    revision: options.revision,
    token: options.token || undefined,
    dir,
    fetch: options.fetchImpl ?? globalThis.fetch,
    timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    onProgress: options.onProgress,
  };

  const listing = await listFiles(ctx);
  if (!listing.has('config.json')) {
    throw new HubError(`${modelId} has no config.json at revision ${ctx.revision}; is it a transformers model?`);
  }
  const weights = WEIGHT_CANDIDATES.find((candidate) => listing.has(candidate.file));
  if (!weights) {
    const onnx = listing.has('onnx/model.onnx')
      ? '; it has onnx/model.onnx, but the converter needs the PyTorch checkpoint'
      : '';
    throw new HubError(
      `no supported weights found in ${modelId} at revision ${ctx.revision} (looked for ${WEIGHT_CANDIDATES.map((c) => c.file).join(', ')})${onnx}`,
    );
  }

  await mkdir(dir, { recursive: true });
  for (const file of ['config.json', ...TOKENIZER_FILES.filter((name) => listing.has(name))]) {
    await fetchFile(ctx, file, listing.get(file));
  }
  await fetchFile(ctx, weights.file, listing.get(weights.file));
  if (weights.sharded) {
    for (const shard of await shardsOf(ctx, weights.file, listing)) await fetchFile(ctx, shard, listing.get(shard));
  }
  // A weight file of higher priority left from an earlier state of this revision would be loaded instead of ours.
  for (const candidate of WEIGHT_CANDIDATES) {
    if (candidate.file === weights.file) break;
    await rm(join(dir, candidate.file), { force: true });
  }
  return dir;
}

// ---- validation -------------------------------------------------------------------------------------------------

function validateModelId(id: string): void {
  const part = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,95}$/;
  const parts = typeof id === 'string' ? id.split('/') : [];
  const ok =
    parts.length >= 1 &&
    parts.length <= 2 &&
    parts.every((p) => part.test(p) && !p.includes('..') && !p.includes('--') && !p.endsWith('.'));
  if (!ok) throw new HubError(`invalid model id ${JSON.stringify(id)}: expected "owner/name" or "name"`);
}

function validateRevision(revision: string): void {
  const ok =
    typeof revision === 'string' &&
    revision.length > 0 &&
    !revision.includes('..') &&
    !revision.startsWith('/') &&
    !revision.endsWith('/') &&
    !/[\\\x00-\x1f\x7f]/.test(revision);
  if (!ok) throw new HubError(`invalid revision ${JSON.stringify(revision)}`);
}

function normalizeEndpoint(endpoint: string): string {
  let url: URL | undefined;
  try {
    url = new URL(endpoint);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new HubError(`invalid Hub endpoint ${JSON.stringify(endpoint)}: expected an http(s) URL`);
  }
  return endpoint.replace(/\/+$/, '');
}

// ---- listing and index --------------------------------------------------------------------------------------------

async function listFiles(ctx: Context): Promise<Listing> {
  const url = `${ctx.endpoint}/api/models/${ctx.id}/revision/${encodeURIComponent(ctx.revision)}?blobs=true`;
  const { response, deadline } = await request(ctx, url, 'application/json');
  let body: unknown;
  try {
    if (!response.ok) throw statusError(ctx, response, null);
    body = await response.json();
  } catch (error) {
    if (error instanceof HubError) throw error;
    throw new HubError(`unexpected listing from ${ctx.endpoint} for ${ctx.id}: ${describe(error, deadline)}`);
  } finally {
    deadline.clear();
  }
  const siblings = (body as { siblings?: unknown } | null)?.siblings;
  if (!Array.isArray(siblings)) {
    throw new HubError(`unexpected listing from ${ctx.endpoint} for ${ctx.id}: no "siblings" array`);
  }
  const listing: Listing = new Map();
  for (const sibling of siblings as Array<{ rfilename?: unknown; size?: unknown; lfs?: { size?: unknown } }>) {
    if (typeof sibling?.rfilename !== 'string') continue;
    const size = sibling.size ?? sibling.lfs?.size;
    listing.set(
      sibling.rfilename,
      typeof size === 'number' && Number.isSafeInteger(size) && size >= 0 ? size : undefined,
    );
  }
  return listing;
}

/** The distinct shard files named in a downloaded `*.index.json`'s weight_map. */
async function shardsOf(ctx: Context, indexFile: string, listing: Listing): Promise<string[]> {
  const bad = (problem: string) => new HubError(`${indexFile} in ${ctx.id} is not a valid weights index: ${problem}`);
  let index: { weight_map?: unknown };
  try {
    index = JSON.parse(await readFile(join(ctx.dir, indexFile), 'utf8'));
  } catch (error) {
    throw bad(oneLine((error as Error).message));
  }
  const map = index?.weight_map;
  if (!map || typeof map !== 'object' || Array.isArray(map)) throw bad('no "weight_map" object');
  const shards = [...new Set(Object.values(map as Record<string, unknown>))];
  if (shards.length === 0) throw bad('"weight_map" is empty');
  for (const shard of shards) {
    if (
      typeof shard !== 'string' ||
      !/^[^/\\]+$/.test(shard) ||
      shard === '.' ||
      shard === '..' ||
      shard.endsWith('.part')
    ) {
      throw bad(`invalid shard name ${JSON.stringify(shard)}`);
    }
    if (!listing.has(shard))
      throw new HubError(`${indexFile} in ${ctx.id} lists shard ${shard}, which the repo does not have`);
  }
  return shards as string[];
}

// ---- downloads ----------------------------------------------------------------------------------------------------

/** Downloads one file to `<name>.part`, then renames it; skips it when the cache already has it complete. */
async function fetchFile(ctx: Context, file: string, listedSize: number | undefined): Promise<void> {
  const target = join(ctx.dir, file);
  const part = `${target}.part`;
  if (await isCached(target, part, listedSize)) return;

  const path = file.split('/').map(encodeURIComponent).join('/');
  const url = `${ctx.endpoint}/${ctx.id}/resolve/${encodeURIComponent(ctx.revision)}/${path}`;
  const { response, deadline } = await request(ctx, url, '*/*');
  let received = 0;
  let totalBytes: number | undefined;
  try {
    if (!response.ok) throw statusError(ctx, response, file);
    if (!response.body) throw new HubError(`the Hub at ${ctx.endpoint} sent no body for ${file} of ${ctx.id}`);
    // fetch undoes a Content-Encoding itself, after which Content-Length no longer describes what we read.
    const encoding = response.headers.get('content-encoding');
    const contentLength =
      !encoding || encoding === 'identity' ? parseLength(response.headers.get('content-length')) : undefined;
    totalBytes = contentLength ?? listedSize;
    ctx.onProgress?.({ file, receivedBytes: 0, totalBytes, done: false });

    const out = await open(part, 'w');
    const reader = response.body.getReader();
    try {
      for (;;) {
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await reader.read();
        } catch (error) {
          throw new HubError(
            `download of ${file} from ${ctx.id} was interrupted after ${received}${totalBytes === undefined ? '' : ` of ${totalBytes}`} bytes (${describe(error, deadline)})`,
          );
        }
        if (chunk.done) break;
        deadline.arm();
        await out.write(chunk.value);
        received += chunk.value.byteLength;
        ctx.onProgress?.({ file, receivedBytes: received, totalBytes, done: false });
      }
    } catch (error) {
      await reader.cancel().catch(() => {});
      throw error;
    } finally {
      await out.close();
    }
    if (contentLength !== undefined && received !== contentLength) {
      throw new HubError(
        `download of ${file} from ${ctx.id} was cut short: received ${received} of ${contentLength} bytes`,
      );
    }
    if (listedSize !== undefined && received !== listedSize) {
      throw new HubError(`download of ${file} from ${ctx.id} has ${received} bytes but the Hub lists ${listedSize}`);
    }
    await rename(part, target);
  } catch (error) {
    await rm(part, { force: true });
    if (error instanceof HubError) throw error;
    throw new HubError(`cannot save ${file} of ${ctx.id} to ${ctx.dir}: ${oneLine((error as Error).message)}`);
  } finally {
    deadline.clear();
  }
  ctx.onProgress?.({ file, receivedBytes: received, totalBytes, done: true });
}

async function isCached(target: string, part: string, listedSize: number | undefined): Promise<boolean> {
  const info = await stat(target).catch(() => undefined);
  if (!info?.isFile()) return false;
  return listedSize !== undefined ? info.size === listedSize : !existsSync(part);
}

function parseLength(header: string | null): number | undefined {
  if (header === null || !/^\d+$/.test(header.trim())) return undefined;
  return Number(header.trim());
}

// ---- HTTP -------------------------------------------------------------------------------------------------------

/** Aborts the request when no headers, or no next body chunk, arrive within the timeout. */
class Deadline {
  readonly controller = new AbortController();
  timedOut = false;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(readonly ms: number) {
    this.arm();
  }

  arm(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.controller.abort();
    }, this.ms);
  }

  clear(): void {
    clearTimeout(this.timer);
  }
}

/** GET with the token and the timeout; redirects are followed. Any failure before the headers is "cannot reach". */
async function request(ctx: Context, url: string, accept: string): Promise<{ response: Response; deadline: Deadline }> {
  const deadline = new Deadline(ctx.timeoutMs);
  const headers: Record<string, string> = { Accept: accept, 'Accept-Encoding': 'identity' };
  if (ctx.token) headers.Authorization = `Bearer ${ctx.token}`;
  try {
    const response = await ctx.fetch(url, { headers, redirect: 'follow', signal: deadline.controller.signal });
    deadline.arm();
    return { response, deadline };
  } catch (error) {
    deadline.clear();
    throw new HubError(`cannot reach the Hugging Face Hub at ${ctx.endpoint} (${describe(error, deadline)})`);
  }
}

/** `file` null means the listing request. */
function statusError(ctx: Context, response: Response, file: string | null): HubError {
  const code = response.headers.get('x-error-code');
  if (response.status === 401 || response.status === 403) {
    // The real Hub answers 401 RepoNotFound to anonymous requests for repos that do not exist (or that it hides).
    if (file === null && code === 'RepoNotFound' && !ctx.token) {
      return new HubError(`model ${ctx.id} not found at ${ctx.endpoint} (if it is private or gated, set HF_TOKEN)`);
    }
    return new HubError(
      ctx.token
        ? `access denied to ${ctx.id} (gated or private?); the HF_TOKEN given has no access to it`
        : `access denied to ${ctx.id} (gated or private?); set HF_TOKEN`,
    );
  }
  if (response.status === 404) {
    if (file !== null) return new HubError(`${file} not found in ${ctx.id} at revision ${ctx.revision}`);
    if (code === 'RevisionNotFound')
      return new HubError(`revision ${ctx.revision} not found in ${ctx.id} at ${ctx.endpoint}`);
    return new HubError(`model ${ctx.id} not found at ${ctx.endpoint}`);
  }
  const what = file === null ? `the listing of ${ctx.id}` : `${file} of ${ctx.id}`;
  return new HubError(
    `the Hub at ${ctx.endpoint} answered ${response.status}${response.statusText ? ` ${response.statusText}` : ''} for ${what}`,
  );
}

/** A short cause: "connect ECONNREFUSED 127.0.0.1:9", "getaddrinfo ENOTFOUND host", "no response within 30 s". */
function describe(error: unknown, deadline: Deadline): string {
  if (deadline.timedOut) return `no response within ${deadline.ms / 1000} s`;
  let cause: unknown = error;
  // fetch wraps network errors as TypeError('fetch failed') with the real error as `cause`.
  while (
    cause instanceof Error &&
    cause.cause !== undefined &&
    (cause.message === 'fetch failed' || cause.message === 'terminated')
  ) {
    cause = cause.cause;
  }
  if (cause instanceof AggregateError && cause.errors.length > 0 && !(cause as { code?: unknown }).code)
    cause = cause.errors[0];
  if (!(cause instanceof Error)) return oneLine(String(cause));
  const code = (cause as { code?: unknown }).code;
  const message = cause.message || cause.name;
  return oneLine(typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message);
}

function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}
