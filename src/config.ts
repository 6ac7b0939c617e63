import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { UsageError, numberFlag } from './commands/flags.js';
import type { KernelPath, LinearKernel } from './runtime/engine-addon.js';

export type Precision = 'int8' | 'fp32';

/**
 * Where int8 models run: `auto` picks the sparse engine where the addon loaded and the CPU has a VNNI path, else
 * onnxruntime; `both` serves the engine's `<folder>-int8` and onnxruntime's `<folder>-int8-ort` side by side.
 */
export type BackendChoice = 'auto' | 'engine' | 'onnxruntime' | 'both';

export interface RuntimeConfig {
  /** Threads per session (onnxruntime intra-op) or per engine instance. */
  threads: number;
  /** Sessions (or engine instances) per model; each runs one batch at a time. */
  sessionsPerModel: number;
  /** Let ORT's worker threads spin between ops (lower latency alone, steals cores from other sessions). */
  allowSpinning: boolean;
  backend: BackendChoice;
  engine: {
    /** Force a kernel path; default the best the CPU has. */
    isa?: KernelPath;
    /** fp32 attention instead of int8 (default int8 where the CPU has AVX512-VNNI). */
    attention?: 'int8' | 'fp32';
    /** Force one tile GEMM for every linear (default: each linear's fastest, from its measured densities). */
    linearKernel?: LinearKernel;
    /** Where the addon is (default engine/build/Release/sbs_engine.node). */
    addonPath?: string;
  };
}

const kernelPaths: KernelPath[] = ['scalar', 'avx2', 'avxvnni', 'avx512vnni'];
const linearKernels: LinearKernel[] = ['dense', 'sparse-quads', 'sparse-out-blocks'];

/** --backend / BACKEND and the engine options, shared by serve, eval and loadtest. */
export function parseRuntimeBackend(
  backend: string | undefined,
  isa: string | undefined,
  env: NodeJS.ProcessEnv,
  usage: string,
): Pick<RuntimeConfig, 'backend' | 'engine'> {
  const raw = (backend ?? env.BACKEND ?? 'auto').replace(/\s+/g, '');
  const choice = raw === 'engine,onnxruntime' || raw === 'onnxruntime,engine' ? 'both' : raw;
  if (!['auto', 'engine', 'onnxruntime', 'both'].includes(choice))
    throw new UsageError(`--backend must be auto, engine, onnxruntime or engine,onnxruntime, got "${raw}"`, usage);
  const kernel = isa ?? env.ENGINE_ISA;
  if (kernel !== undefined && !kernelPaths.includes(kernel as KernelPath))
    throw new UsageError(`--engine-isa must be one of ${kernelPaths.join(', ')}, got "${kernel}"`, usage);
  const attention = env.ENGINE_ATTENTION;
  if (attention !== undefined && attention !== 'int8' && attention !== 'fp32')
    throw new UsageError(`ENGINE_ATTENTION must be int8 or fp32, got "${attention}"`, usage);
  const linearKernel = env.ENGINE_LINEAR_KERNEL;
  if (linearKernel !== undefined && !linearKernels.includes(linearKernel as LinearKernel))
    throw new UsageError(
      `ENGINE_LINEAR_KERNEL must be one of ${linearKernels.join(', ')}, got "${linearKernel}"`,
      usage,
    );
  return {
    backend: choice as BackendChoice,
    engine: {
      ...(kernel ? { isa: kernel as KernelPath } : {}),
      ...(linearKernel ? { linearKernel: linearKernel as LinearKernel } : {}),
      ...(attention ? { attention } : {}),
      ...(env.SBS_ENGINE_ADDON ? { addonPath: env.SBS_ENGINE_ADDON } : {}),
    },
  };
}

/** Everything the server reads from flags and the environment, resolved once and passed down. */
export interface ServerConfig {
  host: string;
  port: number;
  modelsDir: string;
  /** Model folders to load (default: every folder in modelsDir). */
  modelFolders?: string[];
  /** Which artifacts of each converted model to load; each becomes its own model, `<name>-int8` / `<name>-fp32`. */
  precisions: Precision[];
  runtime: RuntimeConfig;
  batching: {
    maxBatchSize: number;
    /** Padded tokens per batch: longest row x rows (real tokens for the engine, which does not pad). */
    maxBatchTokens: number;
    maxBatchDelayMs: number;
    /** Padded tokens allowed in a batch, as a fraction of its real tokens. */
    maxPaddingRatio: number;
    /** Rows waiting per model before new work gets 429. */
    maxQueueRows: number;
  };
  limits: {
    bodyLimitBytes: number;
    requestTimeoutMs: number;
    /** Longest QA context, in windows, one request may produce. */
    maxQaWindows: number;
    maxBatchInputs: number;
    /** The request head must have arrived within this many ms of its first byte (else the socket is closed). */
    headersTimeoutMs: number;
    /** The whole request, head and body, must have arrived within this many ms of its first byte (408, closed). */
    bodyTimeoutMs: number;
    /** An idle keep-alive connection is closed after this many ms. */
    keepAliveTimeoutMs: number;
    /**
     * After an early answer (413, 401, 503...) the rest of the request body is read and thrown away, so the client
     * finishes its upload and reads the answer; beyond this many bytes the connection is closed instead.
     */
    maxDiscardBytes: number;
  };
  auth: {
    /** Accepted `Authorization: Bearer` keys; empty = no authentication. Several keys allow rotation. */
    apiKeys: string[];
    /** /metrics needs a key too (default: open, for Prometheus). */
    metricsAuth: boolean;
  };
  shutdownTimeoutMs: number;
  firstRun: {
    demo: boolean;
    defaultModelId: string;
    hub: { endpoint: string; token?: string; revision: string; cacheDir: string };
  };
  logLevel: string;
}

export const serveUsage = `sbs serve [options]      (npm start)

Serves every converted model in the models folder: POST /qa, /classify, /ner, the Open Inference Protocol v2 routes,
GET /models, /healthz, /readyz, /metrics, /openapi.json (OpenAPI 3.1) and /docs (Swagger UI). Each option also reads
an environment variable (in brackets).
  --host <addr>                 [HOST] default 127.0.0.1 (0.0.0.0 in the container)
  --port <n>                    [PORT] default 8080
  --models-dir <dir>            [MODELS_DIR] default ./models
  --models a,b                  [MODELS] only these model folders (default: all)
  --precisions int8,fp32        [PRECISIONS] artifacts to serve side by side (default int8,fp32)
  --backend <b>                 [BACKEND] where int8 models run: auto (default: the sparse engine where it built and
                                the CPU has VNNI, else onnxruntime), engine, onnxruntime, or engine,onnxruntime
                                (both side by side: <folder>-int8 on the engine, <folder>-int8-ort on onnxruntime)
  --engine-isa <path>           [ENGINE_ISA] force the engine's kernels: avx512vnni, avxvnni, avx2, scalar
  --threads <n>                 [THREADS] threads per session / engine instance (default 2)
  --sessions <n>                [SESSIONS_PER_MODEL] sessions (engine instances) per model (default 1)
  --spinning                    [ORT_ALLOW_SPINNING=1] let ORT threads spin between ops
  --max-batch-size <n>          [MAX_BATCH_SIZE] rows per batch (default 16)
  --max-batch-tokens <n>        [MAX_BATCH_TOKENS] padded tokens per batch (default 4096)
  --max-batch-delay-ms <n>      [MAX_BATCH_DELAY_MS] wait for more work when the queue is short (default 0)
  --max-padding <ratio>         [MAX_PADDING_RATIO] padding allowed per batch, share of real tokens (default 0.2)
  --max-queue <n>               [MAX_QUEUE_ROWS] waiting rows per model before 429 (default 512)
  --body-limit <bytes>          [BODY_LIMIT] default 1048576
  --timeout-ms <n>              [REQUEST_TIMEOUT_MS] per-request deadline (default 30000)
  --max-qa-windows <n>          [MAX_QA_WINDOWS] longest context, in windows (default 64)
  --headers-timeout-ms <n>      [HEADERS_TIMEOUT_MS] the request head must arrive within this (default 10000)
  --body-timeout-ms <n>         [BODY_TIMEOUT_MS] the whole request, head and body, must arrive within this of its
                                first byte, else 408 and the connection is closed (default 20000)
  --keep-alive-timeout-ms <n>   [KEEP_ALIVE_TIMEOUT_MS] idle keep-alive connections are closed after (default 5000)
  --max-discard <bytes>         [MAX_DISCARD_BYTES] after an early answer (413, 401, 503) the rest of the body is read
                                and dropped so the client gets the answer, up to this much (default 16777216)
  --api-key <k1,k2>             [API_KEY] require "Authorization: Bearer <key>"; several keys (comma-separated) allow
                                rotation. /healthz, /readyz, /v2/health/*, /openapi.json and /docs stay open
  --api-key-file <path>         [API_KEY_FILE] read the keys from a file (one per line or comma-separated), e.g. a
                                mounted secret; used together with --api-key
  --metrics-auth                [METRICS_AUTH=1] /metrics needs a key too (default: open for Prometheus)
  --shutdown-timeout-ms <n>     [SHUTDOWN_TIMEOUT_MS] drain deadline on SIGTERM (default 30000); while draining new
                                inference gets 503, /readyz 503, /healthz 200; a second SIGINT exits at once
  --demo                        [DEMO=1] no models: generate, convert and serve a small random-weight QA model
  --default-model <hub-id>      [DEFAULT_MODEL] fetched on first run when the models folder is empty
  --log-level <level>           [LOG_LEVEL] default info`;

const truthy = (value: string | undefined) => value !== undefined && /^(1|true|yes|on)$/i.test(value);

/** Keys are separated by commas or line breaks; each must be a token that fits a header (no spaces). */
function splitKeys(text: string, source: string): string[] {
  const keys = text
    .split(/[,\r\n]+/)
    .map((key) => key.trim())
    .filter(Boolean);
  for (const key of keys)
    if (!/^[\x21-\x7e]+$/.test(key))
      throw new UsageError(`${source}: an API key must be printable ASCII without spaces`, serveUsage);
  return keys;
}

/** --api-key / API_KEY and --api-key-file / API_KEY_FILE together; a key file given but holding no key is an error. */
function apiKeys(inline: string | undefined, file: string | undefined): string[] {
  const keys = inline !== undefined ? splitKeys(inline, '--api-key / API_KEY') : [];
  if (inline !== undefined && !keys.length) throw new UsageError('--api-key / API_KEY is set but empty', serveUsage);
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new UsageError(
        `--api-key-file / API_KEY_FILE: cannot read ${file}: ${(error as Error).message}`,
        serveUsage,
      );
    }
    const fromFile = splitKeys(text, `--api-key-file ${file}`);
    if (!fromFile.length) throw new UsageError(`--api-key-file ${file} holds no key`, serveUsage);
    keys.push(...fromFile);
  }
  return [...new Set(keys)];
}

export function parseServerConfig(args: string[], env: NodeJS.ProcessEnv): ServerConfig {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      'models-dir': { type: 'string' },
      models: { type: 'string' },
      precisions: { type: 'string' },
      threads: { type: 'string' },
      backend: { type: 'string' },
      'engine-isa': { type: 'string' },
      sessions: { type: 'string' },
      spinning: { type: 'boolean' },
      'max-batch-size': { type: 'string' },
      'max-batch-tokens': { type: 'string' },
      'max-batch-delay-ms': { type: 'string' },
      'max-padding': { type: 'string' },
      'max-queue': { type: 'string' },
      'body-limit': { type: 'string' },
      'timeout-ms': { type: 'string' },
      'max-qa-windows': { type: 'string' },
      'shutdown-timeout-ms': { type: 'string' },
      'headers-timeout-ms': { type: 'string' },
      'body-timeout-ms': { type: 'string' },
      'keep-alive-timeout-ms': { type: 'string' },
      'max-discard': { type: 'string' },
      'api-key': { type: 'string' },
      'api-key-file': { type: 'string' },
      'metrics-auth': { type: 'boolean' },
      demo: { type: 'boolean' },
      'default-model': { type: 'string' },
      'log-level': { type: 'string' },
    },
  });
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`, serveUsage);
  const int = (flag: string, envName: string, fallback: number, min = 1) =>
    numberFlag((values as Record<string, string | undefined>)[flag] ?? env[envName], `--${flag} / ${envName}`, {
      min,
      integer: true,
    }) ?? fallback;
  const precisions = (values.precisions ?? env.PRECISIONS ?? 'int8,fp32').split(',').map((p) => p.trim());
  if (!precisions.length || precisions.some((p) => p !== 'int8' && p !== 'fp32')) {
    throw new UsageError(`--precisions must list int8 and/or fp32, got "${precisions.join(',')}"`, serveUsage);
  }
  const headersTimeoutMs = int('headers-timeout-ms', 'HEADERS_TIMEOUT_MS', 10_000);
  const bodyTimeoutMs = int('body-timeout-ms', 'BODY_TIMEOUT_MS', 20_000);
  if (bodyTimeoutMs < headersTimeoutMs)
    throw new UsageError(
      `--body-timeout-ms (${bodyTimeoutMs}) covers the head too: it must be at least --headers-timeout-ms (${headersTimeoutMs})`,
      serveUsage,
    );
  return {
    host: values.host ?? env.HOST ?? '127.0.0.1',
    port: int('port', 'PORT', 8080, 0),
    modelsDir: values['models-dir'] ?? env.MODELS_DIR ?? 'models',
    modelFolders: (values.models ?? env.MODELS)
      ?.split(',')
      .map((name) => name.trim())
      .filter(Boolean),
    precisions: [...new Set(precisions)] as Precision[],
    runtime: {
      threads: int('threads', 'THREADS', 2),
      sessionsPerModel: int('sessions', 'SESSIONS_PER_MODEL', 1),
      allowSpinning: values.spinning ?? truthy(env.ORT_ALLOW_SPINNING),
      ...parseRuntimeBackend(values.backend, values['engine-isa'], env, serveUsage),
    },
    batching: {
      maxBatchSize: int('max-batch-size', 'MAX_BATCH_SIZE', 16),
      maxBatchTokens: int('max-batch-tokens', 'MAX_BATCH_TOKENS', 4096),
      // Measured with BERT-Base QA on 2 cores: a 5 ms wait cost ~9% of p50 at concurrency 1 and bought nothing under load.
      maxBatchDelayMs: int('max-batch-delay-ms', 'MAX_BATCH_DELAY_MS', 0, 0),
      maxPaddingRatio:
        numberFlag(values['max-padding'] ?? env.MAX_PADDING_RATIO, '--max-padding / MAX_PADDING_RATIO', { min: 0 }) ??
        0.2,
      maxQueueRows: int('max-queue', 'MAX_QUEUE_ROWS', 512),
    },
    limits: {
      bodyLimitBytes: int('body-limit', 'BODY_LIMIT', 1024 * 1024),
      requestTimeoutMs: int('timeout-ms', 'REQUEST_TIMEOUT_MS', 30_000),
      maxQaWindows: int('max-qa-windows', 'MAX_QA_WINDOWS', 64),
      maxBatchInputs: 64,
      headersTimeoutMs,
      bodyTimeoutMs,
      keepAliveTimeoutMs: int('keep-alive-timeout-ms', 'KEEP_ALIVE_TIMEOUT_MS', 5_000),
      maxDiscardBytes: int('max-discard', 'MAX_DISCARD_BYTES', 16 * 1024 * 1024, 0),
    },
    auth: {
      apiKeys: apiKeys(values['api-key'] ?? env.API_KEY, values['api-key-file'] ?? env.API_KEY_FILE),
      metricsAuth: values['metrics-auth'] ?? truthy(env.METRICS_AUTH),
    },
    shutdownTimeoutMs: int('shutdown-timeout-ms', 'SHUTDOWN_TIMEOUT_MS', 30_000),
    firstRun: {
      demo: values.demo ?? truthy(env.DEMO),
      defaultModelId:
        values['default-model'] ??
        env.DEFAULT_MODEL ??
        'Intel/bert-base-uncased-squadv1.1-sparse-80-1x4-block-pruneofa',
      hub: {
        endpoint: env.HF_ENDPOINT ?? 'https://huggingface.co',
        token: env.HF_TOKEN,
        revision: 'main',
        cacheDir: env.SBS_CACHE_DIR ?? join(homedir(), '.cache', 'sparse-bert-serve', 'hub'),
      },
    },
    logLevel: values['log-level'] ?? env.LOG_LEVEL ?? 'info',
  };
}
