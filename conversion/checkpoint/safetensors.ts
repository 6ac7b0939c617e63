import { closeSync, openSync, readSync, fstatSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { ConversionError } from '../errors.js';
import { bytesPerElement, decodeFloatTensor, elementCount, type WeightMap } from './tensor.js';

const dtypeNames: Record<string, string> = {
  F64: 'float64',
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
  I64: 'int64',
  I32: 'int32',
  I16: 'int16',
  I8: 'int8',
  U8: 'uint8',
  BOOL: 'bool',
};

const floatDtypes = new Set(['float64', 'float32', 'float16', 'bfloat16']);

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

function readExactly(fd: number, position: number, length: number): Buffer {
  const buffer = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buffer, done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done === length ? buffer : buffer.subarray(0, done);
}

/** Reads the float tensors of a .safetensors file (integer buffers such as position_ids are skipped). */
export function readSafetensors(path: string, into: WeightMap = new Map()): WeightMap {
  const name = basename(path);
  const fd = openSync(path, 'r');
  try {
    const fileSize = fstatSync(fd).size;
    if (fileSize < 8) throw new ConversionError(path, 'truncated safetensors file (no header length)');
    const headerLength = Number(readExactly(fd, 0, 8).readBigUInt64LE(0));
    if (headerLength <= 0 || 8 + headerLength > fileSize || headerLength > 100_000_000) {
      throw new ConversionError(
        path,
        `corrupt or truncated safetensors header (declares ${headerLength} bytes, file has ${fileSize})`,
      );
    }
    let header: Record<string, HeaderEntry | Record<string, string>>;
    try {
      header = JSON.parse(readExactly(fd, 8, headerLength).toString('utf8'));
    } catch (error) {
      throw new ConversionError(path, `corrupt safetensors header: ${(error as Error).message}`);
    }
    const dataStart = 8 + headerLength;
    for (const [tensorName, raw] of Object.entries(header)) {
      if (tensorName === '__metadata__') continue;
      const entry = raw as HeaderEntry;
      const dtype = dtypeNames[entry.dtype];
      if (!dtype || !Array.isArray(entry.shape) || !Array.isArray(entry.data_offsets)) {
        throw new ConversionError(path, `corrupt header entry for "${tensorName}" in ${name}`);
      }
      const [begin, end] = entry.data_offsets;
      const count = elementCount(entry.shape);
      if (end - begin !== count * bytesPerElement[dtype]) {
        throw new ConversionError(
          path,
          `tensor "${tensorName}" byte range does not match its shape [${entry.shape}] ${entry.dtype}`,
        );
      }
      if (dataStart + end > fileSize) {
        throw new ConversionError(
          path,
          `truncated: tensor "${tensorName}" ends at byte ${dataStart + end}, file has ${fileSize}`,
        );
      }
      if (!floatDtypes.has(dtype)) continue;
      const bytes = readExactly(fd, dataStart + begin, end - begin);
      into.set(tensorName, { shape: entry.shape, data: decodeFloatTensor(bytes, dtype, count), sourceDtype: dtype });
    }
    return into;
  } finally {
    closeSync(fd);
  }
}

/** Writes fp32 tensors as .safetensors (header padded to 8 bytes, like the reference writer). */
export function writeSafetensors(
  path: string,
  tensors: Map<string, { shape: number[]; data: Float32Array }>,
  metadata: Record<string, string> = { format: 'pt' },
): void {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const [name, tensor] of tensors) {
    header[name] = { dtype: 'F32', shape: tensor.shape, data_offsets: [offset, offset + tensor.data.byteLength] };
    offset += tensor.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + headerBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  let position = 8 + headerBytes.length;
  for (const tensor of tensors.values()) {
    Buffer.from(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength).copy(out, position);
    position += tensor.data.byteLength;
  }
  writeFileSync(path, out);
}
