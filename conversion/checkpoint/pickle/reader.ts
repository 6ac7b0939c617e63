/**
 * A minimal, non-executing pickle VM for PyTorch `torch.save` state dicts.
 *
 * It understands the opcodes that `pickle` emits for protocols 2..5 when torch pickles a state dict.
 * Globals, calls (REDUCE) and persistent ids are resolved through the allow-list in `torch-globals.ts`;
 * nothing is ever executed. Anything else (an unknown opcode or global) throws a `PickleError`.
 */
import { callGlobal, persistentLoad, resolveGlobal } from './torch-globals.js';
import { PickleError, PickleGlobal, TorchTensorRef, describe, isTuple, tuple, type PickleValue } from './values.js';

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
