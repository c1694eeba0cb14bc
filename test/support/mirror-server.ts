import {createCipheriv, createHash} from 'node:crypto'
import {once} from 'node:events'
import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import {createServer as createTlsServer} from 'node:https'
import type {AddressInfo, Socket} from 'node:net'
import {setTimeout as sleep} from 'node:timers/promises'

/** Deterministic bytes for a seed: AES-CTR over zeros, fast enough for multi-GiB test files. */
export function makeContent(size: number, seed = 1): Buffer {
  const key = createHash('sha256').update(`mtune-test-${seed}`).digest().subarray(0, 16)
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16))
  const out = Buffer.allocUnsafe(size)
  // OpenSSL takes at most 2 GiB per call.
  const step = 256 * 1024 * 1024
  for (let at = 0; at < size; at += step) cipher.update(Buffer.alloc(Math.min(step, size - at))).copy(out, at)
  return out
}

export function sha256(data: Buffer): string {
  const hash = createHash('sha256')
  for (let at = 0; at < data.length; at += 256 * 1024 * 1024) hash.update(data.subarray(at, at + 256 * 1024 * 1024))
  return hash.digest('hex')
}

export type Fault =
  | {status: number; retryAfter?: string; rateLimit?: string} // rateLimit: a RateLimit header, as the Hub sends on its 429s
  | {reset: number} // destroy the socket after this many body bytes
  | {truncate: number} // end the response cleanly, short of what was promised
  | {stall: number} // stop sending after this many bytes and keep the socket open
  | {badContentRange: true} // 206 with a Content-Range that is not the one asked for
  | {ignoreRange: true} // answer this request with a 200 and the whole file
  | {overrun: number} // a chunked 206 (no Content-Length) that sends this many bytes past its range

export interface RequestInfo {
  /** The client's port: behind a proxy, the proxy's upstream socket. */
  remotePort?: number
  index: number
  connection: number
  method: string
  path: string
  range?: string
  ifRange?: string
  authorization?: string
}

export interface MirrorOptions {
  content: Buffer
  /** Served from this request index on (counting GETs of the file, from 0) with a new ETag. */
  changeAfter?: {requests: number; content: Buffer}
  perConnectionRate?: number
  linkRate?: number
  firstByteDelayMs?: number
  /** Every `every`-th connection (1st, 1+every-th, ...) is held to `rate` bytes/s. */
  slowConnections?: {every: number; rate: number; offset?: number}
  ignoreRange?: boolean
  /** Answer at most this many bytes to a range request (a 206 for the start of the range asked), as some servers cap a range. */
  maxRange?: number
  /** No Content-Length and no range support: a chunked stream of unknown size. */
  noLength?: boolean
  etag?: boolean
  lastModified?: boolean
  contentDisposition?: string
  /** Default application/octet-stream. */
  contentType?: string
  /** The file is served at /file/NAME; `/redirect/...` sends a 302 there. */
  name?: string
  fault?: (request: RequestInfo) => Fault | undefined
  /** Serve https with this key and certificate. */
  tls?: {key: Buffer; cert: Buffer}
  /** More files, served at /file/NAME beside the main one. */
  files?: Map<string, Buffer>
  /** A limit per client, as nginx's limit_conn: connections beyond it are reset at once. */
  maxConnections?: number
  /**
   * Copies behind a load balancer: connection i is served by backend i % n, from its own copy
   * under its own dates (ETag and Last-Modified), as servers that copied the file without them.
   */
  backends?: Buffer[]
  /**
   * How `backends` are taken: per connection (above: an L4 balancer, or a sticky one), or per
   * request, request i by backend i % n (an L7 balancer such as nginx's upstream round robin).
   */
  balance?: 'connection' | 'request'
  /** A status to refuse the request with (a CDN checking signatures), or undefined. */
  authorize?: (req: IncomingMessage, name: string) => number | undefined
}

class Bucket {
  private tokens: number
  private last = performance.now()
  private chain: Promise<void> = Promise.resolve()

  constructor(private readonly rate: number, private readonly burst = Math.max(16 * 1024, rate / 20)) {
    this.tokens = this.burst
  }

  /** Serialised so that concurrent takers share the rate fairly, in order. */
  take(bytes: number): Promise<void> {
    const run = this.chain.then(async () => {
      for (;;) {
        const now = performance.now()
        this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.rate) / 1000)
        this.last = now
        if (this.tokens >= bytes || this.tokens >= this.burst) {
          this.tokens -= bytes
          return
        }
        await sleep(Math.max(1, ((bytes - this.tokens) * 1000) / this.rate))
      }
    })
    this.chain = run
    return run
  }
}

export interface MirrorServer {
  url: string
  /** The same file behind a 302. */
  redirectUrl: string
  origin: string
  requests: RequestInfo[]
  /** Body bytes written to sockets, over all requests. */
  bytesSent: number
  connections: number
  /** Connections reset for going over maxConnections. */
  refused: number
  setOptions(patch: Partial<MirrorOptions>): void
  /** Cut every open connection, as a mirror that dies does. */
  dropConnections(): void
  close(): Promise<void>
}

export async function startMirror(initial: MirrorOptions): Promise<MirrorServer> {
  let options = {etag: true, lastModified: true, name: 'model.bin', ...initial}
  const link = () => (options.linkRate ? linkBucket ?? (linkBucket = new Bucket(options.linkRate)) : undefined)
  let linkBucket: Bucket | undefined
  const sockets = new Map<Socket, {index: number; bucket?: Bucket}>()
  let fileRequests = 0
  const state = {requests: [] as RequestInfo[], bytesSent: 0, connections: 0, refused: 0}

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    void handle(req, res).catch(() => res.destroy())
  }
  const server: Server = options.tls ? createTlsServer(options.tls, listener) : createServer(listener)
  server.keepAliveTimeout = 60_000
  server.on(options.tls ? 'secureConnection' : 'connection', (socket: Socket) => {
    if (options.maxConnections !== undefined && sockets.size >= options.maxConnections) {
      state.refused++
      socket.resetAndDestroy()
      return
    }
    const index = state.connections++
    const slow = options.slowConnections
    const rate = slow && (index + (slow.offset ?? 0)) % slow.every === 0 ? slow.rate : options.perConnectionRate
    sockets.set(socket, {index, bucket: rate ? new Bucket(rate) : undefined})
    socket.on('close', () => sockets.delete(socket))
  })

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://x').pathname
    const conn = sockets.get(req.socket)
    if (path.startsWith('/redirect/')) {
      res.writeHead(302, {location: `/file/${path.slice('/redirect/'.length)}`}).end()
      return
    }
    if (path === '/stats') {
      res.writeHead(200, {'content-type': 'application/json'}).end(JSON.stringify({bytesSent: state.bytesSent, requests: state.requests.length, connections: state.connections}))
      return
    }
    if (!path.startsWith('/file/')) {
      res.writeHead(404).end('not found')
      return
    }
    const info: RequestInfo = {
      index: state.requests.length,
      connection: conn?.index ?? -1,
      method: req.method ?? 'GET',
      path,
      range: req.headers.range,
      ifRange: req.headers['if-range'] as string | undefined,
      authorization: req.headers.authorization,
      remotePort: req.socket.remotePort,
    }
    state.requests.push(info)
    const name = decodeURIComponent(path.slice('/file/'.length))
    const refused = options.authorize?.(req, name)
    if (refused) {
      res.writeHead(refused).end(`refused (${refused})`)
      return
    }
    const other = options.files?.get(name)
    if (options.files && !other && name !== options.name) {
      res.writeHead(404).end('no such file')
      return
    }
    const version = options.changeAfter && fileRequests >= options.changeAfter.requests ? 1 : 0
    if (req.method === 'GET') fileRequests++
    const backend = options.backends && !other ? (options.balance === 'request' ? info.index : (conn?.index ?? 0)) % options.backends.length : undefined
    const content = other ?? (version === 1 ? options.changeAfter!.content : backend !== undefined ? options.backends![backend] : options.content)
    const etag = backend === undefined ? `"v${version}-${content.length}"` : `"b${backend}-v${version}-${content.length}"`
    const lastModified = new Date(Date.UTC(2026, 0, 1 + version, backend ?? 0)).toUTCString()
    const fault = options.fault?.(info)

    if (options.firstByteDelayMs) await sleep(options.firstByteDelayMs)
    if (fault && 'status' in fault) {
      res.writeHead(fault.status, {...(fault.retryAfter ? {'retry-after': fault.retryAfter} : {}), ...(fault.rateLimit ? {ratelimit: fault.rateLimit} : {})}).end(`status ${fault.status}`)
      return
    }
    const headers: Record<string, string> = {'content-type': options.contentType ?? 'application/octet-stream'}
    if (options.etag) headers.etag = etag
    if (options.lastModified) headers['last-modified'] = lastModified
    if (options.contentDisposition) headers['content-disposition'] = options.contentDisposition

    const total = content.length
    let start = 0
    let end = total - 1
    let partial = false
    const ignore = options.ignoreRange || options.noLength || (fault !== undefined && 'ignoreRange' in fault)
    const ifRangeOk = !info.ifRange || info.ifRange === etag || info.ifRange === lastModified
    if (info.range && !ignore && ifRangeOk) {
      headers['accept-ranges'] = 'bytes'
      const m = /^bytes=(\d*)-(\d*)$/.exec(info.range)
      if (m) {
        if (m[1] === '') {
          start = Math.max(0, total - Number(m[2]))
        } else {
          start = Number(m[1])
          if (m[2] !== '') end = Math.min(total - 1, Number(m[2]))
        }
        if (options.maxRange) end = Math.min(end, start + options.maxRange - 1)
        if (start >= total || start > end) {
          res.writeHead(416, {...headers, 'content-range': `bytes */${total}`}).end()
          return
        }
        partial = true
      }
    }
    if (partial) {
      const shown = fault && 'badContentRange' in fault ? `bytes ${start + 1}-${end}/${total}` : `bytes ${start}-${end}/${total}`
      headers['content-range'] = shown
    }
    if (!options.noLength && !(fault && 'overrun' in fault)) headers['content-length'] = String(end - start + 1)
    res.writeHead(partial ? 206 : 200, headers)
    if (req.method === 'HEAD') {
      res.end()
      return
    }
    await send(res, content, start, end + 1, conn?.bucket, fault)
  }

  async function send(res: ServerResponse, content: Buffer, start: number, end: number, bucket: Bucket | undefined, fault?: Fault) {
    const limit =
      fault && 'reset' in fault ? fault.reset : fault && 'truncate' in fault ? fault.truncate : fault && 'stall' in fault ? fault.stall : Infinity
    let pos = start
    let sent = 0
    while (pos < end && !res.destroyed) {
      let n = Math.min(64 * 1024, end - pos, limit - sent)
      if (n <= 0) break
      const rate = Math.min(bucketRate(bucket), options.linkRate ?? Infinity)
      if (rate !== Infinity) n = Math.max(1024, Math.min(n, Math.floor(rate / 50)))
      if (bucket) await bucket.take(n)
      const shared = link()
      if (shared) await shared.take(n)
      if (res.destroyed) break
      // An overrun goes out in the same chunk as the range's last bytes, as a buggy edge sends it.
      const last = pos + n >= end && fault && 'overrun' in fault
      const ok = res.write(last ? Buffer.concat([content.subarray(pos, pos + n), Buffer.alloc(fault.overrun, 0xee)]) : content.subarray(pos, pos + n))
      state.bytesSent += n
      pos += n
      sent += n
      if (!ok) await drained(res)
    }
    if (pos >= end) {
      res.end()
      return
    }
    if (fault && 'reset' in fault) res.socket?.resetAndDestroy()
    else if (fault && 'truncate' in fault) res.socket?.end()
    else if (fault && 'stall' in fault) await once(res, 'close')
  }

  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const {port} = server.address() as AddressInfo
  const origin = `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`
  return {
    url: `${origin}/file/${options.name}`,
    redirectUrl: `${origin}/redirect/${options.name}`,
    origin,
    get requests() {
      return state.requests
    },
    get bytesSent() {
      return state.bytesSent
    },
    get connections() {
      return state.connections
    },
    get refused() {
      return state.refused
    },
    setOptions(patch) {
      options = {...options, ...patch}
      if (patch.linkRate !== undefined) linkBucket = undefined
    },
    dropConnections() {
      for (const socket of sockets.keys()) socket.destroy()
    },
    async close() {
      server.closeAllConnections()
      server.close()
      await once(server, 'close').catch(() => {})
    },
  }
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done)
      res.off('close', done)
      resolve()
    }
    res.on('drain', done)
    res.on('close', done)
  })
}

function bucketRate(bucket: Bucket | undefined): number {
  return bucket ? (bucket as unknown as {rate: number}).rate : Infinity
}

/**
 * Mirrors of one file for a test file, closed when it ends: `const mirror = mirrors(content)`,
 * then `await mirror({perConnectionRate: ...})`.
 */
export function mirrors(content: Buffer, register: (close: () => Promise<unknown>) => void) {
  const servers: MirrorServer[] = []
  register(() => Promise.all(servers.map((s) => s.close())))
  return async (options: Partial<MirrorOptions> = {}): Promise<MirrorServer> => {
    const server = await startMirror({content, ...options})
    servers.push(server)
    return server
  }
}
