/**
 * Reads and writes PyTorch `torch.save` checkpoints (`pytorch_model.bin`) in the zip-based format
 * used since torch 1.6: `<prefix>/data.pkl` (a pickled state dict whose tensors point at storages via
 * persistent ids) plus one zip entry `<prefix>/data/<key>` of raw little-endian bytes per storage.
 *
 * The pickle is interpreted by the non-executing VM in `pickle.ts`; only state dicts of tensors are
 * understood. Float tensors (fp32/fp16/bf16/fp64) are widened to fp32; integer/bool tensors such as
 * the `position_ids` buffer are skipped.
 */
import { closeSync, fstatSync, openSync, readSync, writeFileSync } from 'node:fs';
import { inflateSync, zipSync, type Zippable } from 'fflate';
import { ConversionError } from '../errors.js';
import {
  PickleError,
  PickleGlobal,
  PyPersistentId,
  PyReduce,
  PyTuple,
  TorchTensorRef,
  pickle,
  unpickle,
  type PickleValue,
  type PyWritable,
} from './pickle.js';
import { bytesPerElement, decodeFloatTensor, elementCount, type FloatTensor, type WeightMap } from './tensor.js';

const DECODABLE_FLOATS = new Set(['float32', 'float16', 'bfloat16', 'float64']);
const LEGACY_HINT =
  'legacy (pre-1.6, non-zip) torch.save format is not supported; re-save it with a current PyTorch: torch.save(torch.load(path), path)';

// ---------------------------------------------------------------------------------------------
// Zip reading (random access through a file descriptor, so storages are read one at a time)

interface ZipEntry {
  name: string;
  method: number;
  flags: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

class ZipFile {
  readonly entries = new Map<string, ZipEntry>();

  constructor(
    private readonly fd: number,
    readonly fileSize: number,
    private readonly fail: (problem: string) => never,
  ) {}

  readAt(position: number, length: number): Uint8Array {
    if (position < 0 || position + length > this.fileSize)
      this.fail('zip archive is truncated or corrupt (entry data runs past the end of the file)');
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, buf, done, length - done, position + done);
      if (n === 0) this.fail('zip archive is truncated or corrupt (unexpected end of file)');
      done += n;
    }
    return new Uint8Array(buf.buffer, buf.byteOffset, length);
  }

  /** Parses the end-of-central-directory record (zip64 aware) and the central directory. */
  readDirectory(): void {
    const tailLength = Math.min(this.fileSize, 22 + 0xffff);
    const tailStart = this.fileSize - tailLength;
    const tail = this.readAt(tailStart, tailLength);
    const tv = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
    let eocd = -1;
    for (let i = tailLength - 22; i >= 0; i--) {
      if (tv.getUint32(i, true) === 0x06054b50 && i + 22 + tv.getUint16(i + 20, true) === tailLength) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) this.fail('zip archive is truncated or corrupt (no end-of-central-directory record)');
    let count = tv.getUint16(eocd + 10, true);
    let cdSize = tv.getUint32(eocd + 12, true);
    let cdOffset = tv.getUint32(eocd + 16, true);
    const eocdAbs = tailStart + eocd;
    if (eocd >= 20 && tv.getUint32(eocd - 20, true) === 0x07064b50) {
      const z64Offset = Number(tv.getBigUint64(eocd - 12, true));
      const rec = this.readAt(z64Offset, 56);
      const rv = new DataView(rec.buffer, rec.byteOffset, rec.byteLength);
      if (rv.getUint32(0, true) !== 0x06064b50)
        this.fail('zip archive is truncated or corrupt (bad zip64 end-of-central-directory record)');
      count = Number(rv.getBigUint64(32, true));
      cdSize = Number(rv.getBigUint64(40, true));
      cdOffset = Number(rv.getBigUint64(48, true));
    }
    if (cdOffset + cdSize > eocdAbs) this.fail('zip archive is truncated or corrupt (central directory out of range)');
    const cd = this.readAt(cdOffset, cdSize);
    const cv = new DataView(cd.buffer, cd.byteOffset, cd.byteLength);
    const decoder = new TextDecoder();
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (p + 46 > cdSize || cv.getUint32(p, true) !== 0x02014b50)
        this.fail('zip archive is truncated or corrupt (bad central directory entry)');
      const flags = cv.getUint16(p + 8, true);
      const method = cv.getUint16(p + 10, true);
      let compressedSize = cv.getUint32(p + 20, true);
      let size = cv.getUint32(p + 24, true);
      const nameLength = cv.getUint16(p + 28, true);
      const extraLength = cv.getUint16(p + 30, true);
      const commentLength = cv.getUint16(p + 32, true);
      let localHeaderOffset = cv.getUint32(p + 42, true);
      if (p + 46 + nameLength + extraLength > cdSize)
        this.fail('zip archive is truncated or corrupt (bad central directory entry)');
      const name = decoder.decode(cd.subarray(p + 46, p + 46 + nameLength));
      // zip64 extended information: only the fields saturated in the fixed header are present, in order.
      let e = p + 46 + nameLength;
      const extraEnd = e + extraLength;
      while (e + 4 <= extraEnd) {
        const id = cv.getUint16(e, true);
        const len = cv.getUint16(e + 2, true);
        if (id === 0x0001) {
          let q = e + 4;
          const next = (): number => {
            const v = Number(cv.getBigUint64(q, true));
            q += 8;
            return v;
          };
          if (size === 0xffffffff) size = next();
          if (compressedSize === 0xffffffff) compressedSize = next();
          if (localHeaderOffset === 0xffffffff) localHeaderOffset = next();
        }
        e += 4 + len;
      }
      this.entries.set(name, { name, method, flags, compressedSize, size, localHeaderOffset });
      p += 46 + nameLength + extraLength + commentLength;
    }
  }

  read(entry: ZipEntry): Uint8Array {
    if (entry.flags & 1) this.fail(`zip entry ${entry.name} is encrypted`);
    const header = this.readAt(entry.localHeaderOffset, 30);
    const hv = new DataView(header.buffer, header.byteOffset, 30);
    if (hv.getUint32(0, true) !== 0x04034b50)
      this.fail(`zip archive is truncated or corrupt (bad local header for ${entry.name})`);
    const dataStart = entry.localHeaderOffset + 30 + hv.getUint16(26, true) + hv.getUint16(28, true);
    const raw = this.readAt(dataStart, entry.compressedSize);
    if (entry.method === 0) return raw;
    if (entry.method === 8) {
      try {
        const out = inflateSync(raw, { out: new Uint8Array(entry.size) });
        if (out.length !== entry.size) throw new Error('size mismatch');
        return out;
      } catch {
        this.fail(`zip archive is truncated or corrupt (cannot inflate ${entry.name})`);
      }
    }
    this.fail(`zip entry ${entry.name} uses unsupported compression method ${entry.method}`);
  }
}

function startsWith(bytes: Uint8Array, ascii: string, at = 0): boolean {
  if (bytes.length < at + ascii.length) return false;
  for (let i = 0; i < ascii.length; i++) if (bytes[at + i] !== ascii.charCodeAt(i)) return false;
  return true;
}

/** Explains a file that is not a zip: legacy torch formats, safetensors, or junk. */
function diagnoseNonZip(head: Uint8Array): string {
  if (head.length >= 2 && head[0] === 0x80 && head[1] <= 5) return LEGACY_HINT;
  if (startsWith(head, 'ustar', 257)) return LEGACY_HINT;
  if (head.length >= 9) {
    const headerLength = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
    if (head[8] === 0x7b && headerLength > 1n && headerLength < 100_000_000n)
      return 'this is a safetensors file, not a PyTorch .bin checkpoint (read it as safetensors)';
  }
  return 'not a PyTorch zip checkpoint: the file is truncated or corrupt (no zip signature)';
}

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
    const zip = new ZipFile(fd, fileSize, fail);
    const head = zip.readAt(0, Math.min(fileSize, 512));
    if (!startsWith(head, 'PK\x03\x04') && !startsWith(head, 'PK\x05\x06')) fail(diagnoseNonZip(head));
    zip.readDirectory();

    const pklNames = [...zip.entries.keys()]
      .filter((n) => n === 'data.pkl' || n.endsWith('/data.pkl'))
      .sort((a, b) => a.length - b.length);
    if (pklNames.length === 0) fail('missing data.pkl: this zip is not a torch.save checkpoint');
    const prefix = pklNames[0].slice(0, -'data.pkl'.length);

    const byteorderEntry = zip.entries.get(`${prefix}byteorder`);
    if (byteorderEntry) {
      const order = new TextDecoder().decode(zip.read(byteorderEntry)).trim();
      if (order !== 'little') fail(`byteorder is '${order}'; only little-endian checkpoints are supported`);
    }

    let root: PickleValue;
    try {
      root = unpickle(zip.read(zip.entries.get(pklNames[0])!));
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
      const entry = zip.entries.get(`${prefix}data/${storageKey}`);
      if (!entry) fail(`storage ${prefix}data/${storageKey} is missing from the archive (truncated or corrupt)`);
      const storage = zip.read(entry);
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

const FIELD_ALIGNMENT = 64; // torch's PyTorchStreamWriter aligns record data to 64 bytes
const PAD_FIELD_ID = 0x4246; // 'FB', the extra-field id torch uses for that padding

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

  const enc = new TextEncoder();
  const files: [string, Uint8Array][] = [
    ['archive/data.pkl', dataPkl],
    ['archive/byteorder', enc.encode('little')],
    ...storages.map((bytes, i): [string, Uint8Array] => [`archive/data/${i}`, bytes]),
    ['archive/version', enc.encode('3\n')],
  ];
  // Lay the entries out as fflate will (local header = 30 + name + extra, then the data) and pad each
  // header's extra field so the data starts on a 64-byte boundary, like torch does.
  const zippable: Zippable = {};
  let offset = 0;
  for (const [name, bytes] of files) {
    const nameLength = enc.encode(name).length;
    const unpadded = offset + 30 + nameLength + 4;
    const pad = (FIELD_ALIGNMENT - (unpadded % FIELD_ALIGNMENT)) % FIELD_ALIGNMENT;
    zippable[name] = [
      bytes,
      { level: 0, mtime: new Date(1980, 0, 1), extra: { [PAD_FIELD_ID]: new Uint8Array(pad).fill(0x5a) } },
    ];
    offset = unpadded + pad + bytes.length;
  }
  if (offset > 0xfffffff0) throw new Error(`checkpoint too large for a non-zip64 archive (${offset} bytes)`);
  writeFileSync(path, zipSync(zippable));
}
