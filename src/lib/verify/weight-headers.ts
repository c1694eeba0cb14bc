import {closeSync, fstatSync, openSync, readSync} from 'node:fs'

/**
 * The size a weights file must have, read from its own header: a safetensors file says where
 * each tensor ends (and must end at the last one), a GGUF file gives each tensor's shape, type
 * and offset. A model copied without digests (rsync, scp, a tree pulled by another tool) can so
 * at least be found complete or cut short, without a hub or a checksum list.
 */
type Format = 'safetensors' | 'gguf' | 'pytorch'

export type HeaderSize =
  | {format: Format; size: number; exact: boolean}
  /** The header itself is cut short or not what its format says. */
  | {format: Format; truncated?: boolean; problem: string}

export const weightFormat = (name: string): Format | undefined =>
  /\.safetensors$/i.test(name) ? 'safetensors' : /\.gguf$/i.test(name) ? 'gguf' : /\.(bin|pt|pth)$/i.test(name) ? 'pytorch' : undefined

/** The size its header gives, or undefined when the file is of neither format (or unreadable). */
export function headerSize(path: string): HeaderSize | undefined {
  const format = weightFormat(path)
  if (!format) return undefined
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch {
    return undefined
  }
  try {
    const reader = new Reader(fd, fstatSync(fd).size)
    return format === 'safetensors' ? safetensors(reader) : format === 'gguf' ? gguf(reader) : pytorch(reader)
  } catch (error) {
    if (error instanceof Short) return {format, truncated: true, problem: `cut short inside its ${format} header`}
    if (error instanceof Bad) return {format, problem: `not a valid ${format} file: ${error.message}`}
    return undefined
  } finally {
    closeSync(fd)
  }
}

class Short extends Error {}
class Bad extends Error {}

/** Sequential little-endian reads over a file, a block at a time (a GGUF header can be megabytes). */
class Reader {
  pos = 0
  private buf = Buffer.alloc(0)
  private bufAt = 0

  constructor(private readonly fd: number, readonly size: number) {}

  bytes(n: number): Buffer {
    if (n < 0 || this.pos + n > this.size) throw new Short()
    if (this.pos < this.bufAt || this.pos + n > this.bufAt + this.buf.length) {
      this.buf = Buffer.alloc(Math.max(n, 1 << 20))
      this.bufAt = this.pos
      this.buf = this.buf.subarray(0, readSync(this.fd, this.buf, 0, this.buf.length, this.pos))
      if (this.buf.length < n) throw new Short()
    }
    const out = this.buf.subarray(this.pos - this.bufAt, this.pos - this.bufAt + n)
    this.pos += n
    return out
  }

  u32 = () => this.bytes(4).readUInt32LE(0)
  u64(): number {
    const v = this.bytes(8).readBigUInt64LE(0)
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Bad('a length beyond any file')
    return Number(v)
  }
  string = () => this.bytes(this.u64()).toString('utf8')
}

/** 8 bytes of header length, the JSON header, then the tensors' bytes, with no gap and nothing after. */
function safetensors(r: Reader): HeaderSize {
  const length = r.u64()
  if (length > 100 * 1024 * 1024) throw new Bad(`a header of ${length} bytes`)
  let header: Record<string, {data_offsets?: unknown}>
  try {
    header = JSON.parse(r.bytes(length).toString('utf8'))
  } catch (error) {
    if (error instanceof Short) throw error
    throw new Bad('its header is not JSON')
  }
  let end = 0
  for (const [name, tensor] of Object.entries(header)) {
    if (name === '__metadata__') continue
    const offsets = tensor?.data_offsets
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) throw new Bad(`tensor ${name} has no data_offsets`)
    end = Math.max(end, offsets[1] as number)
  }
  return {format: 'safetensors', size: 8 + length + end, exact: true}
}

/** Elements per block and bytes per block of each GGML tensor type that model files hold. */
const GGML_TYPES: Record<number, [number, number]> = {
  0: [1, 4], // F32
  1: [1, 2], // F16
  2: [32, 18], // Q4_0
  3: [32, 20], // Q4_1
  6: [32, 22], // Q5_0
  7: [32, 24], // Q5_1
  8: [32, 34], // Q8_0
  10: [256, 84], // Q2_K
  11: [256, 110], // Q3_K
  12: [256, 144], // Q4_K
  13: [256, 176], // Q5_K
  14: [256, 210], // Q6_K
  16: [256, 66], // IQ2_XXS
  17: [256, 74], // IQ2_XS
  18: [256, 98], // IQ3_XXS
  19: [256, 50], // IQ1_S
  20: [32, 18], // IQ4_NL
  21: [256, 110], // IQ3_S
  22: [256, 82], // IQ2_S
  23: [256, 136], // IQ4_XS
  24: [1, 1], // I8
  25: [1, 2], // I16
  26: [1, 4], // I32
  27: [1, 8], // I64
  28: [1, 8], // F64
  29: [256, 56], // IQ1_M
  30: [1, 2], // BF16
  34: [256, 54], // TQ1_0
  35: [256, 66], // TQ2_0
  39: [32, 17], // MXFP4
}

/** Bytes of each GGUF metadata value type of fixed size (8: string, 9: array, read apart). */
const VALUE_SIZES: Record<number, number> = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

function skipValue(r: Reader, type: number): void {
  if (type === 8) r.bytes(r.u64())
  else if (type === 9) {
    const inner = r.u32()
    const count = r.u64()
    if (VALUE_SIZES[inner] !== undefined) r.bytes(count * VALUE_SIZES[inner])
    else for (let i = 0; i < count; i++) skipValue(r, inner)
  } else if (VALUE_SIZES[type] !== undefined) r.bytes(VALUE_SIZES[type])
  else throw new Bad(`a metadata value of unknown type ${type}`)
}

/**
 * GGUF v2/v3: magic, version, counts, the metadata (general.alignment among it), the tensor
 * infos; the data starts at the next multiple of the alignment. Writers pad after each tensor,
 * so the file is at least as long as its last tensor's end.
 */
function gguf(r: Reader): HeaderSize | undefined {
  if (r.bytes(4).toString('latin1') !== 'GGUF') throw new Bad('no GGUF magic at its start')
  const version = r.u32()
  if (version !== 2 && version !== 3) return undefined
  const tensors = r.u64()
  const kvs = r.u64()
  let alignment = 32
  for (let i = 0; i < kvs; i++) {
    const key = r.string()
    const type = r.u32()
    if (key === 'general.alignment' && type === 4) alignment = r.u32()
    else skipValue(r, type)
  }
  let end = 0
  for (let i = 0; i < tensors; i++) {
    r.string()
    const dims = r.u32()
    if (dims > 8) throw new Bad(`a tensor of ${dims} dimensions`)
    let elements = 1
    for (let d = 0; d < dims; d++) elements *= r.u64()
    const type = GGML_TYPES[r.u32()]
    const offset = r.u64()
    // A type this table does not know (newer than it): the size cannot be told.
    if (!type) return undefined
    end = Math.max(end, offset + Math.ceil(elements / type[0]) * type[1])
  }
  if (!alignment || alignment % 8 !== 0) throw new Bad(`general.alignment ${alignment}`)
  const dataStart = Math.ceil(r.pos / alignment) * alignment
  return {format: 'gguf', size: dataStart + end, exact: false}
}

/**
 * A PyTorch checkpoint since torch 1.6 (torch.save's default) is a zip archive, whose end record
 * (EOCD, within the last 64 KiB) a copy cut short has lost. Older pickled files, and other
 * formats named .bin, start otherwise: no claim.
 */
function pytorch(r: Reader): HeaderSize | undefined {
  if (r.size < 4 || r.bytes(4).readUInt32LE(0) !== 0x04034b50) return undefined
  const tailLength = Math.min(r.size, 65_557)
  r.pos = r.size - tailLength
  const tail = r.bytes(tailLength)
  for (let at = tail.length - 22; at >= 0; at--) {
    if (tail.readUInt32LE(at) === 0x06054b50 && at + 22 + tail.readUInt16LE(at + 20) === tail.length) return {format: 'pytorch', size: r.size, exact: true}
  }
  return {format: 'pytorch', truncated: true, problem: 'cut short: its zip end record is missing (a PyTorch checkpoint is a zip archive)'}
}
