import {subscribe, unsubscribe} from 'node:diagnostics_channel'
import {createRequire} from 'node:module'

/**
 * undici 7's HTTP/1 parser crashes the process when a server closes the connection (FIN) while
 * the response body waits for its reader: `assert(!this.paused)` in Parser.finish, thrown from
 * the socket's 'end' handler, where nothing can catch it (nodejs/undici#5360). A server that
 * sends the whole file and closes, as `python3 -m http.server` does, hit it in about one pull in
 * three of a 200 MiB file. undici 8 fixes it (nodejs/undici#5474) but needs Node 22, so until
 * then the fix is applied here, as upstream made it: a paused parser at the end of the stream is
 * resumed and given the rest of what was received (the body stream buffers past its high-water
 * mark), then finished. Parser is internal to undici: it is reached through the first H1
 * connection's socket (diagnostics channel undici:client:connected), and only for undici 7.
 */
const CHANNEL = 'undici:client:connected'
const PATCHED = Symbol('mtune: paused finish')
let listening = false

export function fixPausedFinish(): void {
  if (listening || !/^7\./.test(undiciVersion())) return
  listening = true
  const onConnected = (message: unknown) => {
    const socket = (message as {socket?: object}).socket
    const key = socket && Object.getOwnPropertySymbols(socket).find((s) => s.description === 'parser')
    const parser = key ? (socket as Record<symbol, unknown>)[key] : undefined
    if (!parser) return // an HTTP/2 connection: no H1 parser to reach.
    unsubscribe(CHANNEL, onConnected)
    patch(Object.getPrototypeOf(parser) as ParserProto)
  }
  subscribe(CHANNEL, onConnected)
}

interface ParserLike {
  paused: boolean
  ptr: number | null
  socket: {read(): Buffer | null}
  llhttp: {llhttp_resume(ptr: number): void}
  execute(chunk: Buffer): void
}
type ParserProto = {finish(this: ParserLike): unknown; [PATCHED]?: true}

function patch(proto: ParserProto): void {
  if (proto[PATCHED] || typeof proto.finish !== 'function') return
  const finish = proto.finish
  proto.finish = function (this: ParserLike) {
    // Drive the parser through what the socket still holds, resuming each time the body's
    // backpressure pauses it: every call consumes bytes, so this ends with the buffer.
    while (this.paused && this.ptr !== null) {
      this.llhttp.llhttp_resume(this.ptr)
      this.paused = false
      this.execute(this.socket.read() ?? Buffer.alloc(0))
      while (!this.paused && this.ptr !== null) {
        const chunk = this.socket.read()
        if (chunk === null) break
        this.execute(chunk)
      }
    }
    return this.ptr === null ? null : finish.call(this)
  }
  proto[PATCHED] = true
}

function undiciVersion(): string {
  try {
    return (createRequire(import.meta.url)('undici/package.json') as {version: string}).version
  } catch {
    return ''
  }
}
