/**
 * Seeded generation of malformed and adversarial HTTP requests for the fuzz test: bad JSON, wrong types, huge and
 * deeply nested values, unicode edge cases (lone surrogates, invalid UTF-8, RTL and zero-width characters), bad
 * parameters, hostile model names and paths, odd headers, oversized and stalled bodies — across every route.
 * Each case is raw bytes for one connection, so nothing a client library would normalise is lost.
 */
import { gzipSync } from 'node:zlib';
import { seededRandom } from '../../loadtest/payloads.js';

export interface FuzzCase {
  /** What kind of case this is, for the summary and for reproducing a failure. */
  kind: string;
  /** One line describing the request (method, path, the start of the body). */
  describe: string;
  /** The bytes written on a fresh connection. */
  bytes: Buffer;
  /** Write only this many bytes and then wait: a stalled head or body the server must time out. */
  stallAfter?: number;
}

export interface FuzzOptions {
  apiKey: string;
  /** Served model names, per task. */
  models: { qa: string[]; classify: string[]; ner: string[] };
  bodyLimitBytes: number;
}

type Random = () => number;

const taskRoutes = ['qa', 'classify', 'ner'] as const;
type TaskRoute = (typeof taskRoutes)[number];

export const hostileModelNames = [
  '..',
  '../..',
  '..%2F..%2Fetc%2Fpasswd',
  '%2e%2e%2f%2e%2e',
  '%00',
  'qa-int8%00',
  'qa-int8%00.onnx',
  '%',
  '%zz',
  '%C0%AE%C0%AE',
  '%ED%A0%80',
  '%FF%FE',
  '__proto__',
  'constructor',
  'toString',
  'hasOwnProperty',
  'CON',
  'nul',
  '.',
  '~root',
  '$(id)',
  '%24%7Bjndi%3Aldap%3A%2F%2Fx%7D',
  'a'.repeat(5000),
  '%E2%80%AEqa-int8',
  'qa-int8%E2%80%8B',
  '%F0%9F%A4%97',
  'qa-INT8',
  ' qa-int8',
  'qa-int8;rm%20-rf',
  '*',
];

/** Unicode edge cases (as JS strings; lone surrogates survive JSON.stringify as \ud800 escapes). */
export const unicodeEdges = [
  '\ud800',
  '\udfff',
  'a\ud83d',
  '\udc00b\ud800',
  '\u202eevil\u202c text',
  '\u200f\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627',
  '\u200b\u200c\u200d\u2060\ufeff',
  '\u200b'.repeat(3000),
  'e' + '\u0301'.repeat(2000),
  '👨‍👩‍👧‍👦🏳️‍🌈🤗'.repeat(200),
  '\u0000\u0001\u0007\u001b[31m',
  '\ufffd\ufffe\uffff',
  '\u2028\u2029',
  'ｆｕｌｌ　ｗｉｄｔｈ　１２３',
  '北京 東京 서울 '.repeat(300),
  'ﷺ﷽',
  '\t\n\r \u00a0\u3000',
  '. , ; ! ? ¿ ¡ … — – '.repeat(200),
  'İstanbul ǅ ß ﬁ ẞ',
  'x',
];

const pick = <T>(random: Random, list: readonly T[]): T => list[Math.floor(random() * list.length)];
const int = (random: Random, low: number, high: number) => low + Math.floor(random() * (high - low + 1));

const words = (random: Random, n: number) =>
  Array.from({ length: n }, () => pick(random, ['the', 'museum', 'is', 'in', 'zurich', 'river', 'old', 'town'])).join(
    ' ',
  );

/** A value of an unexpected type. */
function wrongValue(random: Random): unknown {
  return pick<() => unknown>(random, [
    () => null,
    () => true,
    () => 0,
    () => -1,
    () => 1.5,
    () => 1e308,
    () => -1e308,
    () => Number.MAX_SAFE_INTEGER + 2,
    () => '',
    () => '3',
    () => [],
    () => [[]],
    () => ({}),
    () => ({ text: {} }),
    () => [null, 1, 'a'],
    () => pick(random, unicodeEdges),
    () => 'x'.repeat(int(random, 100_001, 200_000)),
    () => Array.from({ length: int(random, 65, 300) }, () => 'a'),
  ])();
}

/** Options that are out of range, of the wrong type, or unknown. */
function badParameters(random: Random, route: TaskRoute): Record<string, unknown> {
  const names = {
    qa: ['top_k', 'max_answer_len', 'doc_stride', 'max_seq_len', 'max_question_len', 'handle_impossible_answer'],
    classify: ['top_k', 'function_to_apply'],
    ner: ['aggregation_strategy', 'ignore_labels', 'stride'],
  }[route];
  const values: unknown[] = [
    0,
    -5,
    1e9,
    2 ** 31,
    1.25,
    '2',
    null,
    true,
    [],
    {},
    'simple',
    'evil',
    ['O', 1, null],
    Array.from({ length: 101 }, (_, i) => `L${i}`),
    32,
    31,
    512,
    4096,
    4097,
    20,
    21,
    1000,
    1001,
  ];
  const out: Record<string, unknown> = {};
  for (let i = int(random, 1, 3); i > 0; i--)
    out[random() < 0.9 ? pick(random, names) : `unknown_${i}`] = pick(random, values);
  return out;
}

/** A plausible input for the route, sometimes with unicode edge cases spliced in. */
function validInput(random: Random, route: TaskRoute, size = int(random, 1, 40)): Record<string, unknown> {
  const spice = () => (random() < 0.4 ? ` ${pick(random, unicodeEdges)} ` : ' ');
  if (route === 'qa') return { question: `where${spice()}is it?`, context: `${words(random, size)}${spice()}zurich.` };
  if (route === 'classify')
    return random() < 0.5
      ? { text: `${words(random, size)}${spice()}` }
      : { text: words(random, size), text_pair: `${spice()}${words(random, 3)}` };
  return { text: `John lives in Paris${spice()}${words(random, size)}` };
}

/** A body: our flat form, the Inference API form, an array, or one of those with wrong types and bad parameters. */
function taskBody(random: Random, route: TaskRoute, models: string[]): unknown {
  const input = validInput(random, route);
  const roll = random();
  if (roll < 0.15) return { ...input, ...badParameters(random, route) };
  if (roll < 0.3) return { inputs: route === 'qa' ? input : input.text, parameters: badParameters(random, route) };
  if (roll < 0.45) {
    const key = pick(random, [...Object.keys(input), 'inputs', 'parameters', 'model']);
    return { ...input, [key]: wrongValue(random) };
  }
  if (roll < 0.55) return { inputs: wrongValue(random) };
  if (roll < 0.62) return Array.from({ length: pick(random, [0, 1, 64, 65, 200]) }, () => input);
  if (roll < 0.7) return { ...input, model: pick(random, [...hostileModelNames.map(decodeSafely), ...models]) };
  if (roll < 0.75) return { ...input, __proto__: { polluted: true }, constructor: { prototype: { x: 1 } } };
  if (roll < 0.8) return wrongValue(random);
  // Valid requests between the hostile ones, so a wedged server would show.
  return random() < 0.5 ? input : { inputs: route === 'qa' ? input : input.text };
}

function decodeSafely(name: string): string {
  try {
    return decodeURIComponent(name);
  } catch {
    return name;
  }
}

/** JSON text that is not valid JSON, or valid JSON no route expects. */
function badJson(random: Random, route: TaskRoute): string {
  const valid = JSON.stringify(validInput(random, route));
  return pick<() => string>(random, [
    () => valid.slice(0, int(random, 0, valid.length - 1)),
    () => `${valid}}`,
    () => `${valid} trailing`,
    () => valid.replace(':', '::'),
    () => valid.replace(/"/g, "'"),
    () => `\ufeff${valid}`,
    () => '',
    () => 'null',
    () => 'true',
    () => '1e999',
    () => '"just a string"',
    () => '{"question": NaN, "context": Infinity}',
    () => '{"text": "a", "text": "b", "text": 5}',
    () => '{"text": "\\ud800\\udc00\\udc00\\ud800"}',
    () => '{"text": "\\u0000"}',
    () => '{"text": "\\x41"}',
    () => '{"__proto__": {"admin": true}, "text": "x"}',
    () => '{"constructor": {"prototype": {"admin": true}}, "text": "x"}',
    () => '[' + '1,'.repeat(10_000) + '1]',
    () => '{"text": ' + '"a",'.repeat(1000) + '"b"}',
    () => '\u0000\u0001\u0002',
    () => '{"text": "unterminated',
    () => '{' + '"a":{'.repeat(5000) + '}'.repeat(5001),
  ])();
}

/** Arrays or objects nested `depth` deep, as JSON text (built as text: JSON.stringify would recurse as deep). */
function deeplyNested(random: Random, route: TaskRoute, depth: number): string {
  const field = route === 'qa' ? 'context' : 'text';
  if (random() < 0.5) return `{"${field}": ${'['.repeat(depth)}"x"${']'.repeat(depth)}}`;
  return `{"inputs": ${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`;
}

interface Head {
  method: string;
  path: string;
  headers: [string, string][];
}

function encodeRequest(head: Head, body: Buffer | undefined, contentLength: boolean): Buffer {
  const lines = [`${head.method} ${head.path} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close'];
  for (const [name, value] of head.headers) lines.push(`${name}: ${value}`);
  if (body && contentLength && !head.headers.some(([name]) => /^(content-length|transfer-encoding)$/i.test(name)))
    lines.push(`Content-Length: ${body.length}`);
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), body ?? Buffer.alloc(0)]);
}

function authHeader(random: Random, apiKey: string): [string, string][] {
  if (random() < 0.9) return [['Authorization', `Bearer ${apiKey}`]];
  return [
    [
      'Authorization',
      pick(random, [
        '',
        'Bearer',
        'Bearer ',
        `bearer ${apiKey}`,
        `Basic ${Buffer.from(`u:${apiKey}`).toString('base64')}`,
        `Bearer ${apiKey}x`,
        `Bearer ${apiKey.slice(0, -1)}`,
        `Bearer ${apiKey} ${apiKey}`,
        `Bearer ${'k'.repeat(8000)}`,
        'Bearer \u00ff\u00fe',
      ]),
    ],
  ];
}

const jsonType: [string, string] = ['Content-Type', 'application/json'];

/** `count` cases from `seed`; the same seed gives the same cases. */
export function fuzzCases(seed: number, count: number, options: FuzzOptions): FuzzCase[] {
  const random = seededRandom(seed);
  const cases: FuzzCase[] = [];
  const auth = () => authHeader(random, options.apiKey);
  const describeBytes = (bytes: Buffer) =>
    JSON.stringify(bytes.subarray(0, 160).toString('latin1')) + (bytes.length > 160 ? `… (${bytes.length} bytes)` : '');

  const taskPath = (route: TaskRoute) => {
    const roll = random();
    if (roll < 0.5) return `/${route}`;
    if (roll < 0.75) return `/models/${pick(random, options.models[route])}/${route}`;
    if (roll < 0.85) return `/models/${pick(random, [...options.models.qa, ...options.models.classify])}/${route}`;
    return `/models/${pick(random, hostileModelNames)}/${route}`;
  };

  const kinds: [string, number, () => Omit<FuzzCase, 'kind' | 'describe'>][] = [
    [
      'task body (wrong types, bad parameters, hostile fields)',
      30,
      () => {
        const route = pick(random, taskRoutes);
        const body = Buffer.from(JSON.stringify(taskBody(random, route, options.models[route])));
        return {
          bytes: encodeRequest({ method: 'POST', path: taskPath(route), headers: [jsonType, ...auth()] }, body, true),
        };
      },
    ],
    [
      'bad JSON',
      12,
      () => {
        const route = pick(random, taskRoutes);
        const body = Buffer.from(badJson(random, route));
        return {
          bytes: encodeRequest({ method: 'POST', path: taskPath(route), headers: [jsonType, ...auth()] }, body, true),
        };
      },
    ],
    [
      'deeply nested',
      4,
      () => {
        const route = pick(random, taskRoutes);
        const body = Buffer.from(deeplyNested(random, route, pick(random, [100, 10_000, 100_000, 400_000])));
        return {
          bytes: encodeRequest({ method: 'POST', path: `/${route}`, headers: [jsonType, ...auth()] }, body, true),
        };
      },
    ],
    [
      'huge values',
      5,
      () => {
        const route = pick(random, taskRoutes);
        const big = int(random, 50_000, 400_000);
        const text = pick(random, ['a ', 'zurich ', '\u200b', '北', '🤗', 'x'.repeat(50) + ' ']).repeat(
          Math.ceil(big / 2),
        );
        const body =
          route === 'qa'
            ? {
                question: random() < 0.5 ? 'where?' : text.slice(0, 100_000),
                context: text,
                max_seq_len: 32,
                doc_stride: 0,
              }
            : random() < 0.5
              ? { text: text.slice(0, int(random, 99_000, 100_001)) }
              : { inputs: Array.from({ length: 64 }, () => text.slice(0, 15_000)) };
        const bytes = Buffer.from(JSON.stringify(body));
        return {
          bytes: encodeRequest({ method: 'POST', path: `/${route}`, headers: [jsonType, ...auth()] }, bytes, true),
        };
      },
    ],
    [
      'invalid UTF-8 bytes',
      5,
      () => {
        const route = pick(random, taskRoutes);
        const field = route === 'qa' ? 'context' : 'text';
        const garbage = Buffer.from(
          pick(random, [
            [0xff, 0xfe],
            [0xc0, 0x80],
            [0xed, 0xa0, 0x80],
            [0xf4, 0x90, 0x80, 0x80],
            [0xe2, 0x82],
            [0x80],
          ]),
        );
        const body = Buffer.concat([
          Buffer.from(`{"question": "where?", "${field}": "zurich `),
          garbage,
          Buffer.from(' town"}'),
        ]);
        return {
          bytes: encodeRequest({ method: 'POST', path: `/${route}`, headers: [jsonType, ...auth()] }, body, true),
        };
      },
    ],
    [
      'odd headers',
      10,
      () => {
        const route = pick(random, taskRoutes);
        const body = Buffer.from(JSON.stringify(validInput(random, route)));
        const roll = random();
        const headers: [string, string][] = [...auth()];
        let payload: Buffer = body;
        let contentLength = true;
        if (roll < 0.15)
          headers.push([
            'Content-Type',
            pick(random, [
              'text/plain',
              'application/x-www-form-urlencoded',
              'multipart/form-data; boundary=x',
              'application/xml',
              'application/json; charset=utf-16',
              'application/json; charset=latin1',
              '',
              'application/json;;;',
              'application/*',
            ]),
          ]);
        else if (roll < 0.3) {
          headers.push(jsonType, ['Content-Encoding', pick(random, ['gzip', 'br', 'deflate', 'identity, gzip'])]);
          if (random() < 0.5) payload = gzipSync(body);
        } else if (roll < 0.45) {
          headers.push(jsonType, ['Transfer-Encoding', 'chunked']);
          payload =
            random() < 0.5
              ? Buffer.from(`${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`)
              : Buffer.from(`zz\r\n${body}\r\n0\r\n\r\n`);
        } else if (roll < 0.55) {
          // Both framings at once: a request-smuggling shape.
          headers.push(jsonType, ['Content-Length', String(body.length)], ['Transfer-Encoding', 'chunked']);
        } else if (roll < 0.65) {
          headers.push(jsonType, [
            'Content-Length',
            pick(random, ['-1', 'abc', '1e3', `${body.length}, ${body.length}`, '99999999999999999999']),
          ]);
        } else if (roll < 0.75) {
          // Fewer bytes than the body: the rest arrives as the next (garbage) request on the connection.
          headers.push(jsonType, ['Content-Length', String(Math.max(0, body.length - int(random, 1, 10)))]);
        } else if (roll < 0.85) {
          headers.push(jsonType, ['X-Big', 'h'.repeat(int(random, 8_000, 70_000))]);
        } else if (roll < 0.92) {
          for (let i = 0; i < int(random, 100, 3000); i++) headers.push([`X-H${i}`, 'v']);
          headers.push(jsonType);
        } else {
          headers.push(jsonType, ['Expect', '100-continue']);
        }
        if (headers.some(([name]) => /^content-length$/i.test(name))) contentLength = false;
        return { bytes: encodeRequest({ method: 'POST', path: `/${route}`, headers }, payload, contentLength) };
      },
    ],
    [
      'v2 infer',
      8,
      () => {
        const name =
          random() < 0.8
            ? pick(random, [...options.models.qa, ...options.models.classify, ...options.models.ner])
            : pick(random, hostileModelNames);
        const tensor = () =>
          pick<() => unknown>(random, [
            () => ({
              name: pick(random, ['question', 'context', 'text', 'text_pair']),
              shape: [1],
              datatype: 'BYTES',
              data: [words(random, 5)],
            }),
            () => ({
              name: 'text',
              shape: [int(random, -2, 3)],
              datatype: pick(random, ['BYTES', 'FP32', 'INT64', 'BOOL', 'X']),
              data: [1, 'a', null],
            }),
            () => ({ name: 'text', shape: [1e9], datatype: 'BYTES', data: ['x'] }),
            () => ({ name: 'text', shape: [1, 1, 1], datatype: 'BYTES', data: [[['x']]] }),
            () => ({
              name: 'text',
              shape: [2],
              datatype: 'BYTES',
              data: [pick(random, unicodeEdges), pick(random, unicodeEdges)],
            }),
            () => ({
              name: 'text',
              shape: [64],
              datatype: 'BYTES',
              data: Array.from({ length: 64 }, () => 'x'.repeat(5000)),
            }),
            () => ({ name: '__proto__', shape: [1], datatype: 'BYTES', data: ['x'] }),
            () => wrongValue(random),
          ])();
        const body = pick<() => unknown>(random, [
          () => ({ inputs: Array.from({ length: int(random, 0, 5) }, tensor) }),
          () => ({
            inputs: [tensor(), tensor()],
            outputs: [{ name: pick(random, ['answer', 'score', 'logits', '', 5]) }],
          }),
          () => ({ inputs: wrongValue(random) }),
          () => ({ id: wrongValue(random), inputs: [tensor()], parameters: wrongValue(random) }),
          () => wrongValue(random),
        ])();
        const bytes = Buffer.from(JSON.stringify(body) ?? 'undefined');
        return {
          bytes: encodeRequest(
            { method: 'POST', path: `/v2/models/${name}/infer`, headers: [jsonType, ...auth()] },
            bytes,
            true,
          ),
        };
      },
    ],
    [
      'paths and methods',
      10,
      () => {
        const model = random() < 0.5 ? pick(random, options.models.qa) : pick(random, hostileModelNames);
        const path = pick(random, [
          '/healthz',
          '/readyz',
          '/models',
          '/metrics',
          '/v2',
          '/v2/health/live',
          '/v2/health/ready',
          `/v2/models/${model}`,
          `/v2/models/${model}/ready`,
          '/openapi.json',
          '/docs',
          '/docs/static/index.html',
          '/docs/../../../etc/passwd',
          '/docs/%2e%2e/%2e%2e/package.json',
          `/models/${model}`,
          '/qa/../classify',
          '//qa',
          '/%2e%2e/qa',
          '/qa%00',
          '/qa?' + 'x=1&'.repeat(5000),
          '/' + 'a/'.repeat(2000),
          '/\u00ff',
          '*',
          'http://evil.example/qa',
          '/qa#frag',
        ]);
        const method = pick(random, [
          'GET',
          'GET',
          'HEAD',
          'OPTIONS',
          'PUT',
          'DELETE',
          'PATCH',
          'POST',
          'TRACE',
          'CONNECT',
          'FOO',
          'G E T',
        ]);
        const body = method === 'POST' || method === 'PUT' ? Buffer.from('{}') : undefined;
        return { bytes: encodeRequest({ method, path, headers: [jsonType, ...auth()] }, body, true) };
      },
    ],
    [
      'malformed request head',
      4,
      () => {
        const head = pick(random, [
          'GET / HTTP/1.1\r\n\r\n',
          'GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n',
          'POST /qa HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello',
          'POST /qa HTTP/1.1\nHost: x\nContent-Length: 2\n\n{}',
          'POST /qa HTTP/1.1\r\nHost: x\r\nBad Header Name: v\r\n\r\n',
          'POST /qa HTTP/1.1\r\nHost: x\r\nX: a\u0000b\r\n\r\n',
          '\u0000\u0001\u0002\u0003\r\n\r\n',
          `GET /${'x'.repeat(100_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
          'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n',
          '\r\n\r\n\r\n',
          'GET /healthz HTTP/1.1\r\nHost: x\r\n folded: header\r\n\r\n',
        ]);
        return { bytes: Buffer.from(head, 'latin1') };
      },
    ],
    [
      'oversized body',
      2,
      () => {
        const route = pick(random, taskRoutes);
        const size = pick(random, [options.bodyLimitBytes + 1, options.bodyLimitBytes * 2, 6 * 1024 * 1024]);
        const field = route === 'qa' ? 'context' : 'text';
        const body = Buffer.from(`{"question": "q", "${field}": "${'a '.repeat(Math.ceil(size / 2))}"}`);
        const chunked = random() < 0.3;
        const headers: [string, string][] = [jsonType, ...auth()];
        if (chunked) headers.push(['Transfer-Encoding', 'chunked']);
        const payload = chunked
          ? Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')])
          : body;
        return { bytes: encodeRequest({ method: 'POST', path: `/${route}`, headers }, payload, !chunked) };
      },
    ],
  ];
  const totalWeight = kinds.reduce((sum, [, weight]) => sum + weight, 0);
  while (cases.length < count) {
    let roll = random() * totalWeight;
    const [kind, , make] = kinds.find(([, weight]) => (roll -= weight) < 0) ?? kinds[0];
    const made = make();
    cases.push({ kind, describe: describeBytes(made.bytes), ...made });
  }
  return cases;
}

/** Requests that stop part-way: the head, or the body after a few bytes of what Content-Length promised. */
export function stalledCases(apiKey: string): FuzzCase[] {
  const body = Buffer.from(JSON.stringify({ question: 'Where?', context: 'It is in Zurich.' }));
  const full = (path: string, extra: [string, string][] = []) =>
    encodeRequest(
      { method: 'POST', path, headers: [jsonType, ['Authorization', `Bearer ${apiKey}`], ...extra] },
      body,
      true,
    );
  const cases: [string, Buffer, number][] = [
    ['stalled body after 11 bytes', full('/qa'), full('/qa').length - body.length + 11],
    ['stalled body, nothing of it sent', full('/classify'), full('/classify').length - body.length],
    ['stalled head', full('/ner'), 20],
    ['stalled head before the blank line', full('/qa'), full('/qa').length - body.length - 2],
    ['stalled chunked body', full('/qa', [['Transfer-Encoding', 'chunked']]), full('/qa').length - body.length],
  ];
  return cases.map(([kind, bytes, stallAfter]) => ({
    kind,
    describe: JSON.stringify(bytes.subarray(0, stallAfter).toString('latin1').slice(0, 160)),
    bytes,
    stallAfter,
  }));
}
