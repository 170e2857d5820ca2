// A minimal zip reader and writer, enough for PyTorch's checkpoint format (torch.save since 1.6 writes a zip
// of stored entries: data.pkl, data/<key> storages, version, byteorder).
//
// Reader: parses the end-of-central-directory record (zip64 too), validates every central-directory entry
// against its local header (name, sizes, bounds, no overlap with the directory), reads entries through a
// file descriptor so multi-gigabyte archives never sit in one Buffer, inflates deflated entries with
// node:zlib, and checks each entry's size and CRC-32 on read.
// Writer: stored entries only (what PyTorch writes), data aligned to 64 bytes like PyTorch does (padding in
// the local header's extra field), zip64 records when an offset or size passes 4 GiB, written to a
// temporary name and renamed into place on finish (an AtomicFile) so a crash never leaves a half-written file.
import { AtomicFile } from './atomic.js';
import { isNode, nodeBuiltin } from '../core/host.js';
import { closeSync, fstatSync, openSync, readSync } from './files.js';

// ---- CRC-32 (IEEE, reflected, as zip uses) ------------------------------------------------------

let crcTable: Uint32Array | null = null;

function tableCrc32(data: Uint8Array, prev: number): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = ~prev >>> 0;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

// node:zlib has crc32 from Node 20.15 / 22.2 (native, much faster); older Node 20 gets the table version.
const nativeCrc32 = isNode ? (nodeBuiltin('zlib') as unknown as { crc32?: (data: Uint8Array, value?: number) => number }).crc32 : undefined;

/** CRC-32 of `data`, continuing from `prev` (0 to start). */
export function crc32(data: Uint8Array, prev = 0): number {
  if (nativeCrc32) return nativeCrc32(data, prev) >>> 0;
  return tableCrc32(data, prev);
}

/** The pure-JS CRC-32, exported so tests can check it against the native one. */
export const crc32Table = tableCrc32;

// ---- record layouts ------------------------------------------------------------------------------

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const LOCAL_HEADER_SIZE = 30;
const CENTRAL_HEADER_SIZE = 46;
const EOCD_SIZE = 22;
const ZIP64_EOCD_SIZE = 56;
const ZIP64_LOCATOR_SIZE = 20;
const U32_MAX = 0xffffffff;
const U16_MAX = 0xffff;
const EXTRA_ZIP64 = 0x0001;
const EXTRA_PAD = 0x4246; // 'FB': the padding field PyTorch uses to align data
const FLAG_ENCRYPTED = 0x0001;
const FLAG_UTF8 = 0x0800;
const METHOD_STORED = 0;
const METHOD_DEFLATE = 8;
// A fixed timestamp (1980-01-01 00:00) keeps written archives byte-for-byte reproducible.
const DOS_TIME = 0;
const DOS_DATE = (0 << 9) | (1 << 5) | 1;

export interface ZipEntry {
  name: string;
  method: number; // 0 stored, 8 deflate
  crc32: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
  /** Offset of the entry's data in the file (after its local header). */
  dataOffset: number;
}

function u64(buf: Buffer, at: number, what: string, path: string): number {
  const v = buf.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`supra: ${path}: zip: ${what} ${v} is too large`);
  return Number(v);
}

/** Reject names that could escape a folder or are otherwise not what an archive of records holds. */
function checkName(name: string, path: string): void {
  if (name.length === 0) throw new Error(`supra: ${path}: zip: an entry has an empty name`);
  if (name.includes('\0')) throw new Error(`supra: ${path}: zip: entry name ${JSON.stringify(name)} contains NUL`);
  if (name.includes('\\')) throw new Error(`supra: ${path}: zip: entry name ${JSON.stringify(name)} contains a backslash`);
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) throw new Error(`supra: ${path}: zip: entry name ${JSON.stringify(name)} is absolute`);
  if (name.split('/').some((part) => part === '..')) throw new Error(`supra: ${path}: zip: entry name ${JSON.stringify(name)} contains ".."`);
}

// ---- reader --------------------------------------------------------------------------------------

export class ZipReader {
  readonly path: string;
  readonly entries: Map<string, ZipEntry>;
  readonly fileSize: number;
  private fd: number | null;

  private constructor(path: string, fd: number, fileSize: number, entries: Map<string, ZipEntry>) {
    this.path = path;
    this.fd = fd;
    this.fileSize = fileSize;
    this.entries = entries;
  }

  /** Open and validate an archive. Close it with close() (or use withZip). */
  static open(path: string): ZipReader {
    const fd = openSync(path, 'r');
    try {
      const size = fstatSync(fd).size;
      const entries = readDirectory(fd, size, path);
      return new ZipReader(path, fd, size, entries);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /**
   * The uncompressed bytes of one entry, in `dest` (exactly its size; a view of a caller's array, so a
   * tensor can land in place) or a fresh (8-byte aligned) buffer; size and CRC are checked.
   */
  read(name: string, dest?: Uint8Array): Uint8Array {
    const e = this.entries.get(name);
    if (!e) throw new Error(`supra: ${this.path}: zip: no entry named ${JSON.stringify(name)}`);
    if (this.fd === null) throw new Error(`supra: ${this.path}: zip: read after close`);
    if (dest && dest.length !== e.size) throw new Error(`supra: ${this.path}: zip: entry ${JSON.stringify(name)} holds ${e.size} bytes, destination ${dest.length}`);
    let out: Uint8Array;
    if (e.method === METHOD_STORED) {
      out = dest ?? new Uint8Array(e.size);
      readFully(this.fd, out, e.dataOffset, this.path);
    } else {
      const packed = new Uint8Array(e.compressedSize);
      readFully(this.fd, packed, e.dataOffset, this.path);
      let inflated: Buffer;
      try {
        inflated = nodeBuiltin('zlib', 'a compressed zip entry').inflateRawSync(packed, { maxOutputLength: Math.max(1, e.size) });
      } catch (err) {
        throw new Error(`supra: ${this.path}: zip: entry ${JSON.stringify(name)} does not inflate: ${(err as Error).message}`);
      }
      if (inflated.length !== e.size) {
        throw new Error(`supra: ${this.path}: zip: entry ${JSON.stringify(name)} inflates to ${inflated.length} bytes, directory says ${e.size}`);
      }
      // copy into an own ArrayBuffer so typed views over it are aligned
      out = dest ?? new Uint8Array(e.size);
      out.set(inflated);
    }
    this.checkCrc(e, crc32(out));
    return out;
  }

  /**
   * Pass one entry's uncompressed bytes to `use` in pieces of at most PIECE_BYTES (each piece's buffer is
   * reused: copy what you keep), with their offsets: a stored entry of any size is read through one
   * small buffer. The CRC is checked once all pieces are passed, so a corrupt entry throws at the end.
   */
  readPieces(name: string, use: (piece: Uint8Array, offset: number) => void): void {
    const e = this.entries.get(name);
    if (!e) throw new Error(`supra: ${this.path}: zip: no entry named ${JSON.stringify(name)}`);
    if (this.fd === null) throw new Error(`supra: ${this.path}: zip: read after close`);
    if (e.method !== METHOD_STORED) {
      const all = this.read(name);
      for (let off = 0; off < all.length; off += PIECE_BYTES) use(all.subarray(off, off + PIECE_BYTES), off);
      return;
    }
    pieceBuffer ??= new Uint8Array(PIECE_BYTES);
    let crc = 0;
    for (let off = 0; off < e.size; off += PIECE_BYTES) {
      const piece = pieceBuffer.subarray(0, Math.min(PIECE_BYTES, e.size - off));
      readFully(this.fd, piece, e.dataOffset + off, this.path);
      crc = crc32(piece, crc);
      use(piece, off);
    }
    this.checkCrc(e, crc);
  }

  private checkCrc(e: ZipEntry, crc: number): void {
    if (crc !== e.crc32) {
      throw new Error(
        `supra: ${this.path}: zip: CRC-32 mismatch in entry ${JSON.stringify(e.name)} (stored 0x${e.crc32.toString(16).padStart(8, '0')}, computed 0x${crc.toString(16).padStart(8, '0')}): the file is corrupt`,
      );
    }
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

/** readPieces' buffer, shared by every reader (reads are synchronous). A multiple of 8 bytes. */
const PIECE_BYTES = 1 << 20;
let pieceBuffer: Uint8Array | null = null;

/** Open `path`, run `fn`, always close. */
export function withZip<T>(path: string, fn: (zip: ZipReader) => T): T {
  const zip = ZipReader.open(path);
  try {
    return fn(zip);
  } finally {
    zip.close();
  }
}

function readFully(fd: number, dst: Uint8Array, position: number, path: string): void {
  let done = 0;
  while (done < dst.length) {
    // readSync takes at most 2 GiB per call
    const want = Math.min(dst.length - done, 1 << 30);
    const n = readSync(fd, dst, done, want, position + done);
    if (n === 0) throw new Error(`supra: ${path}: zip: unexpected end of file at byte ${position + done} (truncated?)`);
    done += n;
  }
}

function readAt(fd: number, position: number, length: number, path: string): Buffer {
  const buf = Buffer.alloc(length);
  readFully(fd, buf, position, path);
  return buf;
}

function readDirectory(fd: number, fileSize: number, path: string): Map<string, ZipEntry> {
  const bad = (msg: string): never => {
    throw new Error(`supra: ${path}: zip: ${msg}`);
  };
  if (fileSize < EOCD_SIZE) bad(`file is ${fileSize} bytes, too small to be a zip archive (truncated?)`);
  // The EOCD record sits in the last 22 + up to 65535 (comment) bytes.
  const tailLen = Math.min(fileSize, EOCD_SIZE + U16_MAX);
  const tail = readAt(fd, fileSize - tailLen, tailLen, path);
  let eocd = -1;
  for (let i = tailLen - EOCD_SIZE; i >= 0; i--) {
    if (tail.readUInt32LE(i) === SIG_EOCD && i + EOCD_SIZE + tail.readUInt16LE(i + 20) === tailLen) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) bad('no end-of-central-directory record (not a zip archive, or truncated)');
  const eocdPos = fileSize - tailLen + eocd;
  let diskNo = tail.readUInt16LE(eocd + 4);
  let cdDisk = tail.readUInt16LE(eocd + 6);
  let count = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  let cdEnd = eocdPos; // where the central directory must end
  const locPos = eocdPos - ZIP64_LOCATOR_SIZE;
  if (locPos >= 0) {
    const loc = readAt(fd, locPos, ZIP64_LOCATOR_SIZE, path);
    if (loc.readUInt32LE(0) === SIG_ZIP64_LOCATOR) {
      const z64Pos = u64(loc, 8, 'zip64 end-of-directory offset', path);
      if (z64Pos + ZIP64_EOCD_SIZE > locPos) bad(`zip64 end-of-directory offset ${z64Pos} is out of bounds`);
      const z = readAt(fd, z64Pos, ZIP64_EOCD_SIZE, path);
      if (z.readUInt32LE(0) !== SIG_ZIP64_EOCD) bad('zip64 locator does not point at a zip64 end-of-directory record');
      diskNo = z.readUInt32LE(16);
      cdDisk = z.readUInt32LE(20);
      count = u64(z, 32, 'entry count', path);
      cdSize = u64(z, 40, 'central directory size', path);
      cdOffset = u64(z, 48, 'central directory offset', path);
      cdEnd = z64Pos;
    }
  }
  if (diskNo !== 0 || cdDisk !== 0) bad('multi-disk archives are not supported');
  if (cdOffset + cdSize > cdEnd) bad(`central directory (offset ${cdOffset}, ${cdSize} bytes) runs past its end record at ${cdEnd} (truncated or corrupt)`);
  const cd = readAt(fd, cdOffset, cdSize, path);
  const entries = new Map<string, ZipEntry>();
  const spans: Array<[number, number, string]> = [];
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + CENTRAL_HEADER_SIZE > cdSize || cd.readUInt32LE(p) !== SIG_CENTRAL) bad(`central directory entry ${i} is malformed`);
    const flags = cd.readUInt16LE(p + 8);
    const method = cd.readUInt16LE(p + 10);
    const crc = cd.readUInt32LE(p + 16);
    let csize = cd.readUInt32LE(p + 20);
    let usize = cd.readUInt32LE(p + 24);
    const nameLen = cd.readUInt16LE(p + 28);
    const extraLen = cd.readUInt16LE(p + 30);
    const commentLen = cd.readUInt16LE(p + 32);
    const startDisk = cd.readUInt16LE(p + 34);
    let offset = cd.readUInt32LE(p + 42);
    const end = p + CENTRAL_HEADER_SIZE + nameLen + extraLen + commentLen;
    if (end > cdSize) bad(`central directory entry ${i} runs past the directory`);
    const nameBytes = cd.subarray(p + CENTRAL_HEADER_SIZE, p + CENTRAL_HEADER_SIZE + nameLen);
    const name = nameBytes.toString(flags & FLAG_UTF8 ? 'utf8' : 'latin1');
    checkName(name, path);
    if (entries.has(name)) bad(`duplicate entry ${JSON.stringify(name)}`);
    if (flags & FLAG_ENCRYPTED) bad(`entry ${JSON.stringify(name)} is encrypted`);
    if (method !== METHOD_STORED && method !== METHOD_DEFLATE) bad(`entry ${JSON.stringify(name)} uses compression method ${method} (only stored and deflate are read)`);
    // zip64 extra: the 8-byte values replace whichever 32-bit fields are saturated, in this order
    let extra = cd.subarray(p + CENTRAL_HEADER_SIZE + nameLen, p + CENTRAL_HEADER_SIZE + nameLen + extraLen);
    let diskFromExtra = startDisk;
    while (extra.length >= 4) {
      const id = extra.readUInt16LE(0);
      const len = extra.readUInt16LE(2);
      if (4 + len > extra.length) bad(`entry ${JSON.stringify(name)} has a malformed extra field`);
      if (id === EXTRA_ZIP64) {
        const f = extra.subarray(4, 4 + len);
        let q = 0;
        const next = (what: string): number => {
          if (q + 8 > f.length) bad(`entry ${JSON.stringify(name)}: zip64 extra field lacks ${what}`);
          const v = u64(f, q, what, path);
          q += 8;
          return v;
        };
        if (usize === U32_MAX) usize = next('the size');
        if (csize === U32_MAX) csize = next('the compressed size');
        if (offset === U32_MAX) offset = next('the local header offset');
        if (startDisk === U16_MAX && q + 4 <= f.length) diskFromExtra = f.readUInt32LE(q);
      }
      extra = extra.subarray(4 + len);
    }
    if (diskFromExtra !== 0) bad(`entry ${JSON.stringify(name)} is on disk ${diskFromExtra} (multi-disk archives are not supported)`);
    if (method === METHOD_STORED && csize !== usize) bad(`stored entry ${JSON.stringify(name)} has compressed size ${csize} != size ${usize}`);
    // the local header: same name, and where the data starts
    if (offset + LOCAL_HEADER_SIZE > cdOffset) bad(`entry ${JSON.stringify(name)}: local header offset ${offset} is out of bounds`);
    const lh = readAt(fd, offset, LOCAL_HEADER_SIZE, path);
    if (lh.readUInt32LE(0) !== SIG_LOCAL) bad(`entry ${JSON.stringify(name)}: no local header at offset ${offset}`);
    const lMethod = lh.readUInt16LE(8);
    const lFlags = lh.readUInt16LE(6);
    const lNameLen = lh.readUInt16LE(26);
    const lExtraLen = lh.readUInt16LE(28);
    if (lMethod !== method) bad(`entry ${JSON.stringify(name)}: local header says method ${lMethod}, directory says ${method}`);
    if (offset + LOCAL_HEADER_SIZE + lNameLen > cdOffset) bad(`entry ${JSON.stringify(name)}: local header runs into the central directory`);
    const lName = readAt(fd, offset + LOCAL_HEADER_SIZE, lNameLen, path);
    if (!lName.equals(nameBytes)) bad(`entry ${JSON.stringify(name)}: local header names ${JSON.stringify(lName.toString('latin1'))}`);
    if (!(lFlags & 0x0008)) {
      // without a data descriptor the local header repeats crc and sizes (saturated ones live in zip64 extra)
      const lCrc = lh.readUInt32LE(14);
      const lCsize = lh.readUInt32LE(18);
      const lUsize = lh.readUInt32LE(22);
      if (lCrc !== crc) bad(`entry ${JSON.stringify(name)}: local header CRC 0x${lCrc.toString(16)} != directory CRC 0x${crc.toString(16)}`);
      if ((lCsize !== U32_MAX && lCsize !== csize) || (lUsize !== U32_MAX && lUsize !== usize)) {
        bad(`entry ${JSON.stringify(name)}: local header sizes ${lCsize}/${lUsize} differ from the directory's ${csize}/${usize}`);
      }
    }
    const dataOffset = offset + LOCAL_HEADER_SIZE + lNameLen + lExtraLen;
    if (dataOffset + csize > cdOffset) {
      bad(`entry ${JSON.stringify(name)}: data (${csize} bytes at ${dataOffset}) runs past the central directory at ${cdOffset} (truncated or corrupt)`);
    }
    spans.push([offset, dataOffset + csize, name]);
    entries.set(name, { name, method, crc32: crc, compressedSize: csize, size: usize, localHeaderOffset: offset, dataOffset });
    p = end;
  }
  if (p !== cdSize) bad(`central directory holds ${cdSize - p} bytes after its ${count} entries`);
  // entries must not overlap (an overlapping "zip bomb" or a corrupt directory)
  spans.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i]![0] < spans[i - 1]![1]) bad(`entries ${JSON.stringify(spans[i - 1]![2])} and ${JSON.stringify(spans[i]![2])} overlap`);
  }
  return entries;
}

// ---- writer --------------------------------------------------------------------------------------

export interface ZipWriterOptions {
  /** Align each entry's data to this many bytes (PyTorch uses 64). Default 64. */
  align?: number;
  /** 'auto' (default): zip64 records only when needed; 'force': always (tests use this). */
  zip64?: 'auto' | 'force';
}

interface WrittenEntry {
  nameBytes: Buffer;
  crc: number;
  size: number;
  offset: number;
}

/**
 * Writes stored (uncompressed) entries to `<path>.tmp-<pid>`; finish() writes the central directory and
 * renames the file to `path`; abort() removes it.
 */
export class ZipWriter {
  readonly path: string;
  /** The file being written; null once finished or aborted. */
  private file: AtomicFile | null;
  private pos = 0;
  private readonly align: number;
  private readonly forceZip64: boolean;
  private readonly written: WrittenEntry[] = [];
  private readonly names = new Set<string>();

  constructor(path: string, options: ZipWriterOptions = {}) {
    this.path = path;
    this.align = options.align ?? 64;
    if (!Number.isInteger(this.align) || this.align < 1 || this.align > 4096) throw new Error(`supra: ${path}: zip: alignment ${this.align} must be an integer in 1..4096`);
    this.forceZip64 = options.zip64 === 'force';
    this.file = AtomicFile.create(path);
  }

  private write(bytes: Uint8Array): void {
    if (this.file === null) throw new Error(`supra: ${this.path}: zip: write after finish/abort`);
    this.file.write(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** Add one stored entry whose data is the concatenation of `chunks`. */
  add(name: string, chunks: Uint8Array | Uint8Array[]): void {
    const parts = Array.isArray(chunks) ? chunks : [chunks];
    checkName(name, this.path);
    if (this.names.has(name)) throw new Error(`supra: ${this.path}: zip: duplicate entry ${JSON.stringify(name)}`);
    this.names.add(name);
    const nameBytes = Buffer.from(name, 'utf8');
    if (nameBytes.length > U16_MAX) throw new Error(`supra: ${this.path}: zip: entry name is too long`);
    let size = 0;
    let crc = 0;
    for (const c of parts) {
      size += c.length;
      crc = crc32(c, crc);
    }
    const offset = this.pos;
    const zip64 = this.forceZip64 || size >= U32_MAX;
    // extra field: zip64 sizes first (when needed), then 'FB' padding so the data lands on an aligned offset
    const z64Len = zip64 ? 4 + 16 : 0;
    let fixed = LOCAL_HEADER_SIZE + nameBytes.length + z64Len;
    let pad = (this.align - ((offset + fixed) % this.align)) % this.align;
    if (pad > 0 && pad < 4) pad += this.align; // a padding field needs at least its 4-byte header
    const extra = Buffer.alloc(z64Len + pad);
    if (zip64) {
      extra.writeUInt16LE(EXTRA_ZIP64, 0);
      extra.writeUInt16LE(16, 2);
      extra.writeBigUInt64LE(BigInt(size), 4);
      extra.writeBigUInt64LE(BigInt(size), 12);
    }
    if (pad > 0) {
      extra.writeUInt16LE(EXTRA_PAD, z64Len);
      extra.writeUInt16LE(pad - 4, z64Len + 2);
      extra.fill('Z', z64Len + 4); // PyTorch fills its padding with 'Z'
    }
    fixed += pad;
    const h = Buffer.alloc(LOCAL_HEADER_SIZE);
    h.writeUInt32LE(SIG_LOCAL, 0);
    h.writeUInt16LE(zip64 ? 45 : 20, 4); // version needed
    h.writeUInt16LE(FLAG_UTF8, 6);
    h.writeUInt16LE(METHOD_STORED, 8);
    h.writeUInt16LE(DOS_TIME, 10);
    h.writeUInt16LE(DOS_DATE, 12);
    h.writeUInt32LE(crc, 14);
    h.writeUInt32LE(zip64 ? U32_MAX : size, 18);
    h.writeUInt32LE(zip64 ? U32_MAX : size, 22);
    h.writeUInt16LE(nameBytes.length, 26);
    h.writeUInt16LE(extra.length, 28);
    this.write(h);
    this.write(nameBytes);
    this.write(extra);
    for (const c of parts) this.write(c);
    this.written.push({ nameBytes, crc, size, offset });
  }

  /** Write the central directory and end records, fsync, and rename into place. */
  finish(): void {
    const cdOffset = this.pos;
    for (const e of this.written) {
      const bigSize = this.forceZip64 || e.size >= U32_MAX;
      const bigOffset = this.forceZip64 || e.offset >= U32_MAX;
      const z64Fields = (bigSize ? 2 : 0) + (bigOffset ? 1 : 0);
      const extra = Buffer.alloc(z64Fields > 0 ? 4 + 8 * z64Fields : 0);
      if (z64Fields > 0) {
        extra.writeUInt16LE(EXTRA_ZIP64, 0);
        extra.writeUInt16LE(8 * z64Fields, 2);
        let q = 4;
        if (bigSize) {
          extra.writeBigUInt64LE(BigInt(e.size), q); // size
          extra.writeBigUInt64LE(BigInt(e.size), q + 8); // compressed size
          q += 16;
        }
        if (bigOffset) extra.writeBigUInt64LE(BigInt(e.offset), q);
      }
      const h = Buffer.alloc(CENTRAL_HEADER_SIZE);
      h.writeUInt32LE(SIG_CENTRAL, 0);
      h.writeUInt16LE(z64Fields > 0 ? 45 : 20, 4); // version made by (MS-DOS host)
      h.writeUInt16LE(z64Fields > 0 ? 45 : 20, 6); // version needed
      h.writeUInt16LE(FLAG_UTF8, 8);
      h.writeUInt16LE(METHOD_STORED, 10);
      h.writeUInt16LE(DOS_TIME, 12);
      h.writeUInt16LE(DOS_DATE, 14);
      h.writeUInt32LE(e.crc, 16);
      h.writeUInt32LE(bigSize ? U32_MAX : e.size, 20);
      h.writeUInt32LE(bigSize ? U32_MAX : e.size, 24);
      h.writeUInt16LE(e.nameBytes.length, 28);
      h.writeUInt16LE(extra.length, 30);
      // comment length, disk start, internal attrs, external attrs stay 0
      h.writeUInt32LE(bigOffset ? U32_MAX : e.offset, 42);
      this.write(h);
      this.write(e.nameBytes);
      this.write(extra);
    }
    const cdSize = this.pos - cdOffset;
    const count = this.written.length;
    const needZip64 = this.forceZip64 || count >= U16_MAX || cdOffset >= U32_MAX || cdSize >= U32_MAX;
    if (needZip64) {
      const z64Pos = this.pos;
      const z = Buffer.alloc(ZIP64_EOCD_SIZE);
      z.writeUInt32LE(SIG_ZIP64_EOCD, 0);
      z.writeBigUInt64LE(BigInt(ZIP64_EOCD_SIZE - 12), 4);
      z.writeUInt16LE(45, 12);
      z.writeUInt16LE(45, 14);
      z.writeBigUInt64LE(BigInt(count), 24);
      z.writeBigUInt64LE(BigInt(count), 32);
      z.writeBigUInt64LE(BigInt(cdSize), 40);
      z.writeBigUInt64LE(BigInt(cdOffset), 48);
      this.write(z);
      const loc = Buffer.alloc(ZIP64_LOCATOR_SIZE);
      loc.writeUInt32LE(SIG_ZIP64_LOCATOR, 0);
      loc.writeBigUInt64LE(BigInt(z64Pos), 8);
      loc.writeUInt32LE(1, 16);
      this.write(loc);
    }
    const end = Buffer.alloc(EOCD_SIZE);
    end.writeUInt32LE(SIG_EOCD, 0);
    end.writeUInt16LE(needZip64 ? U16_MAX : count, 8);
    end.writeUInt16LE(needZip64 ? U16_MAX : count, 10);
    end.writeUInt32LE(needZip64 ? U32_MAX : cdSize, 12);
    end.writeUInt32LE(needZip64 ? U32_MAX : cdOffset, 16);
    this.write(end);
    this.file!.commit();
    this.file = null;
  }

  /** Give up: close and delete the temporary file. */
  abort(): void {
    this.file?.abort();
    this.file = null;
  }
}
