/**
 * Byte formats of the cache.
 *
 * An *entry* is what the disk and Redis tiers keep: a header with a CRC-32 over the key and the
 * payload, so that a truncated, corrupted or misplaced entry is recognised (and then deleted and
 * recomputed), never served:
 *
 *   0   'CSC2'                     magic and format version (CSC1 entries, with a sha256, are
 *                                  recognised as not this format: recomputed)
 *   4   u32 LE key length          bytes of the UTF-8 key
 *   8   u32 LE payload length
 *   12  u32 LE CRC-32(key ‖ payload)
 *   16  key, zero-padded to a multiple of 8 (so the payload is 8-byte aligned)
 *   ..  payload
 *
 * CRC-32 rather than a cryptographic hash: it guards against torn and damaged files, not
 * against someone who can write CACHE_DIR, and runs at memory speed (sha256 took about 1 ms per
 * 600 KB projection, on every write and read).
 *
 * A *record* is a payload holding small JSON and float32 tensors (results of the engine):
 *
 *   0   u32 LE JSON length, JSON ({ m: meta, t: [tensor lengths] }), zero-padded to a multiple of 4
 *   ..  the tensors' float32 little-endian values, one after the other
 */
import { crc32 } from 'node:zlib';

const MAGIC = 0x32435343; // 'CSC2' read as u32 LE
export const ENTRY_HEADER = 16;

const pad = (n: number, to: number) => Math.ceil(n / to) * to;

export class CorruptEntryError extends Error {}

/**
 * An entry as two buffers, header (with the key) and the payload itself, to be written one
 * after the other (no copy of the payload).
 */
export function encodeEntry(key: string, payload: Buffer): [Buffer, Buffer] {
  const k = Buffer.from(key, 'utf8');
  const head = Buffer.alloc(ENTRY_HEADER + pad(k.length, 8));
  head.writeUInt32LE(MAGIC, 0);
  head.writeUInt32LE(k.length, 4);
  head.writeUInt32LE(payload.length, 8);
  head.writeUInt32LE(crc32(payload, crc32(k)), 12);
  k.copy(head, ENTRY_HEADER);
  return [head, payload];
}

/** The payload of an entry written for `key`; throws CorruptEntryError on any mismatch. */
export function decodeEntry(key: string, entry: Buffer): Buffer {
  if (entry.length < ENTRY_HEADER) throw new CorruptEntryError(`entry of ${entry.length} bytes is shorter than its header`);
  if (entry.readUInt32LE(0) !== MAGIC) throw new CorruptEntryError('bad magic (or an entry of an earlier format)');
  const keyLength = entry.readUInt32LE(4);
  const payloadLength = entry.readUInt32LE(8);
  const start = ENTRY_HEADER + pad(keyLength, 8);
  if (entry.length !== start + payloadLength) throw new CorruptEntryError(`entry is ${entry.length} bytes, its header says ${start + payloadLength}`);
  const k = entry.subarray(ENTRY_HEADER, ENTRY_HEADER + keyLength);
  const payload = entry.subarray(start);
  if (crc32(payload, crc32(k)) !== entry.readUInt32LE(12)) throw new CorruptEntryError('checksum mismatch');
  if (k.toString('utf8') !== key) throw new CorruptEntryError('entry belongs to another key');
  return payload;
}

/** How a value becomes cache bytes and back. */
export interface Codec<T> {
  encode(value: T): Buffer;
  decode(bytes: Buffer): T;
}

export interface RecordValue<M> {
  meta: M;
  tensors: Float32Array[];
}

export function encodeRecord<M>(value: RecordValue<M>): Buffer {
  const json = Buffer.from(JSON.stringify({ m: value.meta, t: value.tensors.map((t) => t.length) }), 'utf8');
  const start = pad(4 + json.length, 4);
  const total = start + value.tensors.reduce((n, t) => n + t.byteLength, 0);
  const out = Buffer.allocUnsafeSlow(total);
  out.fill(0, 0, start);
  out.writeUInt32LE(json.length, 0);
  json.copy(out, 4);
  let at = start;
  for (const t of value.tensors) {
    Buffer.from(t.buffer, t.byteOffset, t.byteLength).copy(out, at);
    at += t.byteLength;
  }
  return out;
}

/** Tensors are views on `bytes` when it is 4-byte aligned (treat them as read-only), else copies. */
export function decodeRecord<M>(bytes: Buffer): RecordValue<M> {
  if (bytes.length < 4) throw new CorruptEntryError('record too short');
  const jsonLength = bytes.readUInt32LE(0);
  if (4 + jsonLength > bytes.length) throw new CorruptEntryError('record header overruns');
  const { m, t } = JSON.parse(bytes.toString('utf8', 4, 4 + jsonLength)) as { m: M; t: number[] };
  let at = pad(4 + jsonLength, 4);
  if (at + t.reduce((n, len) => n + len * 4, 0) !== bytes.length) throw new CorruptEntryError('record length mismatch');
  const tensors = t.map((len) => {
    const offset = bytes.byteOffset + at;
    const view = offset % 4 === 0 ? new Float32Array(bytes.buffer, offset, len) : new Float32Array(bytes.buffer.slice(offset, offset + len * 4));
    at += len * 4;
    return view;
  });
  return { meta: m, tensors };
}

/** One float32 tensor. */
export const FLOATS: Codec<Float32Array> = {
  encode: (t) => encodeRecord({ meta: null, tensors: [t] }),
  decode: (b) => decodeRecord<null>(b).tensors[0],
};

/** UTF-8 text. */
export const TEXT: Codec<string> = {
  encode: (s) => Buffer.from(s, 'utf8'),
  decode: (b) => b.toString('utf8'),
};
