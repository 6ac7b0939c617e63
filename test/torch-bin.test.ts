import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { zipSync } from 'fflate';
import { ConversionError } from '../conversion/errors.js';
import { unpickle } from '../conversion/checkpoint/pickle/reader.js';
import { PickleError, PickleGlobal } from '../conversion/checkpoint/pickle/values.js';
import { PyPersistentId, PyReduce, PyTuple, pickle, type PyWritable } from '../conversion/checkpoint/pickle/writer.js';
import { readTorchBin, writeTorchBin } from '../conversion/checkpoint/torch-bin.js';

const dir = mkdtempSync(join(tmpdir(), 'torch-bin-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const OrderedDict = new PickleGlobal('collections', 'OrderedDict');
const rebuildV2 = new PickleGlobal('torch._utils', '_rebuild_tensor_v2');

function storageId(type: string, key: string, numel: number): PyPersistentId {
  return new PyPersistentId(new PyTuple(['storage', new PickleGlobal('torch', type), key, 'cpu', numel]));
}

function tensorCall(storage: PyWritable, offset: number, shape: number[], stride: number[]): PyReduce {
  return new PyReduce(
    rebuildV2,
    new PyTuple([
      storage,
      offset,
      new PyTuple(shape),
      new PyTuple(stride),
      false,
      new PyReduce(OrderedDict, new PyTuple([])),
    ]),
  );
}

/** Builds a checkpoint by hand: a state dict pickle plus raw storages, under any archive prefix. */
function craft(
  name: string,
  prefix: string,
  items: [string, PyWritable][],
  storages: Record<string, Uint8Array>,
): string {
  const files: Record<string, [Uint8Array, { level: 0 }]> = {
    [`${prefix}/data.pkl`]: [pickle(new PyReduce(OrderedDict, new PyTuple([]), items)), { level: 0 }],
  };
  for (const [key, bytes] of Object.entries(storages)) files[`${prefix}/data/${key}`] = [bytes, { level: 0 }];
  files[`${prefix}/version`] = [new TextEncoder().encode('3\n'), { level: 0 }];
  const path = join(dir, name);
  writeFileSync(path, zipSync(files));
  return path;
}

function f32Bytes(values: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(values).buffer);
}

function sameFloats(actual: Float32Array, expected: ArrayLike<number>) {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < actual.length; i++)
    assert.ok(Object.is(actual[i], Math.fround(expected[i])), `element ${i}: ${actual[i]} !== ${expected[i]}`);
}

function conversionError(pattern: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof ConversionError, `expected ConversionError, got ${err}`);
    assert.match(err.message, pattern);
    return true;
  };
}

describe('writeTorchBin / readTorchBin', () => {
  test('round trip keeps names, order, shapes and exact values', () => {
    const random = Float32Array.from({ length: 4 * 7 }, (_, i) => Math.sin(i * 12.9898) * 43758.5453);
    const tensors = new Map([
      ['bert.embeddings.word_embeddings.weight', { shape: [4, 7], data: random }],
      [
        'bert.encoder.layer.0.attention.self.query.bias',
        { shape: [7], data: Float32Array.from([0, -0, 1e-45, -3.4028234663852886e38, Infinity, -Infinity, 1 / 3]) },
      ],
      ['qa_outputs.weight', { shape: [2, 3, 2], data: Float32Array.from({ length: 12 }, (_, i) => i - 5.5) }],
      ['scalar', { shape: [], data: Float32Array.from([42.25]) }],
      ['empty', { shape: [0, 3], data: new Float32Array(0) }],
      ['nan', { shape: [1], data: Float32Array.from([NaN]) }],
    ]);
    const path = join(dir, 'roundtrip.bin');
    writeTorchBin(path, tensors);
    const read = readTorchBin(path);
    assert.deepEqual([...read.keys()], [...tensors.keys()]);
    for (const [key, { shape, data }] of tensors) {
      const got = read.get(key)!;
      assert.deepEqual(got.shape, shape, key);
      assert.equal(got.sourceDtype, 'float32');
      sameFloats(got.data, data);
    }
  });

  test('writes the entries torch 2.x writes, stored and 64-byte aligned', () => {
    const path = join(dir, 'layout.bin');
    writeTorchBin(
      path,
      new Map([
        ['a', { shape: [3], data: Float32Array.from([1, 2, 3]) }],
        ['b', { shape: [1], data: Float32Array.from([4]) }],
      ]),
    );
    const bytes = readFileSync(path);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const names: string[] = [];
    for (let p = 0; view.getUint32(p, true) === 0x04034b50;) {
      assert.equal(view.getUint16(p + 8, true), 0, 'stored, not deflated');
      const size = view.getUint32(p + 18, true);
      const nameLength = view.getUint16(p + 26, true);
      const dataStart = p + 30 + nameLength + view.getUint16(p + 28, true);
      const name = bytes.subarray(p + 30, p + 30 + nameLength).toString();
      names.push(name);
      assert.equal(dataStart % 64, 0, `${name} aligned`);
      if (name === 'archive/version') assert.equal(bytes.subarray(dataStart, dataStart + size).toString(), '3\n');
      if (name === 'archive/byteorder') assert.equal(bytes.subarray(dataStart, dataStart + size).toString(), 'little');
      p = dataStart + size;
    }
    assert.deepEqual(names, [
      'archive/data.pkl',
      'archive/byteorder',
      'archive/data/0',
      'archive/data/1',
      'archive/version',
    ]);
  });

  test('rejects data that does not match the shape', () => {
    assert.throws(
      () => writeTorchBin(join(dir, 'bad.bin'), new Map([['x', { shape: [2, 2], data: new Float32Array(3) }]])),
      /needs 4 values/,
    );
  });
});

describe('readTorchBin storage handling', () => {
  test('decodes float16, bfloat16 and float64 storages to fp32 and skips integer buffers', () => {
    const half = new Uint16Array([0x3c00, 0xc000, 0x3555, 0x7bff, 0x0001, 0x7c00]);
    const bf16 = new Uint16Array([0x3f80, 0xc0a0, 0x4049]);
    const f64 = new Float64Array([0.1, -2.5]);
    const path = craft(
      'fp16.bin',
      'pytorch_model',
      [
        ['half', tensorCall(storageId('HalfStorage', '0', 6), 0, [2, 3], [3, 1])],
        ['bf16', tensorCall(storageId('BFloat16Storage', '1', 3), 0, [3], [1])],
        ['dbl', tensorCall(storageId('DoubleStorage', '2', 2), 0, [2], [1])],
        ['embeddings.position_ids', tensorCall(storageId('LongStorage', '3', 3), 0, [1, 3], [3, 1])],
      ],
      {
        '0': new Uint8Array(half.buffer),
        '1': new Uint8Array(bf16.buffer),
        '2': new Uint8Array(f64.buffer),
        '3': new Uint8Array(new BigInt64Array([0n, 1n, 2n]).buffer),
      },
    );
    const read = readTorchBin(path);
    assert.deepEqual([...read.keys()], ['half', 'bf16', 'dbl']);
    assert.deepEqual(read.get('half')!.shape, [2, 3]);
    assert.equal(read.get('half')!.sourceDtype, 'float16');
    sameFloats(read.get('half')!.data, [1, -2, 0.333251953125, 65504, 2 ** -24, Infinity]);
    assert.equal(read.get('bf16')!.sourceDtype, 'bfloat16');
    sameFloats(read.get('bf16')!.data, [1, -5, 3.140625]);
    assert.equal(read.get('dbl')!.sourceDtype, 'float64');
    sameFloats(read.get('dbl')!.data, [0.1, -2.5]);
  });

  test('UntypedStorage with _rebuild_tensor_v3 dtype, wrapped in _rebuild_parameter', () => {
    const v3 = new PyReduce(
      new PickleGlobal('torch._utils', '_rebuild_tensor_v3'),
      new PyTuple([
        storageId('UntypedStorage', '0', 6),
        1,
        new PyTuple([2]),
        new PyTuple([1]),
        false,
        new PyReduce(OrderedDict, new PyTuple([])),
        new PickleGlobal('torch', 'float16'),
      ]),
    );
    const param = new PyReduce(
      new PickleGlobal('torch._utils', '_rebuild_parameter'),
      new PyTuple([v3, true, new PyReduce(OrderedDict, new PyTuple([]))]),
    );
    const path = craft('untyped.bin', 'model', [['p', param]], {
      '0': new Uint8Array(new Uint16Array([0x3c00, 0x4000, 0x4200]).buffer),
    });
    const p = readTorchBin(path).get('p')!;
    assert.equal(p.sourceDtype, 'float16');
    sameFloats(p.data, [2, 3]);
  });

  test('offset and non-contiguous views of one shared storage (tied weights)', () => {
    const base = Array.from({ length: 12 }, (_, i) => i); // a 3x4 matrix
    const shared = storageId('FloatStorage', '0', 12);
    const baseTensor = tensorCall(shared, 0, [3, 4], [4, 1]);
    const path = craft(
      'views.bin',
      'archive',
      [
        ['base', baseTensor],
        ['tied', baseTensor], // the same pickled object under a second name
        ['transposed', tensorCall(shared, 0, [4, 3], [1, 4])],
        ['row2', tensorCall(shared, 8, [4], [1])],
        ['block', tensorCall(shared, 5, [2, 2], [4, 2])], // rows 1..2, columns 1 and 3
        ['broadcast', tensorCall(shared, 3, [2, 3], [0, 1])],
      ],
      { '0': f32Bytes(base) },
    );
    const read = readTorchBin(path);
    sameFloats(read.get('base')!.data, base);
    assert.equal(read.get('tied'), read.get('base'), 'tied keys share one tensor');
    assert.deepEqual(read.get('transposed')!.shape, [4, 3]);
    sameFloats(read.get('transposed')!.data, [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
    sameFloats(read.get('row2')!.data, [8, 9, 10, 11]);
    sameFloats(read.get('block')!.data, [5, 7, 9, 11]);
    sameFloats(read.get('broadcast')!.data, [3, 4, 5, 3, 4, 5]);
  });

  test('reads a checkpoint written by torch 1.13 (data descriptors, zip64 end record, custom prefix)', () => {
    // torch.save(OrderedDict(w=arange(6).reshape(2,3)/4, w_t=w.t(), w_row1=w[1], h=fp16 [1,-2,.5,65504], ids=arange(3)))
    const fixture =
      'UEsDBAAACAgAAAAAAAAAAAAAAAAAAAAAAAAQABIAZml4dHVyZS9kYXRhLnBrbEZCDgBaWlpaWlpaWlpaWlpaWoACY2NvbGxlY3Rp' +
      'b25zCk9yZGVyZWREaWN0CnEAKVJxAShYAQAAAHdxAmN0b3JjaC5fdXRpbHMKX3JlYnVpbGRfdGVuc29yX3YyCnEDKChYBwAAAHN0' +
      'b3JhZ2VxBGN0b3JjaApGbG9hdFN0b3JhZ2UKcQVYAQAAADBxBlgDAAAAY3B1cQdLBnRxCFFLAEsCSwOGcQlLA0sBhnEKiWgAKVJx' +
      'C3RxDFJxDVgDAAAAd190cQ5oAygoaARoBWgGaAdLBnRxD1FLAEsDSwKGcRBLAUsDhnERiWgAKVJxEnRxE1JxFFgGAAAAd19yb3cx' +
      'cRVoAygoaARoBWgGaAdLBnRxFlFLA0sDhXEXSwGFcRiJaAApUnEZdHEaUnEbWAEAAABocRxoAygoaARjdG9yY2gKSGFsZlN0b3Jh' +
      'Z2UKcR1YAQAAADFxHmgHSwR0cR9RSwBLBIVxIEsBhXEhiWgAKVJxInRxI1JxJFgDAAAAaWRzcSVoAygoaARjdG9yY2gKTG9uZ1N0' +
      'b3JhZ2UKcSZYAQAAADJxJ2gHSwN0cShRSwBLA4VxKUsBhXEqiWgAKVJxK3RxLFJxLXUuUEsHCP1Roxe1AQAAtQEAAFBLAwQAAAgI' +
      'AAAAAAAAAAAAAAAAAAAAAAAADgAPAGZpeHR1cmUvZGF0YS8wRkILAFpaWlpaWlpaWlpaAAAAAAAAgD4AAAA/AABAPwAAgD8AAKA/' +
      'UEsHCFLl5x8YAAAAGAAAAFBLAwQAAAgIAAAAAAAAAAAAAAAAAAAAAAAADgAsAGZpeHR1cmUvZGF0YS8xRkIoAFpaWlpaWlpaWlpa' +
      'WlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWloAPADAADj/e1BLBwh6GX+dCAAAAAgAAABQSwMEAAAICAAAAAAAAAAAAAAAAAAA' +
      'AAAAAA4APABmaXh0dXJlL2RhdGEvMkZCOABaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpa' +
      'WlpaWlpaWgAAAAAAAAAAAQAAAAAAAAACAAAAAAAAAFBLBwjMXIxPGAAAABgAAABQSwMEAAAICAAAAAAAAAAAAAAAAAAAAAAAAA8A' +
      'KwBmaXh0dXJlL3ZlcnNpb25GQicAWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaMwpQSwcI0Z5nVQIAAAAC' +
      'AAAAUEsBAgAAAAAICAAAAAAAAP1Roxe1AQAAtQEAABAAAAAAAAAAAAAAAAAAAAAAAGZpeHR1cmUvZGF0YS5wa2xQSwECAAAAAAgI' +
      'AAAAAAAAUuXnHxgAAAAYAAAADgAAAAAAAAAAAAAAAAAFAgAAZml4dHVyZS9kYXRhLzBQSwECAAAAAAgIAAAAAAAAehl/nQgAAAAI' +
      'AAAADgAAAAAAAAAAAAAAAABoAgAAZml4dHVyZS9kYXRhLzFQSwECAAAAAAgIAAAAAAAAzFyMTxgAAAAYAAAADgAAAAAAAAAAAAAA' +
      'AADYAgAAZml4dHVyZS9kYXRhLzJQSwECAAAAAAgIAAAAAAAA0Z5nVQIAAAACAAAADwAAAAAAAAAAAAAAAABoAwAAZml4dHVyZS92' +
      'ZXJzaW9uUEsGBiwAAAAAAAAAHgMtAAAAAAAAAAAABQAAAAAAAAAFAAAAAAAAAC8BAAAAAAAA0gMAAAAAAABQSwYHAAAAAAEFAAAA' +
      'AAAAAQAAAFBLBQYAAAAABQAFAC8BAADSAwAAAAA=';
    const path = join(dir, 'fixture.bin');
    writeFileSync(path, Buffer.from(fixture, 'base64'));
    const read = readTorchBin(path);
    assert.deepEqual([...read.keys()], ['w', 'w_t', 'w_row1', 'h']);
    sameFloats(read.get('w')!.data, [0, 0.25, 0.5, 0.75, 1, 1.25]);
    assert.deepEqual(read.get('w_t')!.shape, [3, 2]);
    sameFloats(read.get('w_t')!.data, [0, 0.75, 0.25, 1, 0.5, 1.25]);
    sameFloats(read.get('w_row1')!.data, [0.75, 1, 1.25]);
    assert.equal(read.get('h')!.sourceDtype, 'float16');
    sameFloats(read.get('h')!.data, [1, -2, 0.5, 65504]);
  });
});

describe('readTorchBin errors', () => {
  const good = join(dir, 'good.bin');
  writeTorchBin(good, new Map([['w', { shape: [64, 64], data: Float32Array.from({ length: 4096 }, (_, i) => i) }]]));

  test('truncated file', () => {
    const bytes = readFileSync(good);
    const path = join(dir, 'truncated-model.bin');
    writeFileSync(path, bytes.subarray(0, bytes.length >> 1));
    assert.throws(() => readTorchBin(path), conversionError(/truncated-model\.bin: .*truncated or corrupt/));
  });

  test('garbage bytes', () => {
    const path = join(dir, 'garbage.bin');
    writeFileSync(path, Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 7919 + 13) & 0xff)));
    assert.throws(() => readTorchBin(path), conversionError(/garbage\.bin: .*truncated or corrupt/));
  });

  test('empty and missing files', () => {
    const empty = join(dir, 'empty.bin');
    writeFileSync(empty, '');
    assert.throws(() => readTorchBin(empty), conversionError(/empty\.bin: .*empty/));
    assert.throws(() => readTorchBin(join(dir, 'nope.bin')), conversionError(/nope\.bin: file not found/));
  });

  test('legacy pre-1.6 checkpoint', () => {
    const path = join(dir, 'legacy.bin');
    // torch's legacy format starts with a protocol-2 pickle of the magic number 0x1950a86a20f9469cfc6c
    writeFileSync(path, Buffer.from('80028a0a6c fc 9c 46 f9 20 6a a8 50 19 2e'.replace(/ /g, ''), 'hex'));
    assert.throws(() => readTorchBin(path), conversionError(/legacy .*not supported.*re-save/));
  });

  test('zip without data.pkl', () => {
    const path = join(dir, 'other.zip');
    writeFileSync(path, zipSync({ 'archive/readme.txt': new TextEncoder().encode('hi') }));
    assert.throws(() => readTorchBin(path), conversionError(/other\.zip: missing data\.pkl/));
  });

  test('storage shorter than the tensor needs', () => {
    const path = craft(
      'short.bin',
      'archive',
      [['w', tensorCall(storageId('FloatStorage', '0', 6), 2, [2, 3], [3, 1])]],
      { '0': f32Bytes([1, 2, 3, 4, 5, 6]) },
    );
    assert.throws(() => readTorchBin(path), conversionError(/short\.bin: tensor 'w' needs 32 bytes .* only 24/));
  });

  test('missing storage entry', () => {
    const path = craft(
      'nostorage.bin',
      'archive',
      [['w', tensorCall(storageId('FloatStorage', '7', 1), 0, [1], [1])]],
      {},
    );
    assert.throws(() => readTorchBin(path), conversionError(/storage archive\/data\/7 is missing/));
  });

  test('disallowed pickle global is reported, never executed', () => {
    const evil = new PyReduce(new PickleGlobal('os', 'system'), new PyTuple(['echo pwned']));
    const path = craft('evil.bin', 'archive', [['w', evil]], {});
    assert.throws(
      () => readTorchBin(path),
      conversionError(/evil\.bin: archive\/data\.pkl: unsupported pickle global os\.system/),
    );
  });
});

describe('pickle', () => {
  const expected = new Map<unknown, unknown>([
    ['a', 1],
    ['b', [1.5, true, null]],
    ['c', [1, 2, 3, 4]],
    ['big', 2 ** 40],
    ['neg', -5],
    ['n16', 40000],
    ['u', 'héllo'],
  ]);

  test('reads CPython protocol 2 and protocol 4 output', () => {
    // pickle.dumps(OrderedDict([...expected]), protocol=N)
    const p2 =
      '800263636f6c6c656374696f6e730a4f726465726564446963740a7100295271012858010000006171024b0158010000006271035d710428473ff8000000000000884e655801000000637105284b014b024b034b04747106580300000062696771078a0600000000000158030000006e656771084afbffffff58030000006e313671094d409c580100000075710a580600000068c3a96c6c6f710b752e';
    const p4 =
      '8004957b000000000000008c0b636f6c6c656374696f6e73948c0b4f72646572656444696374949394295294288c0161944b018c0162945d9428473ff8000000000000884e658c016394284b014b024b034b0474948c03626967948a060000000000018c036e6567944afbffffff8c036e3136944d409c8c0175948c0668c3a96c6c6f94752e';
    for (const hex of [p2, p4]) {
      const value = unpickle(Buffer.from(hex, 'hex'));
      assert.ok(value instanceof Map);
      assert.deepEqual(new Map(value), expected);
      assert.ok(Object.isFrozen(value.get('c')), 'tuples are frozen arrays');
      assert.ok(!Object.isFrozen(value.get('b')), 'lists are plain arrays');
    }
  });

  test('pickler output unpickles to the same values', () => {
    const written = pickle(
      new PyReduce(OrderedDict, new PyTuple([]), [
        ['a', 1],
        ['b', [1.5, true, null]],
        ['c', new PyTuple([1, 2, 3, 4])],
        ['big', 2 ** 40],
        ['neg', -5],
        ['n16', 40000],
        ['u', 'héllo'],
      ]),
    );
    assert.deepEqual(new Map(unpickle(written) as Map<unknown, unknown>), expected);
    assert.deepEqual(unpickle(pickle([-(2 ** 31), 2 ** 31, -(2 ** 53) + 1, 10n ** 30n, -(10n ** 30n)])), [
      -(2 ** 31),
      2 ** 31,
      -(2 ** 53) + 1,
      10n ** 30n,
      -(10n ** 30n),
    ]);
  });

  test('unknown opcodes and truncated data raise PickleError', () => {
    assert.throws(
      () => unpickle(Uint8Array.from([0x80, 0x02, 0x69])),
      (e: unknown) => e instanceof PickleError && /opcode 0x69/.test(e.message),
    );
    assert.throws(
      () => unpickle(Uint8Array.from([0x80, 0x02, 0x58, 0x10, 0, 0, 0, 0x41])),
      (e: unknown) => e instanceof PickleError && /truncated/.test(e.message),
    );
    assert.throws(
      () => unpickle(Uint8Array.from([0x80, 0x02, 0x4e])),
      (e: unknown) => e instanceof PickleError && /without STOP/.test(e.message),
    );
  });
});
