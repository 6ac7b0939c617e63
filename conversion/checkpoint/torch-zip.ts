/**
 * The zip container of PyTorch `torch.save` checkpoints (the format used since torch 1.6): entries
 * `<prefix>/data.pkl`, `<prefix>/byteorder`, `<prefix>/data/<key>` (one per storage) and
 * `<prefix>/version`. Reading goes through a file descriptor with random access, so storages can be
 * read one at a time; writing lays the entries out the way torch's PyTorchStreamWriter does.
 */
import { readSync, writeFileSync } from 'node:fs';
import { inflateSync, zipSync, type Zippable } from 'fflate';

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

/** A torch.save zip archive opened for reading: its entry prefix, data.pkl and storages. */
export class TorchArchive {
  private constructor(
    private readonly zip: ZipFile,
    /** Path prefix of the archive's entries, e.g. `archive/` (may be empty). */
    readonly prefix: string,
    private readonly dataPkl: ZipEntry,
  ) {}

  /**
   * Checks the zip signature (explaining files that are not zips), parses the central directory,
   * locates `data.pkl` and checks the byte order. Problems are reported through `fail`.
   */
  static open(fd: number, fileSize: number, fail: (problem: string) => never): TorchArchive {
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
    return new TorchArchive(zip, prefix, zip.entries.get(pklNames[0])!);
  }

  /** The pickled state dict (`<prefix>data.pkl`). */
  readDataPkl(): Uint8Array {
    return this.zip.read(this.dataPkl);
  }

  /** The raw bytes of storage `<prefix>data/<key>`, or undefined if the archive lacks it. */
  readStorage(key: string): Uint8Array | undefined {
    const entry = this.zip.entries.get(`${this.prefix}data/${key}`);
    return entry && this.zip.read(entry);
  }
}

// ---------------------------------------------------------------------------------------------
// Writing

const FIELD_ALIGNMENT = 64; // torch's PyTorchStreamWriter aligns record data to 64 bytes
const PAD_FIELD_ID = 0x4246; // 'FB', the extra-field id torch uses for that padding

/**
 * Writes a torch.save archive as torch 2.x does: entries `archive/data.pkl`, `archive/byteorder`,
 * `archive/data/<i>` (one per storage, 64-byte aligned), `archive/version`, all stored uncompressed.
 */
export function writeTorchArchive(path: string, dataPkl: Uint8Array, storages: Uint8Array[]): void {
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
