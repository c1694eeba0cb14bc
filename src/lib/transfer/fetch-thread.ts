import {parentPort, workerData} from 'node:worker_threads'
import {createDispatcher} from '../net/dispatcher.js'
import {openPartFile, whenOpen, type PartFile} from './part-file.js'
import {EndCell, errorToWire, type FromThread, type ToThread} from './fetch-wire.js'
import {fetchRange} from './range-fetch.js'

/**
 * A fetch thread: its own event loop, keep-alive pool, TLS and HTTP parsing for the requests
 * the engine posts to it, writing their bytes into the part file through its own handle. It
 * decides nothing: the engine on the main thread says what to fetch and when to stop, and
 * keeps the segments, the journal and the progress; the thread reports first bytes, received
 * bytes, written ranges and how each request ended.
 */
const {stallTimeoutMs} = workerData as {stallTimeoutMs: number}
const port = parentPort!
const dispatcher = createDispatcher({stallTimeoutMs})

/** Reports are batched: one message per request per REPORT_MS, not one per write. */
const REPORT_MS = 20

interface Running {
  abort: AbortController
  received: number
  written: number[]
}
const running = new Map<number, Running>()
const parts = new Map<string, {part: Promise<PartFile>; ready(ok: boolean): void}>()
let timer: NodeJS.Timeout | undefined

const post = (message: FromThread) => port.postMessage(message)

function report(id: number, r: Running): void {
  if (r.received === 0 && r.written.length === 0) return
  post({t: 'progress', id, received: r.received, written: r.written})
  r.received = 0
  r.written = []
}

function reportAll(): void {
  for (const [id, r] of running) report(id, r)
  if (running.size === 0 && timer) {
    clearInterval(timer)
    timer = undefined
  }
}

/** The thread's handle on a part file, opened once the engine says it exists (or failing if it could not). */
function entryFor(path: string): {part: Promise<PartFile>; ready(ok: boolean): void} {
  let entry = parts.get(path)
  if (!entry) {
    let ready!: (ok: boolean) => void
    const part = new Promise<boolean>((resolve) => (ready = resolve)).then((ok) => {
      if (!ok) throw new Error(`the part file ${path} could not be opened`)
      return openPartFile(path, undefined, false, {slow: () => post({t: 'slow', path})})
    })
    part.catch(() => {})
    entry = {part, ready}
    parts.set(path, entry)
  }
  return entry
}

async function fetch(id: number, message: Extract<ToThread, {t: 'fetch'}>): Promise<void> {
  const r: Running = {abort: new AbortController(), received: 0, written: []}
  running.set(id, r)
  timer ??= setInterval(reportAll, REPORT_MS)
  const end = new EndCell(message.end)
  const part = whenOpen(entryFor(message.partPath).part)
  let pos = message.req.from
  let error: unknown
  try {
    pos = await fetchRange(
      dispatcher,
      message.req,
      {
        part,
        end: () => end.get(),
        firstByte: () => post({t: 'first', id}),
        received: (bytes) => (r.received += bytes),
        writing: () => {},
        written: (start, bytes) => {
          const last = r.written.length - 1
          // Consecutive writes of one request are one range.
          if (r.written.length > 0 && r.written[last] === start) r.written[last] = start + bytes
          else r.written.push(start, start + bytes)
          pos = start + bytes
        },
      },
      r.abort.signal,
    )
  } catch (e) {
    error = e
  }
  running.delete(id)
  // Every write is reported before the end, in order, on the same port.
  report(id, r)
  post({t: 'end', id, pos, ...(error === undefined || r.abort.signal.aborted ? {} : {error: errorToWire(error)})})
}

port.on('message', (m: ToThread) => {
  switch (m.t) {
    case 'fetch':
      void fetch(m.id, m)
      break
    case 'stop':
      running.get(m.id)?.abort.abort(new Error('stopped'))
      break
    case 'part':
      entryFor(m.path).ready(m.ok)
      break
    case 'close': {
      const entry = parts.get(m.path)
      parts.delete(m.path)
      // Never told the file exists (the engine always says so first): nothing to wait for.
      entry?.ready(false)
      void (entry ? entry.part.then((p) => p.close()).catch(() => {}) : Promise.resolve()).then(() => post({t: 'closed', path: m.path}))
      break
    }
  }
})
