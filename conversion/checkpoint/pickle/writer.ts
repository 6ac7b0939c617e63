/**
 * A protocol-2 pickler for the small value model torch state dicts need (see `PyWritable`), writing
 * what `pickle.dumps(value, protocol=2)` would.
 */
import { PickleError, PickleGlobal } from './values.js';

/** A Python tuple for the pickler (plain JS arrays pickle as lists). */
export class PyTuple {
  constructor(readonly items: PyWritable[]) {}
}

/** A float that should be pickled as a float even if its value is integral. */
export class PyFloat {
  constructor(readonly value: number) {}
}

/** `callable(*args)`, optionally followed by dict items (SETITEMS), as `__reduce__` would produce. */
export class PyReduce {
  constructor(
    readonly callable: PickleGlobal,
    readonly args: PyTuple,
    readonly dictItems?: Iterable<[PyWritable, PyWritable]>,
  ) {}
}

/** A persistent id (BINPERSID), e.g. torch's `('storage', torch.FloatStorage, key, 'cpu', numel)`. */
export class PyPersistentId {
  constructor(readonly pid: PyWritable) {}
}

/** Values the pickler can write. Integral JS numbers become ints, others floats. */
export type PyWritable =
  | null
  | boolean
  | number
  | bigint
  | string
  | PyWritable[]
  | Map<PyWritable, PyWritable>
  | PickleGlobal
  | PyTuple
  | PyFloat
  | PyReduce
  | PyPersistentId;

class ByteSink {
  private buf = new Uint8Array(1024);
  private view = new DataView(this.buf.buffer);
  length = 0;
  private ensure(n: number) {
    if (this.length + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  byte(b: number) {
    this.ensure(1);
    this.buf[this.length++] = b;
  }
  bytes(b: Uint8Array) {
    this.ensure(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  u16(v: number) {
    this.ensure(2);
    this.view.setUint16(this.length, v, true);
    this.length += 2;
  }
  u32(v: number) {
    this.ensure(4);
    this.view.setUint32(this.length, v, true);
    this.length += 4;
  }
  i32(v: number) {
    this.ensure(4);
    this.view.setInt32(this.length, v, true);
    this.length += 4;
  }
  f64be(v: number) {
    this.ensure(8);
    this.view.setFloat64(this.length, v, false);
    this.length += 8;
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

const utf8Encoder = new TextEncoder();

function writeLong(out: ByteSink, v: bigint) {
  // LONG1: little-endian two's complement, minimal length.
  const bytes: number[] = [];
  let x = v;
  for (;;) {
    const b = Number(x & 0xffn);
    bytes.push(b);
    x >>= 8n;
    if ((x === 0n && !(b & 0x80)) || (x === -1n && b & 0x80)) break;
  }
  if (bytes.length > 255) throw new PickleError('integer too large to pickle');
  out.byte(0x8a);
  out.byte(bytes.length);
  for (const b of bytes) out.byte(b);
}

type Memo = Map<object, number>;

function writeMemoGet(out: ByteSink, index: number) {
  if (index < 256) {
    out.byte(0x68);
    out.byte(index);
  } else {
    out.byte(0x6a);
    out.u32(index);
  }
}

function writeMemoPut(out: ByteSink, memo: Memo, obj: object) {
  const index = memo.size;
  memo.set(obj, index);
  if (index < 256) {
    out.byte(0x71);
    out.byte(index);
  } else {
    out.byte(0x72);
    out.u32(index);
  }
}

/**
 * Writes one value. Object nodes (globals, tuples, lists, dicts, reduce results) are memoized by
 * identity like CPython does, so a JS object written twice unpickles as one shared Python object.
 */
function writeValue(out: ByteSink, v: PyWritable, memo: Memo): void {
  if (typeof v === 'object' && v !== null && !(v instanceof PyFloat) && !(v instanceof PyPersistentId)) {
    const index = memo.get(v);
    if (index !== undefined) return writeMemoGet(out, index);
  }
  if (v === null) return out.byte(0x4e);
  if (v === true) return out.byte(0x88);
  if (v === false) return out.byte(0x89);
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) {
      out.byte(0x47);
      return out.f64be(v);
    }
    if (v >= 0 && v <= 0xff) {
      out.byte(0x4b);
      return out.byte(v);
    }
    if (v >= 0 && v <= 0xffff) {
      out.byte(0x4d);
      return out.u16(v);
    }
    if (v >= -0x80000000 && v <= 0x7fffffff) {
      out.byte(0x4a);
      return out.i32(v);
    }
    if (!Number.isSafeInteger(v)) throw new PickleError(`integer ${v} is not exactly representable`);
    return writeLong(out, BigInt(v));
  }
  if (typeof v === 'bigint') {
    if (v >= -0x80000000n && v <= 0x7fffffffn) return writeValue(out, Number(v), memo);
    return writeLong(out, v);
  }
  if (typeof v === 'string') {
    const b = utf8Encoder.encode(v);
    out.byte(0x58);
    out.u32(b.length);
    return out.bytes(b);
  }
  if (v instanceof PyFloat) {
    out.byte(0x47);
    return out.f64be(v.value);
  }
  if (v instanceof PickleGlobal) {
    if (v.module.includes('\n') || v.name.includes('\n')) throw new PickleError('invalid global name');
    out.byte(0x63);
    out.bytes(utf8Encoder.encode(`${v.module}\n${v.name}\n`));
    return writeMemoPut(out, memo, v);
  }
  if (v instanceof PyTuple) {
    const n = v.items.length;
    if (n === 0) return out.byte(0x29);
    if (n <= 3) {
      for (const item of v.items) writeValue(out, item, memo);
      out.byte([0x85, 0x86, 0x87][n - 1]);
    } else {
      out.byte(0x28);
      for (const item of v.items) writeValue(out, item, memo);
      out.byte(0x74);
    }
    return writeMemoPut(out, memo, v);
  }
  if (v instanceof PyPersistentId) {
    writeValue(out, v.pid, memo);
    return out.byte(0x51);
  }
  if (v instanceof PyReduce) {
    writeValue(out, v.callable, memo);
    writeValue(out, v.args, memo);
    out.byte(0x52);
    writeMemoPut(out, memo, v);
    if (v.dictItems) writeSetItems(out, v.dictItems, memo);
    return;
  }
  if (Array.isArray(v)) {
    out.byte(0x5d);
    writeMemoPut(out, memo, v);
    for (let i = 0; i < v.length; i += 1000) {
      out.byte(0x28);
      for (const item of v.slice(i, i + 1000)) writeValue(out, item, memo);
      out.byte(0x65);
    }
    return;
  }
  if (v instanceof Map) {
    out.byte(0x7d);
    writeMemoPut(out, memo, v);
    return writeSetItems(out, v, memo);
  }
  throw new PickleError(`cannot pickle ${typeof v}`);
}

/** Batched SETITEMS (1000 per batch, like CPython) onto the dict on top of the stack. */
function writeSetItems(out: ByteSink, items: Iterable<[PyWritable, PyWritable]>, memo: Memo) {
  let open = 0;
  for (const [k, val] of items) {
    if (open === 0) out.byte(0x28);
    writeValue(out, k, memo);
    writeValue(out, val, memo);
    if (++open === 1000) {
      out.byte(0x75);
      open = 0;
    }
  }
  if (open) out.byte(0x75);
}

/** Pickles `value` with protocol 2 (PROTO 2 … STOP), as `pickle.dumps(value, protocol=2)` would. */
export function pickle(value: PyWritable): Uint8Array {
  const out = new ByteSink();
  out.byte(0x80);
  out.byte(2);
  writeValue(out, value, new Map());
  out.byte(0x2e);
  return out.result();
}
