/**
 * An aria2c control file (FILE.aria2), as aria2's manual ("Control File (*.aria2) Format")
 * lays out version 1: big-endian; no info hash (an HTTP download); `done` the finished pieces.
 */
export function aria2Control(total: number, pieceLength: number, done: number[], options: {version?: number; infoHash?: Buffer} = {}): Buffer {
  const pieces = Math.ceil(total / pieceLength)
  const bitfield = Buffer.alloc(Math.ceil(pieces / 8))
  for (const i of done) bitfield[i >> 3]! |= 0x80 >> (i & 7)
  const infoHash = options.infoHash ?? Buffer.alloc(0)
  const head = Buffer.alloc(2 + 4 + 4)
  head.writeUInt16BE(options.version ?? 1, 0)
  head.writeUInt32BE(infoHash.length, 6)
  const lengths = Buffer.alloc(4 + 8 + 8 + 4)
  lengths.writeUInt32BE(pieceLength, 0)
  lengths.writeBigUInt64BE(BigInt(total), 4)
  lengths.writeUInt32BE(bitfield.length, 20)
  // No pieces in flight.
  return Buffer.concat([head, infoHash, lengths, bitfield, Buffer.alloc(4)])
}
