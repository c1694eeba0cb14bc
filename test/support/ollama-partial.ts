import {writeFileSync} from 'node:fs'
import {open} from 'node:fs/promises'

export interface OllamaPart {
  Offset: number
  Size: number
  Completed: number
}

/**
 * What `ollama pull` leaves when it is cut (server/download.go): `BLOB-partial`, the blob's full
 * size and sparse, holding `content`'s bytes where each part got to, and `BLOB-partial-N`, each
 * part's record. Returns the partial file's path.
 */
export async function plantOllamaPartial(blob: string, content: Buffer, parts: OllamaPart[]): Promise<string> {
  const path = `${blob}-partial`
  const file = await open(path, 'w')
  try {
    await file.truncate(content.length)
    for (const p of parts) if (p.Completed) await file.write(content, p.Offset, p.Completed, p.Offset)
  } finally {
    await file.close()
  }
  parts.forEach((p, N) => writeFileSync(`${path}-${N}`, `${JSON.stringify({N, ...p})}\n`))
  return path
}

/** Parts of `size` bytes each over `total`, with how far each got. */
export const partsOf = (total: number, size: number, completed: number[]): OllamaPart[] =>
  completed.map((c, i) => ({Offset: i * size, Size: Math.min(size, total - i * size), Completed: c}))
