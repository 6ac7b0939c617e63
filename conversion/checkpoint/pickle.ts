/**
 * A minimal, non-executing pickle VM and pickler for PyTorch `torch.save` state dicts.
 *
 * The unpickler understands the opcodes that `pickle` emits for protocols 2..5 when torch pickles a
 * state dict, and a short allow-list of globals. Calls are never executed: `collections.OrderedDict`
 * becomes a `Map`, `torch._utils._rebuild_tensor_v2` (and friends) become `TorchTensorRef`
 * descriptors, and persistent ids `('storage', torch.FloatStorage, key, location, numel)` become
 * `TorchStorageRef`s. Anything else (an unknown opcode or global) throws a `PickleError`.
 *
 * The pickler writes protocol 2 for the same small value model (see `PyWritable`).
 */

export class PickleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PickleError';
  }
}

/** A torch storage named by a persistent id; its bytes live in the zip entry `data/<key>`. */
export class TorchStorageRef {
  constructor(
    readonly key: string,
    /** torch dtype name ('float32', 'float16', 'int64', …); 'uint8' for an untyped storage. */
    readonly dtype: string,
    readonly location: string,
    /** Element count of the storage in units of `dtype` (bytes for an untyped storage). */
    readonly numel: number,
  ) {}
}

/** A tensor view onto a storage, as described by `_rebuild_tensor_v2` / `_rebuild_tensor_v3`. */
export class TorchTensorRef {
  constructor(
    readonly storage: TorchStorageRef,
    /** Offset into the storage, in elements of `dtype`. */
    readonly storageOffset: number,
    readonly shape: number[],
    /** Strides in elements of `dtype`. */
    readonly stride: number[],
    readonly dtype: string,
    readonly requiresGrad: boolean,
  ) {}
}

/** A Python global (class or function) referenced by the pickle; only allow-listed ones are created. */
export class PickleGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

/** A torch storage class such as `torch.FloatStorage` (dtype 'uint8' and `untyped` for UntypedStorage). */
export class TorchStorageType extends PickleGlobal {
  constructor(
    module: string,
    name: string,
    readonly dtype: string,
    readonly untyped: boolean,
  ) {
    super(module, name);
  }
}

/** A torch dtype object such as `torch.float16`. */
export class TorchDtype extends PickleGlobal {
  constructor(name: string) {
    super('torch', name);
  }
  get dtype(): string {
    return this.name;
  }
}

/**
 * Values produced by the unpickler. Tuples are frozen arrays (`Object.isFrozen`), lists are plain
 * arrays, dicts and OrderedDicts are `Map`s, `bytes` are `Uint8Array`s. Integers beyond 2^53 stay bigint.
 */
export type PickleValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PickleValue[]
  | readonly PickleValue[]
  | Map<PickleValue, PickleValue>
  | PickleGlobal
  | TorchStorageRef
  | TorchTensorRef;

/** torch.<X>Storage class names → dtype. */
const STORAGE_DTYPES: Record<string, string> = {
  FloatStorage: 'float32',
  DoubleStorage: 'float64',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
  ComplexFloatStorage: 'complex64',
  ComplexDoubleStorage: 'complex128',
  QInt8Storage: 'qint8',
  QUInt8Storage: 'quint8',
  QInt32Storage: 'qint32',
  QUInt4x2Storage: 'quint4x2',
  QUInt2x4Storage: 'quint2x4',
};

const TORCH_DTYPES = new Set([
  'float32',
  'float64',
  'float16',
  'bfloat16',
  'int64',
  'int32',
  'int16',
  'int8',
  'uint8',
  'uint16',
  'uint32',
  'uint64',
  'bool',
  'complex32',
  'complex64',
  'complex128',
  'float8_e4m3fn',
  'float8_e5m2',
  'float8_e4m3fnuz',
  'float8_e5m2fnuz',
  'qint8',
  'quint8',
  'qint32',
  'quint4x2',
  'quint2x4',
]);

/** Legacy aliases torch may pickle a dtype under. */
const DTYPE_ALIASES: Record<string, string> = {
  float: 'float32',
  double: 'float64',
  half: 'float16',
  long: 'int64',
  int: 'int32',
  short: 'int16',
};

function resolveGlobal(module: string, name: string): PickleGlobal {
  const qualified = `${module}.${name}`;
  switch (qualified) {
    case 'collections.OrderedDict':
    case 'builtins.dict':
    case 'torch._utils._rebuild_tensor_v2':
    case 'torch._utils._rebuild_tensor_v3':
    case 'torch._utils._rebuild_parameter':
    case 'torch._utils._rebuild_parameter_with_state':
    case 'torch._tensor._rebuild_from_type_v2':
    case 'torch.Tensor':
    case 'torch._tensor.Tensor':
    case 'torch.nn.parameter.Parameter':
    case 'torch.Size':
    case 'torch.device':
    case '_codecs.encode':
      return new PickleGlobal(module, name);
    case 'torch.UntypedStorage':
    case 'torch.storage.UntypedStorage':
    case 'torch.storage._UntypedStorage':
      return new TorchStorageType(module, name, 'uint8', true);
  }
  if (module === 'torch') {
    const storageDtype = STORAGE_DTYPES[name];
    if (storageDtype) return new TorchStorageType(module, name, storageDtype, false);
    if (TORCH_DTYPES.has(name)) return new TorchDtype(name);
    if (DTYPE_ALIASES[name]) return new TorchDtype(DTYPE_ALIASES[name]);
  }
  throw new PickleError(
    `unsupported pickle global ${qualified} (only PyTorch tensor state dicts can be read; arbitrary objects are never executed)`,
  );
}

function isTuple(v: unknown): v is readonly PickleValue[] {
  return Array.isArray(v) && Object.isFrozen(v);
}

function tuple(items: PickleValue[]): readonly PickleValue[] {
  return Object.freeze(items);
}

function asInt(v: unknown, what: string): number {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'bigint') {
    const n = Number(v);
    if (Number.isSafeInteger(n)) return n;
  }
  throw new PickleError(`${what}: expected an integer, got ${describe(v)}`);
}

function asIntTuple(v: unknown, what: string): number[] {
  if (!Array.isArray(v)) throw new PickleError(`${what}: expected a tuple of integers, got ${describe(v)}`);
  return v.map((x, i) => asInt(x, `${what}[${i}]`));
}

function describe(v: unknown): string {
  if (v === null) return 'None';
  if (v instanceof PickleGlobal) return v.qualifiedName;
  if (v instanceof TorchTensorRef) return 'tensor';
  if (v instanceof TorchStorageRef) return 'storage';
  if (v instanceof Map) return 'dict';
  if (v instanceof Uint8Array) return 'bytes';
  if (isTuple(v)) return 'tuple';
  if (Array.isArray(v)) return 'list';
  return typeof v;
}

function rebuildTensor(args: readonly PickleValue[], dtypeOverride: boolean, fn: string): TorchTensorRef {
  const minArgs = dtypeOverride ? 7 : 6;
  if (args.length < minArgs) throw new PickleError(`${fn}: expected at least ${minArgs} arguments, got ${args.length}`);
  const storage = args[0];
  if (!(storage instanceof TorchStorageRef))
    throw new PickleError(`${fn}: first argument is ${describe(storage)}, not a storage`);
  const offset = asInt(args[1], `${fn} storage_offset`);
  const shape = asIntTuple(args[2], `${fn} size`);
  const stride = asIntTuple(args[3], `${fn} stride`);
  if (shape.length !== stride.length)
    throw new PickleError(`${fn}: size has ${shape.length} dims but stride has ${stride.length}`);
  let dtype = storage.dtype;
  if (dtypeOverride) {
    const d = args[6];
    if (!(d instanceof TorchDtype)) throw new PickleError(`${fn}: dtype argument is ${describe(d)}`);
    dtype = d.dtype;
  }
  return new TorchTensorRef(storage, offset, shape, stride, dtype, args[4] === true);
}

/** Applies an allow-listed callable to its (already unpickled) arguments. Never runs user code. */
function callGlobal(callable: PickleValue, args: PickleValue): PickleValue {
  if (!(callable instanceof PickleGlobal))
    throw new PickleError(`REDUCE on ${describe(callable)}, which is not callable`);
  if (!isTuple(args))
    throw new PickleError(`REDUCE arguments for ${callable.qualifiedName} are ${describe(args)}, not a tuple`);
  const fn = callable.qualifiedName;
  switch (fn) {
    case 'collections.OrderedDict':
    case 'builtins.dict': {
      const out = new Map<PickleValue, PickleValue>();
      const init = args[0];
      if (init instanceof Map) for (const [k, v] of init) out.set(k, v);
      else if (Array.isArray(init))
        for (const pair of init) {
          if (!Array.isArray(pair) || pair.length !== 2) throw new PickleError(`${fn}: initial items must be pairs`);
          out.set(pair[0], pair[1]);
        }
      else if (init !== undefined && init !== null)
        throw new PickleError(`${fn}: unsupported initializer ${describe(init)}`);
      return out;
    }
    case 'torch._utils._rebuild_tensor_v2':
      return rebuildTensor(args, false, fn);
    case 'torch._utils._rebuild_tensor_v3':
      return rebuildTensor(args, true, fn);
    case 'torch._utils._rebuild_parameter':
    case 'torch._utils._rebuild_parameter_with_state': {
      const data = args[0];
      if (!(data instanceof TorchTensorRef)) throw new PickleError(`${fn}: data is ${describe(data)}, not a tensor`);
      return data;
    }
    case 'torch._tensor._rebuild_from_type_v2': {
      // (func, new_type, args, state): a Tensor/Parameter rebuilt by func(*args); the Python state is dropped.
      const [func, newType, innerArgs] = args;
      if (
        !(newType instanceof PickleGlobal) ||
        !/^(torch\.Tensor|torch\._tensor\.Tensor|torch\.nn\.parameter\.Parameter)$/.test(newType.qualifiedName)
      )
        throw new PickleError(`${fn}: unsupported tensor subclass ${describe(newType)}`);
      return callGlobal(func, innerArgs);
    }
    case 'torch.Size':
      return tuple(asIntTuple(args[0] ?? [], fn));
    case 'torch.device':
      if (typeof args[0] !== 'string') throw new PickleError(`${fn}: expected a device string`);
      return args[1] === undefined ? args[0] : `${args[0]}:${asInt(args[1], fn)}`;
    case '_codecs.encode': {
      const [text, encoding] = args;
      if (typeof text !== 'string' || (encoding !== 'latin1' && encoding !== 'latin-1'))
        throw new PickleError(`${fn}: only latin1-encoded strings are supported`);
      return Uint8Array.from(text, (c) => c.charCodeAt(0) & 0xff);
    }
  }
  throw new PickleError(`${fn} cannot be called while unpickling a state dict`);
}

function persistentLoad(pid: PickleValue): PickleValue {
  if (!isTuple(pid) || pid[0] !== 'storage')
    throw new PickleError(
      `unsupported persistent id ${describe(pid)}${isTuple(pid) ? ` '${String(pid[0])}'` : ''} (expected a torch storage)`,
    );
  if (pid.length < 5) throw new PickleError(`storage persistent id has ${pid.length} fields, expected 5`);
  const [, type, key, location, numel] = pid;
  if (!(type instanceof TorchStorageType))
    throw new PickleError(`storage persistent id names ${describe(type)}, not a torch storage type`);
  if (typeof key !== 'string' && typeof key !== 'number') throw new PickleError(`storage key is ${describe(key)}`);
  return new TorchStorageRef(
    String(key),
    type.dtype,
    typeof location === 'string' ? location : String(location),
    asInt(numel, 'storage numel'),
  );
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const latin1 = new TextDecoder('latin1');

/** Unpickles `bytes` (protocols 2..5, the torch.save subset). Throws `PickleError` on anything unsupported. */
export function unpickle(bytes: Uint8Array): PickleValue {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  let stack: PickleValue[] = [];
  const metastack: PickleValue[][] = [];
  const memo = new Map<number, PickleValue>();

  const need = (n: number): number => {
    if (pos + n > bytes.length)
      throw new PickleError(`pickle data ends unexpectedly at byte ${bytes.length} (truncated)`);
    const p = pos;
    pos += n;
    return p;
  };
  const u8 = () => bytes[need(1)];
  const u16 = () => view.getUint16(need(2), true);
  const u32 = () => view.getUint32(need(4), true);
  const i32 = () => view.getInt32(need(4), true);
  const u64 = (): number => {
    const p = need(8);
    const v = view.getBigUint64(p, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new PickleError(`length ${v} too large`);
    return Number(v);
  };
  const take = (n: number): Uint8Array => {
    const p = need(n);
    return bytes.subarray(p, p + n);
  };
  const readLine = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) throw new PickleError('pickle data ends inside a text field (truncated)');
    const s = latin1.decode(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const decodeUtf8 = (b: Uint8Array): string => {
    try {
      return utf8.decode(b);
    } catch {
      throw new PickleError('invalid UTF-8 in a pickled string');
    }
  };
  const pop = (): PickleValue => {
    if (stack.length === 0) throw new PickleError('pickle stack underflow');
    return stack.pop()!;
  };
  const top = (): PickleValue => {
    if (stack.length === 0) throw new PickleError('pickle stack underflow');
    return stack[stack.length - 1];
  };
  const popMark = (): PickleValue[] => {
    const items = stack;
    const prev = metastack.pop();
    if (!prev) throw new PickleError('no MARK on the pickle stack');
    stack = prev;
    return items;
  };
  const push = (v: PickleValue) => void stack.push(v);
  const longFromBytes = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    const n = Number(v);
    return Number.isSafeInteger(n) ? n : v;
  };
  const setItems = (target: PickleValue, items: PickleValue[]) => {
    if (!(target instanceof Map)) throw new PickleError(`SETITEM(S) on ${describe(target)}, not a dict`);
    if (items.length % 2) throw new PickleError('SETITEMS with an odd number of items');
    for (let i = 0; i < items.length; i += 2) target.set(items[i], items[i + 1]);
  };
  const appendItems = (target: PickleValue, items: PickleValue[]) => {
    if (!Array.isArray(target) || isTuple(target))
      throw new PickleError(`APPEND(S) on ${describe(target)}, not a list`);
    (target as PickleValue[]).push(...items);
  };

  for (;;) {
    if (pos >= bytes.length) throw new PickleError('pickle data ends without STOP (truncated)');
    const at = pos;
    const op = bytes[pos++];
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) throw new PickleError(`unsupported pickle protocol ${bytes[pos - 1]}`);
        break;
      case 0x95: // FRAME
        u64();
        break;
      case 0x2e: // STOP
        return pop();
      case 0x28: // MARK
        metastack.push(stack);
        stack = [];
        break;
      case 0x7d: // EMPTY_DICT
        push(new Map());
        break;
      case 0x5d: // EMPTY_LIST
        push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        push(tuple([]));
        break;
      case 0x64: {
        // DICT
        const m = new Map<PickleValue, PickleValue>();
        setItems(m, popMark());
        push(m);
        break;
      }
      case 0x6c: // LIST
        push(popMark());
        break;
      case 0x74: // TUPLE
        push(tuple(popMark()));
        break;
      case 0x85: // TUPLE1
        push(tuple([pop()]));
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        const a = pop();
        push(tuple([a, b]));
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        const a = pop();
        push(tuple([a, b, c]));
        break;
      }
      case 0x58: // BINUNICODE
        push(decodeUtf8(take(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        push(decodeUtf8(take(u8())));
        break;
      case 0x8d: // BINUNICODE8
        push(decodeUtf8(take(u64())));
        break;
      case 0x54: // BINSTRING
        push(latin1.decode(take(i32())));
        break;
      case 0x55: // SHORT_BINSTRING
        push(latin1.decode(take(u8())));
        break;
      case 0x42: // BINBYTES
        push(take(u32()).slice());
        break;
      case 0x43: // SHORT_BINBYTES
        push(take(u8()).slice());
        break;
      case 0x8e: // BINBYTES8
      case 0x96: // BYTEARRAY8
        push(take(u64()).slice());
        break;
      case 0x4a: // BININT
        push(i32());
        break;
      case 0x4b: // BININT1
        push(u8());
        break;
      case 0x4d: // BININT2
        push(u16());
        break;
      case 0x8a: // LONG1
        push(longFromBytes(take(u8())));
        break;
      case 0x8b: {
        // LONG4
        const n = i32();
        if (n < 0) throw new PickleError('negative LONG4 length');
        push(longFromBytes(take(n)));
        break;
      }
      case 0x47: // BINFLOAT (big-endian)
        push(view.getFloat64(need(8), false));
        break;
      case 0x88: // NEWTRUE
        push(true);
        break;
      case 0x89: // NEWFALSE
        push(false);
        break;
      case 0x4e: // NONE
        push(null);
        break;
      case 0x63: {
        // GLOBAL
        const module = readLine();
        const name = readLine();
        push(resolveGlobal(module, name));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string')
          throw new PickleError('STACK_GLOBAL needs two strings');
        push(resolveGlobal(module, name));
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const idx = op === 0x68 ? u8() : u32();
        if (!memo.has(idx)) throw new PickleError(`pickle memo has no entry ${idx}`);
        push(memo.get(idx)!);
        break;
      }
      case 0x30: // POP
        if (stack.length === 0) throw new PickleError('pickle stack underflow');
        stack.pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        push(top());
        break;
      case 0x52: {
        // REDUCE
        const args = pop();
        const callable = pop();
        push(callGlobal(callable, args));
        break;
      }
      case 0x81: {
        // NEWOBJ: cls.__new__(cls, *args) — only for dict-like classes
        const args = pop();
        const cls = pop();
        if (!(cls instanceof PickleGlobal) || !/^(collections\.OrderedDict|builtins\.dict)$/.test(cls.qualifiedName))
          throw new PickleError(`NEWOBJ of ${describe(cls)} is not supported`);
        if (!isTuple(args)) throw new PickleError('NEWOBJ arguments are not a tuple');
        push(new Map());
        break;
      }
      case 0x92: {
        // NEWOBJ_EX
        pop(); // kwargs
        pop(); // args
        const cls = pop();
        if (!(cls instanceof PickleGlobal) || !/^(collections\.OrderedDict|builtins\.dict)$/.test(cls.qualifiedName))
          throw new PickleError(`NEWOBJ_EX of ${describe(cls)} is not supported`);
        push(new Map());
        break;
      }
      case 0x62: {
        // BUILD: setstate. Only dicts (e.g. a state dict's `_metadata`) and tensors; the state is dropped.
        const state = pop();
        const target = top();
        if (!(target instanceof Map) && !(target instanceof TorchTensorRef))
          throw new PickleError(`BUILD on ${describe(target)} is not supported`);
        void state;
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x61: {
        // APPEND
        const v = pop();
        appendItems(top(), [v]);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        appendItems(top(), items);
        break;
      }
      case 0x51: // BINPERSID
        push(persistentLoad(pop()));
        break;
      default:
        throw new PickleError(`unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')} at byte ${at}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Pickler (protocol 2)

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
