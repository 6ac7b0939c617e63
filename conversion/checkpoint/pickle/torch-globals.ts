/**
 * The short allow-list of Python globals the unpickler accepts when reading a `torch.save` state dict,
 * and how their calls are interpreted. Calls are never executed: `collections.OrderedDict` becomes a
 * `Map`, `torch._utils._rebuild_tensor_v2` (and friends) become `TorchTensorRef` descriptors, and
 * persistent ids `('storage', torch.FloatStorage, key, location, numel)` become `TorchStorageRef`s.
 * Anything else throws a `PickleError`.
 */
import {
  PickleError,
  PickleGlobal,
  TorchDtype,
  TorchStorageRef,
  TorchStorageType,
  TorchTensorRef,
  describe,
  isTuple,
  tuple,
  type PickleValue,
} from './values.js';

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

export function resolveGlobal(module: string, name: string): PickleGlobal {
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
export function callGlobal(callable: PickleValue, args: PickleValue): PickleValue {
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

export function persistentLoad(pid: PickleValue): PickleValue {
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
