/**
 * Reads and writes PyTorch `torch.save` checkpoints (`pytorch_model.bin`) in the zip-based format
 * used since torch 1.6: `<prefix>/data.pkl` (a pickled state dict whose tensors point at storages via
 * persistent ids) plus one zip entry `<prefix>/data/<key>` of raw little-endian bytes per storage.
 *
 * The zip container is handled by `torch-zip.ts` and the pickle by the non-executing VM in
 * `pickle/reader.ts`; only state dicts of tensors are understood. Float tensors (fp32/fp16/bf16/fp64)
 * are widened to fp32; integer/bool tensors such as the `position_ids` buffer are skipped.
 */
import { closeSync, fstatSync, openSync } from 'node:fs';
import { ConversionError } from '../errors.js';
import { unpickle } from './pickle/reader.js';
import { PickleError, PickleGlobal, TorchTensorRef, type PickleValue } from './pickle/values.js';
import { PyPersistentId, PyReduce, PyTuple, pickle, type PyWritable } from './pickle/writer.js';
import { bytesPerElement, decodeFloatTensor, elementCount, type FloatTensor, type WeightMap } from './tensor.js';
import { TorchArchive, writeTorchArchive } from './torch-zip.js';

const DECODABLE_FLOATS = new Set(['float32', 'float16', 'bfloat16', 'float64']);

// ---------------------------------------------------------------------------------------------
// Reading

function findStateDict(root: PickleValue, fail: (problem: string) => never): Map<PickleValue, PickleValue> {
  if (!(root instanceof Map))
    fail(`data.pkl holds ${root === null ? 'None' : Array.isArray(root) ? 'a list' : typeof root}, not a state dict`);
  const hasTensor = (m: Map<PickleValue, PickleValue>) => [...m.values()].some((v) => v instanceof TorchTensorRef);
  if (hasTensor(root)) return root;
  // Training checkpoints often wrap the weights: {'state_dict': …} or {'model': …}.
  for (const key of ['state_dict', 'model', 'module']) {
    const inner = root.get(key);
    if (inner instanceof Map && hasTensor(inner)) return inner;
  }
  fail('data.pkl contains no tensors (not a model state dict)');
}

function isContiguous(shape: number[], stride: number[]): boolean {
  let expected = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && stride[d] !== expected) return false;
    expected *= shape[d];
  }
  return true;
}

/** Copies the elements of a strided view into a new contiguous row-major byte buffer. */
function gatherStrided(
  storage: Uint8Array,
  offset: number,
  shape: number[],
  stride: number[],
  elementSize: number,
): Uint8Array {
  const numel = elementCount(shape);
  const out = new Uint8Array(numel * elementSize);
  const rank = shape.length;
  const index = new Array<number>(rank).fill(0);
  let src = offset;
  for (let i = 0; i < numel; i++) {
    const s = src * elementSize;
    out.set(storage.subarray(s, s + elementSize), i * elementSize);
    // advance the odometer
    for (let d = rank - 1; d >= 0; d--) {
      index[d]++;
      src += stride[d];
      if (index[d] < shape[d]) break;
      src -= stride[d] * shape[d];
      index[d] = 0;
    }
  }
  return out;
}

/**
 * Reads a zip-format `torch.save` checkpoint into fp32 tensors keyed by state-dict name.
 * Non-float tensors are skipped. Keys whose tensors are the same view of one storage (tied weights
 * saved as one object) share a single `FloatTensor`.
 */
export function readTorchBin(path: string): WeightMap {
  const fail: (problem: string) => never = (problem) => {
    throw new ConversionError(path, problem);
  };
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConversionError(path, code === 'ENOENT' ? 'file not found' : `cannot open: ${(err as Error).message}`);
  }
  try {
    const fileSize = fstatSync(fd).size;
    if (fileSize === 0) fail('file is empty (truncated or corrupt)');
    const archive = TorchArchive.open(fd, fileSize, fail);
    const { prefix } = archive;

    let root: PickleValue;
    try {
      root = unpickle(archive.readDataPkl());
    } catch (err) {
      if (err instanceof PickleError) fail(`${prefix}data.pkl: ${err.message}`);
      throw err;
    }
    const stateDict = findStateDict(root, fail);

    // Group float tensors by storage so each storage is read once and released before the next.
    const byStorage = new Map<string, [string, TorchTensorRef][]>();
    for (const [key, value] of stateDict) {
      if (typeof key !== 'string' || !(value instanceof TorchTensorRef)) continue;
      if (!DECODABLE_FLOATS.has(value.dtype)) {
        if (value.dtype.startsWith('float8')) fail(`tensor '${key}' has dtype ${value.dtype}, which is not supported`);
        continue; // integer / bool / complex / quantized buffers (e.g. position_ids)
      }
      const group = byStorage.get(value.storage.key) ?? [];
      group.push([key, value]);
      byStorage.set(value.storage.key, group);
    }

    const decoded = new Map<string, FloatTensor>();
    for (const [storageKey, tensors] of byStorage) {
      const storage = archive.readStorage(storageKey);
      if (!storage) fail(`storage ${prefix}data/${storageKey} is missing from the archive (truncated or corrupt)`);
      const views = new Map<TorchTensorRef, FloatTensor>();
      for (const [key, ref] of tensors) {
        let tensor = views.get(ref);
        if (!tensor) {
          tensor = decodeView(storage, ref, key, storageKey, prefix, fail);
          views.set(ref, tensor);
        }
        decoded.set(key, tensor);
      }
    }
    // Preserve the checkpoint's key order.
    const out: WeightMap = new Map();
    for (const key of stateDict.keys()) {
      const t = typeof key === 'string' ? decoded.get(key) : undefined;
      if (t) out.set(key as string, t);
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

function decodeView(
  storage: Uint8Array,
  ref: TorchTensorRef,
  key: string,
  storageKey: string,
  prefix: string,
  fail: (problem: string) => never,
): FloatTensor {
  const elementSize = bytesPerElement[ref.dtype];
  const { shape, stride, storageOffset } = ref;
  if (shape.some((d) => d < 0) || stride.some((s) => s < 0) || storageOffset < 0)
    fail(`tensor '${key}' has a negative size, stride or offset`);
  const numel = elementCount(shape);
  if (numel === 0) return { shape: [...shape], data: new Float32Array(0), sourceDtype: ref.dtype };
  let last = storageOffset;
  for (let d = 0; d < shape.length; d++) last += (shape[d] - 1) * stride[d];
  const needed = (last + 1) * elementSize;
  if (needed > storage.length)
    fail(
      `tensor '${key}' needs ${needed} bytes of storage ${prefix}data/${storageKey} but it holds only ${storage.length} (truncated or corrupt)`,
    );
  const bytes = isContiguous(shape, stride)
    ? storage.subarray(storageOffset * elementSize, (storageOffset + numel) * elementSize)
    : gatherStrided(storage, storageOffset, shape, stride, elementSize);
  return { shape: [...shape], data: decodeFloatTensor(bytes, ref.dtype, numel), sourceDtype: ref.dtype };
}

// ---------------------------------------------------------------------------------------------
// Writing

function contiguousStride(shape: number[]): number[] {
  const stride = new Array<number>(shape.length);
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    stride[d] = s;
    s *= shape[d];
  }
  return stride;
}

function littleEndianBytes(data: Float32Array): Uint8Array {
  const hostIsLittle = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  if (hostIsLittle) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint8Array(data.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i], true);
  return out;
}

/**
 * Writes fp32 tensors as a torch.save checkpoint, matching what torch 2.x writes: entries
 * `archive/data.pkl` (protocol 2), `archive/byteorder`, `archive/data/<i>` (one FloatStorage per
 * tensor, 64-byte aligned), `archive/version`, all stored uncompressed.
 */
export function writeTorchBin(path: string, tensors: Map<string, { shape: number[]; data: Float32Array }>): void {
  const orderedDict = new PickleGlobal('collections', 'OrderedDict');
  const rebuild = new PickleGlobal('torch._utils', '_rebuild_tensor_v2');
  const floatStorage = new PickleGlobal('torch', 'FloatStorage');

  const items: [PyWritable, PyWritable][] = [];
  const storages: Uint8Array[] = [];
  for (const [key, { shape, data }] of tensors) {
    if (!shape.every((d) => Number.isInteger(d) && d >= 0))
      throw new Error(`tensor '${key}': invalid shape [${shape.join(', ')}]`);
    const numel = elementCount(shape);
    if (data.length !== numel)
      throw new Error(`tensor '${key}': shape [${shape.join(', ')}] needs ${numel} values but data has ${data.length}`);
    const storageKey = String(storages.length);
    storages.push(littleEndianBytes(data));
    const pid = new PyPersistentId(new PyTuple(['storage', floatStorage, storageKey, 'cpu', numel]));
    const args = new PyTuple([
      pid,
      0,
      new PyTuple(shape),
      new PyTuple(contiguousStride(shape)),
      false,
      new PyReduce(orderedDict, new PyTuple([])),
    ]);
    items.push([key, new PyReduce(rebuild, args)]);
  }
  const dataPkl = pickle(new PyReduce(orderedDict, new PyTuple([]), items));
  writeTorchArchive(path, dataPkl, storages);
}
