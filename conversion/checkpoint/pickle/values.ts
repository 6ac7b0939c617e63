/**
 * The value model shared by the unpickler (`reader.ts`) and the pickler (`writer.ts`): the error type,
 * the torch-specific objects the unpickler produces instead of executing calls, and small helpers for
 * inspecting unpickled values.
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

export function isTuple(v: unknown): v is readonly PickleValue[] {
  return Array.isArray(v) && Object.isFrozen(v);
}

export function tuple(items: PickleValue[]): readonly PickleValue[] {
  return Object.freeze(items);
}

export function describe(v: unknown): string {
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
