import net from 'node:net'
import tls from 'node:tls'
import {Batches, type BodySource, type StreamedResponse} from './chunk-stream.js'
import {BadResponse, MAX_HEAD, headEnd, parseHead, requestHead, type ResponseHead} from './wire-head.js'

/**
 * The data plane's own HTTP/1.1 client, for the one request a pull makes by the thousand: a GET
 * of a byte range on a direct connection (no proxy). Everything else (probes, redirects, hubs,
 * proxies) goes through undici; see dispatcher.ts for which is used when.
 *
 * Why not undici here: on a fat pipe the client's cost per byte is the limit, and undici's is
 * three times a socket's. Receiving 2 GiB over 16 connections from nginx on loopback cost 3.1 CPU
 * s through undici's dispatch (user 1.7 s: the 'readable' stream, the copy into the parser's
 * WebAssembly memory, llhttp and a timer per chunk), 1.9 s with a plain 'data' listener, and 1.0 s
 * here (user 0.1 s). The difference is how a read is done: the socket reads straight into the
 * response body's slabs (net's `onread` with a buffer per read), so a byte is copied once by the
 * kernel and then only by the write to the page cache; no stream, no parser for the body.
 *
 * What it leaves to undici: a body framed other than by Content-Length (chunked, or ending with
 * the connection). A 206 framed so is refused with WireUnsupported, and the caller sends the
 * request again through undici (range requests are idempotent).
 */

export interface WireOptions {
  /** No byte for this long while a response is awaited or read: the connection is stalled. */
  stallTimeoutMs: number
  connectTimeoutMs: number
  /** How long an idle connection is kept for the next request. */
  keepAliveMs?: number
}

export interface WireRequest {
  /** scheme://host[:port] */
  origin: string
  /** Path and query. */
  path: string
  headers: Record<string, string>
}

/** The answer is framed in a way this client leaves to undici: send the request there. */
export class WireUnsupported extends Error {
  readonly code = 'WIRE_UNSUPPORTED'
}

/** How long a kept-alive connection waits for its next request (servers close theirs after 5-75 s). */
const KEEP_ALIVE_MS = 4_000
/** The first read of each response, before Node asks for the body's slab (see room). */
const SCRATCH_BYTES = 64 * 1024

export class WireClient {
  private readonly idle = new Map<string, Connection[]>()
  private readonly sessions = new Map<string, Buffer>()

  constructor(private readonly options: WireOptions) {}

  /** GET `path` from `origin`: resolves with the status and headers, the body following. */
  request(req: WireRequest, signal?: AbortSignal): Promise<StreamedResponse> {
    if (signal?.aborted) return Promise.reject(reason(signal))
    const conn = this.take(req.origin) ?? this.connect(req.origin)
    return conn.send(req, signal)
  }

  /** Close every idle connection (the pull is over). */
  close(): void {
    for (const list of this.idle.values()) for (const conn of list) conn.destroy()
    this.idle.clear()
  }

  private take(origin: string): Connection | undefined {
    const list = this.idle.get(origin)
    while (list && list.length > 0) {
      const conn = list.pop()!
      if (conn.usable()) return conn
    }
    return undefined
  }

  private connect(origin: string): Connection {
    return new Connection(origin, this.options, this.sessions, (conn) => this.park(conn), (conn) => this.forget(conn))
  }

  private park(conn: Connection): void {
    const list = this.idle.get(conn.origin) ?? []
    list.push(conn)
    this.idle.set(conn.origin, list)
  }

  private forget(conn: Connection): void {
    const list = this.idle.get(conn.origin)
    const at = list?.indexOf(conn) ?? -1
    if (at >= 0) list!.splice(at, 1)
  }
}

function reason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('aborted')
}

/** An error the retry policy reads as undici's: its code, and the socket's bytes read (see onUsedSocket). */
function socketError(message: string, code: string, socket: net.Socket): Error {
  return Object.assign(new Error(message), {code, socket: {bytesRead: socket.bytesRead}})
}

/** One request on a connection, from its head going out to the last byte of its body. */
interface Exchange {
  body: Batches
  /** Head bytes read so far (a head may take several reads). */
  head?: Buffer
  /** Body bytes still to come; undefined until the head is parsed. */
  left?: number
  keepAlive: boolean
  resolve(res: StreamedResponse): void
  reject(error: Error): void
  signal?: AbortSignal
  onAbort(): void
}

/**
 * One connection: reads land in the current exchange's body slabs, or in a scratch buffer when
 * no request is out (bytes nobody asked for: the connection is then closed).
 */
class Connection {
  readonly socket: net.Socket
  /** host[:port] for the Host header. */
  private readonly host: string
  private exchange?: Exchange
  private scratch?: Buffer
  /** The exchange whose body slab the pending read goes into (see room). */
  private roomFor?: Exchange
  private idleTimer?: NodeJS.Timeout
  private connectTimer?: NodeJS.Timeout
  private closed = false

  constructor(
    readonly origin: string,
    private readonly options: WireOptions,
    sessions: Map<string, Buffer>,
    private readonly park: (conn: Connection) => void,
    private readonly forget: (conn: Connection) => void,
  ) {
    const url = new URL(origin)
    this.host = url.host
    const secure = url.protocol === 'https:'
    const host = url.hostname.replace(/^\[|\]$/g, '')
    const port = url.port ? Number(url.port) : secure ? 443 : 80
    const onread = {buffer: () => this.room(), callback: (n: number, buf: Uint8Array) => this.onRead(n, buf as Buffer)}
    this.socket = secure
      ? tls.connect({host, port, onread, servername: net.isIP(host) ? undefined : host, session: sessions.get(origin), rejectUnauthorized: true} as tls.ConnectionOptions)
      : net.connect({host, port, onread})
    this.socket.setNoDelay(true)
    if (secure) this.socket.on('session', (session: Buffer) => sessions.set(origin, session))
    this.connectTimer = setTimeout(() => this.fail(socketError(`connect timeout (${options.connectTimeoutMs} ms)`, 'UND_ERR_CONNECT_TIMEOUT', this.socket)), options.connectTimeoutMs)
    this.socket.once(secure ? 'secureConnect' : 'connect', () => clearTimeout(this.connectTimer))
    this.socket.on('timeout', () => this.fail(socketError('stalled: no data within the stall timeout', 'WIRE_STALLED', this.socket)))
    this.socket.on('error', (error) => this.fail(Object.assign(error, {socket: {bytesRead: this.socket.bytesRead}})))
    this.socket.on('close', () => this.fail(socketError('other side closed', 'UND_ERR_SOCKET', this.socket)))
  }

  usable(): boolean {
    return !this.closed && !this.socket.destroyed && this.socket.readyState === 'open'
  }

  send(req: WireRequest, signal?: AbortSignal): Promise<StreamedResponse> {
    clearTimeout(this.idleTimer)
    this.socket.ref()
    return new Promise((resolve, reject) => {
      const body = new Batches()
      const onAbort = () => this.fail(reason(signal!))
      const ex: Exchange = {body, keepAlive: false, resolve, reject, signal, onAbort}
      body.attach(this.sourceFor(ex))
      this.exchange = ex
      if (this.socket.isPaused()) this.socket.resume()
      signal?.addEventListener('abort', onAbort, {once: true})
      this.socket.setTimeout(this.options.stallTimeoutMs)
      try {
        this.socket.write(requestHead(this.host, req.path, req.headers), 'latin1')
      } catch (error) {
        this.fail(error as Error)
      }
    })
  }

  /**
   * How an exchange's body sets the pace of the connection (pause when its consumer falls
   * behind) or stops it; once the exchange is over, the connection is no longer its to touch.
   */
  private sourceFor(ex: Exchange): BodySource {
    const conn = this
    const mine = () => this.exchange === ex
    return {
      get paused() {
        return mine() && conn.socket.isPaused()
      },
      // A connection paused for its reader is not stalled: the stall clock stops meanwhile.
      pause: () => {
        if (!mine()) return
        this.socket.pause()
        this.socket.setTimeout(0)
      },
      resume: () => {
        if (!mine()) return
        this.socket.setTimeout(this.options.stallTimeoutMs)
        this.socket.resume()
      },
      abort: (error) => void (mine() && this.fail(error)),
    }
  }

  destroy(): void {
    this.closed = true
    clearTimeout(this.idleTimer)
    this.socket.destroy()
  }

  /**
   * Where the next read goes. Node asks for it ahead of the read (at connect, and after each
   * read), so it is the free end of the body's slab only if a request is out at that moment;
   * else a scratch buffer, whose bytes are copied to the body they turn out to belong to.
   */
  private room(): Buffer {
    this.roomFor = this.exchange
    if (this.exchange) return this.exchange.body.room()
    return (this.scratch ??= Buffer.allocUnsafe(SCRATCH_BYTES))
  }

  /** `n` bytes were read into `buf` (what room() gave). Returns whether to go on reading. */
  private onRead(n: number, buf: Buffer): boolean {
    const ex = this.exchange
    if (!ex) {
      // A server that talks when no request is out is out of step: do not reuse it.
      this.destroy()
      return false
    }
    const direct = this.roomFor === ex
    if (ex.left === undefined) this.onHead(ex, n, buf, direct)
    else if (direct) this.onBody(ex, n)
    else this.onBody(ex, n, buf)
    return !this.socket.isPaused()
  }

  private onHead(ex: Exchange, n: number, buf: Buffer, direct: boolean): void {
    const read = Buffer.from(buf.subarray(0, n))
    let head: Buffer = ex.head ? Buffer.concat([ex.head, read]) : read
    for (let end = headEnd(head, ex.head?.length); end >= 0; end = headEnd(head)) {
      let parsed: ResponseHead
      try {
        parsed = parseHead(head.toString('latin1', 0, end))
      } catch (error) {
        this.fail(error as Error)
        return
      }
      const rest: Buffer = head.subarray(end)
      // 100 Continue, 103 Early Hints: the answer follows.
      if (parsed.statusCode < 200) {
        head = rest
        continue
      }
      if (direct) ex.body.skip(n - rest.length)
      ex.head = undefined
      this.start(ex, parsed, rest.length, direct ? undefined : buf.subarray(n - rest.length, n))
      return
    }
    if (head.length > MAX_HEAD) {
      this.fail(new BadResponse(`the response head is longer than ${MAX_HEAD} bytes`))
      return
    }
    ex.head = head
    if (direct) ex.body.skip(n)
  }

  /** The head is read; `bytes` of the body came with it (in `copyFrom` when not read into the body). */
  private start(ex: Exchange, head: ResponseHead, bytes: number, copyFrom?: Buffer): void {
    if ('unsupported' in head.body) {
      if (head.statusCode === 206) {
        this.fail(new WireUnsupported(head.body.unsupported))
        return
      }
      // An answer that is not the range is read for its status and headers only.
      const {body} = ex
      this.exchange = undefined
      this.destroy()
      ex.signal?.removeEventListener('abort', ex.onAbort)
      ex.resolve({statusCode: head.statusCode, headers: head.headers, body})
      body.end()
      return
    }
    ex.left = head.body.length
    ex.keepAlive = head.keepAlive
    ex.resolve({statusCode: head.statusCode, headers: head.headers, body: ex.body})
    if (bytes > 0 || ex.left === 0) this.onBody(ex, bytes, copyFrom)
  }

  /** `n` body bytes arrived: read into the body's slab, or in `copyFrom` (scratch) to be copied there. */
  private onBody(ex: Exchange, n: number, copyFrom?: Buffer): void {
    const take = Math.min(n, ex.left!)
    ex.left! -= take
    // More than Content-Length said: what lies past it is not this answer's, and the
    // connection is out of step with its server.
    const excess = n - take
    if (excess > 0) ex.keepAlive = false
    const done = ex.left === 0
    if (done) this.finish(ex)
    // Handing bytes over comes after finish: it may end the exchange (a consumer that stops).
    if (take > 0) {
      if (copyFrom) ex.body.push(copyFrom.subarray(0, take))
      else ex.body.fill(take)
    }
    if (excess > 0 && !copyFrom) ex.body.skip(excess)
    if (done) ex.body.end()
  }

  /** The body is complete: the connection is free for the next request, or closed. */
  private finish(ex: Exchange): void {
    this.exchange = undefined
    ex.signal?.removeEventListener('abort', ex.onAbort)
    this.socket.setTimeout(0)
    if (!ex.keepAlive || !this.usable()) {
      this.destroy()
      return
    }
    if (this.socket.isPaused()) this.socket.resume()
    this.socket.unref()
    this.idleTimer = setTimeout(() => this.destroy(), this.options.keepAliveMs ?? KEEP_ALIVE_MS)
    this.idleTimer.unref()
    this.park(this)
  }

  /** The connection failed or was stopped: the exchange in flight fails with `error`. */
  private fail(error: Error): void {
    clearTimeout(this.connectTimer)
    const ex = this.exchange
    this.exchange = undefined
    if (!this.closed) {
      this.destroy()
      this.forget(this)
    }
    if (!ex) return
    ex.signal?.removeEventListener('abort', ex.onAbort)
    if (ex.left === undefined) ex.reject(error)
    else ex.body.end(error)
  }
}
