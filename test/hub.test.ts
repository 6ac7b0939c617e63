import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { downloadCheckpoint, HubError, type HubOptions } from '../conversion/checkpoint/hub.js';
import { startHub, type FakeHub, type FakeRepo } from './helpers/fake-hub.js';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const REPO = 'Intel/fake-sparse-bert';

// ---- fixtures and helpers ---------------------------------------------------------------------------------------

const COMMON: Record<string, string> = {
  '.gitattributes': '*.safetensors filter=lfs diff=lfs merge=lfs -text\n',
  'README.md': '# fake sparse bert\n',
  'config.json': JSON.stringify({ model_type: 'bert', hidden_size: 8 }),
  'tokenizer_config.json': JSON.stringify({ do_lower_case: true }),
  'special_tokens_map.json': JSON.stringify({ cls_token: '[CLS]' }),
  'vocab.txt': '[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n',
  'flax_model.msgpack': 'FLAX'.repeat(50),
  'rust_model.ot': 'RUST'.repeat(50),
  'tf_model.h5': 'HDF5'.repeat(50),
  'onnx/model.onnx': 'ONNX'.repeat(50),
};

const scratch: string[] = [];
after(async () => {
  for (const dir of scratch) await rm(dir, { recursive: true, force: true });
});

async function cacheDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hub-test-'));
  scratch.push(dir);
  return dir;
}

async function options(hub: FakeHub | string, extra: Partial<HubOptions> = {}): Promise<HubOptions> {
  return {
    endpoint: typeof hub === 'string' ? hub : hub.endpoint,
    revision: 'main',
    cacheDir: await cacheDir(),
    ...extra,
  };
}

/** Files under `dir`, relative, sorted. */
async function filesIn(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

async function rejectsWith(promise: Promise<unknown>, pattern: RegExp): Promise<HubError> {
  let caught: unknown;
  await promise.catch((error: unknown) => (caught = error));
  assert.ok(caught instanceof HubError, `expected a HubError, got ${String(caught)}`);
  assert.match(caught.message, pattern);
  assert.ok(!caught.message.includes('\n'), 'message is one line');
  return caught;
}

// ---- tests ------------------------------------------------------------------------------------------------------

test('downloads config, tokenizer files and model.safetensors only, following the CDN redirect', async () => {
  const files = {
    ...COMMON,
    'model.safetensors': 'SAFETENSORS-BYTES'.repeat(100),
    'pytorch_model.bin': 'TORCH'.repeat(10),
  };
  const hub = await startHub({ [REPO]: { files, redirected: ['model.safetensors'] } });
  try {
    const events: Array<{ file: string; receivedBytes: number; totalBytes?: number; done: boolean }> = [];
    const opts = await options(hub, { onProgress: (e) => events.push(e) });
    const dir = await downloadCheckpoint(REPO, opts);

    assert.equal(dir, join(opts.cacheDir, 'Intel--fake-sparse-bert', 'main'));
    const expected = [
      'config.json',
      'model.safetensors',
      'special_tokens_map.json',
      'tokenizer_config.json',
      'vocab.txt',
    ];
    assert.deepEqual(await filesIn(dir), expected);
    for (const file of expected)
      assert.equal(await readFile(join(dir, file), 'utf8'), files[file as keyof typeof files]);

    // Nothing else was requested: not flax, rust, tf, onnx, README or the .bin.
    const resolved = hub.requests
      .filter((r) => r.path.includes('/resolve/'))
      .map((r) => r.path.split('/resolve/main/')[1]);
    assert.deepEqual(resolved.sort(), expected);
    assert.ok(
      hub.requests.some((r) => r.path === `/cdn/${REPO}/model.safetensors`),
      'weights came through the redirect',
    );
    assert.ok(
      hub.requests.every((r) => r.authorization === undefined),
      'no token, no Authorization header',
    );

    const finished = events.filter((e) => e.done);
    assert.deepEqual(finished.map((e) => e.file).sort(), expected);
    const weights = finished.find((e) => e.file === 'model.safetensors');
    assert.equal(weights?.receivedBytes, files['model.safetensors'].length);
    assert.equal(weights?.totalBytes, files['model.safetensors'].length);
  } finally {
    await hub.close();
  }
});

test('a sharded safetensors index pulls every shard it lists, once each', async () => {
  const index = {
    metadata: { total_size: 40 },
    weight_map: {
      'bert.embeddings.word_embeddings.weight': 'model-00001-of-00002.safetensors',
      'bert.encoder.layer.0.attention.self.query.weight': 'model-00001-of-00002.safetensors',
      'classifier.weight': 'model-00002-of-00002.safetensors',
    },
  };
  const files = {
    ...COMMON,
    'tokenizer.json': JSON.stringify({ version: '1.0' }),
    'model.safetensors.index.json': JSON.stringify(index),
    'model-00001-of-00002.safetensors': 'SHARD-ONE'.repeat(20),
    'model-00002-of-00002.safetensors': 'SHARD-TWO'.repeat(20),
    'model-00003-of-00002.safetensors': 'NOT-IN-THE-INDEX',
    'pytorch_model.bin': 'TORCH'.repeat(10),
  };
  const hub = await startHub({ [REPO]: { files, redirected: ['model-00002-of-00002.safetensors'] } });
  try {
    const dir = await downloadCheckpoint(REPO, await options(hub));
    assert.deepEqual(await filesIn(dir), [
      'config.json',
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
      'model.safetensors.index.json',
      'special_tokens_map.json',
      'tokenizer.json',
      'tokenizer_config.json',
      'vocab.txt',
    ]);
    assert.equal(
      await readFile(join(dir, 'model-00002-of-00002.safetensors'), 'utf8'),
      files['model-00002-of-00002.safetensors'],
    );
    assert.equal(hub.downloads().filter((f) => f === 'model-00001-of-00002.safetensors').length, 1);
  } finally {
    await hub.close();
  }
});

test('falls back to pytorch_model.bin, then to a sharded .bin index', async () => {
  const single = { ...COMMON, 'pytorch_model.bin': 'TORCH'.repeat(10) };
  const sharded = {
    ...COMMON,
    'pytorch_model.bin.index.json': JSON.stringify({ weight_map: { a: 'pytorch_model-00001-of-00001.bin' } }),
    'pytorch_model-00001-of-00001.bin': 'TORCH-SHARD',
  };
  const hub = await startHub({ [REPO]: { files: single }, 'Intel/fake-sharded-bin': { files: sharded } });
  try {
    const dir = await downloadCheckpoint(REPO, await options(hub));
    assert.ok((await filesIn(dir)).includes('pytorch_model.bin'));
    const dir2 = await downloadCheckpoint('Intel/fake-sharded-bin', await options(hub));
    assert.ok((await filesIn(dir2)).includes('pytorch_model-00001-of-00001.bin'));
    assert.ok((await filesIn(dir2)).includes('pytorch_model.bin.index.json'));
  } finally {
    await hub.close();
  }
});

test('no supported weights: names the repo and mentions onnx/model.onnx', async () => {
  const hub = await startHub({ [REPO]: { files: COMMON }, 'Intel/no-onnx': { files: { 'config.json': '{}' } } });
  try {
    await rejectsWith(
      downloadCheckpoint(REPO, await options(hub)),
      /no supported weights found in Intel\/fake-sparse-bert .*onnx\/model\.onnx/,
    );
    const error = await rejectsWith(
      downloadCheckpoint('Intel/no-onnx', await options(hub)),
      /no supported weights found in Intel\/no-onnx/,
    );
    assert.doesNotMatch(error.message, /onnx\/model\.onnx/);
    assert.equal(hub.downloads().length, 0, 'nothing downloaded before the weights were known to exist');
  } finally {
    await hub.close();
  }
});

test('the token is sent as a Bearer header; without it a gated repo gives the access-denied message', async () => {
  const files = { ...COMMON, 'model.safetensors': 'WEIGHTS' };
  const hub = await startHub({ [REPO]: { files, token: 'hf_secret', redirected: ['model.safetensors'] } });
  try {
    await rejectsWith(
      downloadCheckpoint(REPO, await options(hub)),
      /^access denied to Intel\/fake-sparse-bert \(gated or private\?\); set HF_TOKEN$/,
    );
    await rejectsWith(
      downloadCheckpoint(REPO, await options(hub, { token: 'hf_wrong' })),
      /^access denied to Intel\/fake-sparse-bert/,
    );

    hub.requests.length = 0;
    const dir = await downloadCheckpoint(REPO, await options(hub, { token: 'hf_secret' }));
    assert.ok(existsSync(join(dir, 'model.safetensors')));
    const toHub = hub.requests.filter((r) => !r.path.startsWith('/cdn/'));
    assert.ok(toHub.length >= 6);
    for (const r of toHub) assert.equal(r.authorization, 'Bearer hf_secret', r.path);
  } finally {
    await hub.close();
  }
});

test('unknown repo and unknown revision give not-found messages', async () => {
  const hub = await startHub({ [REPO]: { files: { ...COMMON, 'model.safetensors': 'W' } } });
  try {
    await rejectsWith(
      downloadCheckpoint('Intel/does-not-exist', await options(hub)),
      new RegExp(`^model Intel/does-not-exist not found at ${hub.endpoint.replaceAll('.', '\\.')}$`),
    );
    await rejectsWith(
      downloadCheckpoint(REPO, await options(hub, { revision: 'v9' })),
      /^revision v9 not found in Intel\/fake-sparse-bert/,
    );
  } finally {
    await hub.close();
  }
});

test('an unreachable endpoint gives "cannot reach"', async () => {
  // Take a free port, then close it so that nothing listens there.
  const probe = createServer();
  await new Promise<void>((done) => probe.listen(0, '127.0.0.1', done));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((done) => probe.close(() => done()));

  const endpoint = `http://127.0.0.1:${port}`;
  await rejectsWith(
    downloadCheckpoint(REPO, await options(endpoint)),
    new RegExp(`^cannot reach the Hugging Face Hub at http://127\\.0\\.0\\.1:${port} \\(.*ECONNREFUSED.*\\)$`),
  );
});

test('a server that never answers times out with "cannot reach"', async () => {
  const silent = createServer(() => {
    /* never responds */
  });
  await new Promise<void>((done) => silent.listen(0, '127.0.0.1', done));
  const { port } = silent.address() as AddressInfo;
  try {
    await rejectsWith(
      downloadCheckpoint(REPO, await options(`http://127.0.0.1:${port}/`, { timeoutMs: 200 })),
      /^cannot reach the Hugging Face Hub at http:\/\/127\.0\.0\.1:\d+ \(no response within 0\.2 s\)$/,
    );
  } finally {
    silent.closeAllConnections();
    await new Promise<void>((done) => silent.close(() => done()));
  }
});

test('a response cut short fails and leaves no complete-looking file', async () => {
  const files = { ...COMMON, 'model.safetensors': 'SAFETENSORS-BYTES'.repeat(100) };
  const hub = await startHub({
    [REPO]: { files, truncated: ['model.safetensors'], redirected: ['model.safetensors'] },
  });
  try {
    const opts = await options(hub);
    await rejectsWith(downloadCheckpoint(REPO, opts), /model\.safetensors.*Intel\/fake-sparse-bert/);
    const dir = join(opts.cacheDir, 'Intel--fake-sparse-bert', 'main');
    const left = await filesIn(dir);
    assert.ok(!left.includes('model.safetensors'), `left: ${left.join(', ')}`);
    assert.ok(!left.some((f) => f.endsWith('.part')), `left: ${left.join(', ')}`);
    assert.ok(left.includes('config.json'), 'files completed before the failure are kept');
  } finally {
    await hub.close();
  }
});

test('a second call uses the cache; a file of the wrong size is fetched again', async () => {
  const files = { ...COMMON, 'tokenizer.json': '{"version":"1.0"}', 'model.safetensors': 'WEIGHTS'.repeat(30) };
  const hub = await startHub({ [REPO]: { files, redirected: ['model.safetensors'] } });
  try {
    const opts = await options(hub);
    const dir = await downloadCheckpoint(REPO, opts);
    const first = hub.downloads().length;
    assert.equal(first, 6);

    const events: string[] = [];
    assert.equal(await downloadCheckpoint(REPO, { ...opts, onProgress: (e) => events.push(e.file) }), dir);
    assert.equal(hub.downloads().length, first, 'no file downloaded again');
    assert.deepEqual(events, []);
    assert.equal(hub.requests.filter((r) => r.path.includes('/resolve/') || r.path.startsWith('/cdn/')).length, 7);

    await truncate(join(dir, 'model.safetensors'), 5);
    await downloadCheckpoint(REPO, opts);
    assert.deepEqual(hub.downloads().slice(first), ['model.safetensors']);
    assert.equal(await readFile(join(dir, 'model.safetensors'), 'utf8'), files['model.safetensors']);
  } finally {
    await hub.close();
  }
});

test('rejects malformed model ids and shard names that escape the cache dir', async () => {
  const files = {
    ...COMMON,
    'model.safetensors.index.json': JSON.stringify({ weight_map: { a: '../../escape.safetensors' } }),
  };
  const hub = await startHub({ [REPO]: { files } });
  try {
    for (const id of ['../etc', 'a/b/c', '', 'Intel/..', '/Intel', 'Intel/', 'Intel/fake bert']) {
      await rejectsWith(downloadCheckpoint(id, await options(hub)), /^invalid model id /);
    }
    assert.equal(hub.requests.length, 0, 'invalid ids are rejected before any request');
    await rejectsWith(downloadCheckpoint(REPO, await options(hub)), /not a valid weights index: invalid shard name/);
  } finally {
    await hub.close();
  }
});
