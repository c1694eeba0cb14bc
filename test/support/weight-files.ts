import {crc32} from 'node:zlib'

/**
 * Small weights files written as their formats specify, for verify's header checks: safetensors
 * (8-byte little-endian header length, JSON header, tensor bytes) and GGUF v3 (magic, version,
 * counts, metadata, tensor infos, aligned data, each tensor padded to the alignment).
 */

export function safetensorsFile(tensors: Array<{name: string; bytes: number}>): Buffer {
  const header: Record<string, unknown> = {__metadata__: {format: 'pt'}}
  let at = 0
  for (const t of tensors) {
    header[t.name] = {dtype: 'U8', shape: [t.bytes], data_offsets: [at, at + t.bytes]}
    at += t.bytes
  }
  // The format allows trailing spaces in the header (writers pad it to 8 bytes).
  let json = JSON.stringify(header)
  json += ' '.repeat((8 - (json.length % 8)) % 8)
  const length = Buffer.alloc(8)
  length.writeBigUInt64LE(BigInt(json.length))
  return Buffer.concat([length, Buffer.from(json), Buffer.alloc(at, 7)])
}

const u32 = (v: number) => {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(v)
  return b
}
const u64 = (v: number) => {
  const b = Buffer.alloc(8)
  b.writeBigUInt64LE(BigInt(v))
  return b
}
const str = (s: string) => Buffer.concat([u64(Buffer.byteLength(s)), Buffer.from(s)])

/** type: a GGML type id with its block geometry (0 F32: 1 element in 4 bytes; 12 Q4_K: 256 in 144). */
export function ggufFile(tensors: Array<{name: string; dims: number[]; type: number; block: [number, number]}>, options: {alignment?: number} = {}): Buffer {
  const alignment = options.alignment ?? 32
  const pad = (n: number) => Math.ceil(n / alignment) * alignment
  const kv = [
    Buffer.concat([str('general.architecture'), u32(8), str('llama')]),
    // An array of strings, as a tokenizer's vocabulary is stored.
    Buffer.concat([str('tokenizer.ggml.tokens'), u32(9), u32(8), u64(3), str('a'), str('bb'), str('ccc')]),
    ...(options.alignment ? [Buffer.concat([str('general.alignment'), u32(4), u32(alignment)])] : []),
  ]
  let offset = 0
  const infos: Buffer[] = []
  const sizes: number[] = []
  for (const t of tensors) {
    const elements = t.dims.reduce((a, b) => a * b, 1)
    const bytes = (elements / t.block[0]) * t.block[1]
    infos.push(Buffer.concat([str(t.name), u32(t.dims.length), ...t.dims.map(u64), u32(t.type), u64(offset)]))
    sizes.push(bytes)
    offset += pad(bytes)
  }
  const head = Buffer.concat([Buffer.from('GGUF'), u32(3), u64(tensors.length), u64(kv.length), ...kv, ...infos])
  const data = Buffer.alloc(offset, 5)
  return Buffer.concat([head, Buffer.alloc(pad(head.length) - head.length), data])
}

/** A little-endian record of `size` bytes: [offset, width in bytes, value] for each field set. */
function record(size: number, fields: Array<[number, 2 | 4, number]>): Buffer {
  const b = Buffer.alloc(size)
  for (const [at, width, value] of fields) {
    if (width === 2) b.writeUInt16LE(value, at)
    else b.writeUInt32LE(value, at)
  }
  return b
}

/** A PyTorch checkpoint as torch.save writes it since 1.6: a zip archive (stored entries), its end record last. */
export function torchZip(entries: Array<{name: string; bytes: number}>): Buffer {
  const locals: Buffer[] = []
  const central: Buffer[] = []
  let offset = 0
  for (const e of entries) {
    const data = Buffer.alloc(e.bytes, 3)
    const name = Buffer.from(e.name)
    const crc = crc32(data)
    // Local file header (30 bytes) and central directory entry (46): version, CRC, sizes, name length.
    locals.push(record(30, [[0, 4, 0x04034b50], [4, 2, 20], [14, 4, crc], [18, 4, data.length], [22, 4, data.length], [26, 2, name.length]]), name, data)
    central.push(record(46, [[0, 4, 0x02014b50], [4, 2, 20], [6, 2, 20], [16, 4, crc], [20, 4, data.length], [24, 4, data.length], [28, 2, name.length], [42, 4, offset]]), name)
    offset += 30 + name.length + data.length
  }
  const cd = Buffer.concat(central)
  const end = record(22, [[0, 4, 0x06054b50], [8, 2, entries.length], [10, 2, entries.length], [12, 4, cd.length], [16, 4, offset]])
  return Buffer.concat([...locals, cd, end])
}
