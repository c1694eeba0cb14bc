import {createHash, createHmac} from 'node:crypto'
import {once} from 'node:events'
import {createServer, type IncomingMessage, type ServerResponse} from 'node:http'
import type {AddressInfo} from 'node:net'
import {startMirror, type MirrorServer} from './mirror-server.js'

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex')
export const gitSha1 = (b: Buffer) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex')

/**
 * A CDN as the hubs use: files by digest at signed URLs that expire, and that refuse any
 * request carrying an Authorization header (tokens must never reach it).
 */
export interface FakeCdn {
  mirror: MirrorServer
  /** A signed URL for a file, valid for `ttlMs`. */
  sign(name: string): string
  add(name: string, content: Buffer): void
  /** Requests that carried an Authorization header (must stay 0). */
  authSeen: number
  /** Requests refused because their signature had expired. */
  expiredRefusals: number
  ttlMs: number
  close(): Promise<void>
}

export async function startCdn(options: {ttlMs?: number; perConnectionRate?: number; hideExpiry?: boolean} = {}): Promise<FakeCdn> {
  const key = 'cdn-secret'
  const files = new Map<string, Buffer>()
  const expiries = new Map<string, number>()
  const state = {authSeen: 0, expiredRefusals: 0}
  const mirror = await startMirror({
    content: Buffer.alloc(0),
    name: '__none__',
    files,
    perConnectionRate: options.perConnectionRate,
    authorize(req, name) {
      if (req.headers.authorization) {
        state.authSeen++
        return 403
      }
      const q = new URL(req.url ?? '/', 'http://x').searchParams
      const token = q.get('Signature') ?? ''
      const expires = options.hideExpiry ? expiries.get(token) : Number(q.get('Expires'))
      if (!expires || createHmac('sha256', key).update(`${name}:${expires}`).digest('hex') !== token) return 403
      if (Date.now() > expires * 1000) {
        state.expiredRefusals++
        return 403
      }
      return undefined
    },
  })
  const ttlMs = options.ttlMs ?? 60_000
  return {
    mirror,
    ttlMs,
    sign(name) {
      // Expires in epoch seconds, as CloudFront-style signed URLs carry it; unless hidden.
      const expires = Math.ceil((Date.now() + ttlMs) / 1000)
      const signature = createHmac('sha256', key).update(`${name}:${expires}`).digest('hex')
      expiries.set(signature, expires)
      const visible = options.hideExpiry ? '' : `Expires=${expires}&`
      return `${mirror.origin}/file/${encodeURIComponent(name)}?${visible}Signature=${signature}`
    },
    add: (name, content) => void files.set(name, content),
    get authSeen() {
      return state.authSeen
    },
    get expiredRefusals() {
      return state.expiredRefusals
    },
    close: () => mirror.close(),
  }
}

interface Server {
  origin: string
  requests: Array<{method: string; path: string; authorization?: string}>
  close(): Promise<void>
}

async function serve(handler: (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>): Promise<Server> {
  const requests: Server['requests'] = []
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    requests.push({method: req.method ?? 'GET', path: url.pathname + url.search, authorization: req.headers.authorization})
    void Promise.resolve(handler(req, res, url)).catch((e) => res.writeHead(500).end(String(e)))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const {port} = server.address() as AddressInfo
  return {
    origin: `http://127.0.0.1:${port}`,
    requests,
    async close() {
      server.closeAllConnections()
      server.close()
    },
  }
}

export interface HubFile {
  path: string
  content: Buffer
  /** LFS files are served from the CDN and listed with a sha256. */
  lfs: boolean
  /** The size the listings give, where it is not the content's: a model larger than any test disk. */
  listedSize?: number
}

const listedSize = (f: HubFile) => f.listedSize ?? f.content.length

export interface HubRepo {
  id: string
  type?: 'model' | 'dataset'
  commit: string
  /** Branch or tag names and the commit each points to (main -> commit by default). */
  refs?: Record<string, string>
  files: HubFile[]
  gated?: boolean
  private?: boolean
  /** Names listed by the API without any file behind them: hostile listings. */
  extraNames?: string[]
  /**
   * LFS files are Xet-backed, as on the real Hub: /resolve/ answers carry X-Xet-Hash and the Xet
   * Link relations, and a request that asks for Xet file info (Accept) gets it. The Xet endpoints
   * (under /xet/ on the hub) only count what reaches them.
   */
  xet?: boolean
  /**
   * The revision's `siblings` list stops after this many files, as the Hub's does for large
   * repos; the tree listing (/api/.../tree/REV?recursive=true, paged) has them all.
   */
  siblingsCap?: number
}

/** A small file straight from the hub, ranges honoured (huggingface.js asks bytes=0-0 for the size). */
function smallFile(req: IncomingMessage, res: ServerResponse, headers: Record<string, string>, file: HubFile): void {
  const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '')
  const total = file.content.length
  if (range && Number(range[1]) < total) {
    const start = Number(range[1])
    const end = Math.min(total - 1, range[2] === '' ? total - 1 : Number(range[2]))
    res.writeHead(206, {...headers, 'content-range': `bytes ${start}-${end}/${total}`, 'content-length': String(end - start + 1), 'accept-ranges': 'bytes'}).end(file.content.subarray(start, end + 1))
  } else res.writeHead(200, {...headers, 'content-length': String(total), 'accept-ranges': 'bytes'}).end(file.content)
}

/**
 * A fake Hugging Face Hub: /api/.../revision/REV?blobs=true, and /resolve/ with CDN redirects for
 * LFS files and, as the Hub does, redirects into its /api/resolve-cache/ for small ones
 * (`directSmallFiles`: answered at /resolve/ itself, as the Hub did before).
 */
export async function startFakeHf(repos: HubRepo[], options: {token?: string; cdn: FakeCdn; rateLimitFirst?: number; directSmallFiles?: boolean; treePage?: number; treeLinkOrigin?: string; treeRefused?: boolean}) {
  let limited = options.rateLimitFirst ?? 0
  for (const repo of repos) for (const f of repo.files) if (f.lfs) options.cdn.add(sha256(f.content), f.content)

  const denied = (req: IncomingMessage, repo: HubRepo | undefined, res: ServerResponse): boolean => {
    const auth = req.headers.authorization
    const good = options.token !== undefined && auth === `Bearer ${options.token}`
    if (auth && !good) {
      res.writeHead(401, {'x-error-message': 'Invalid credentials in Authorization header'}).end()
      return true
    }
    if (!repo || (repo.private && !good)) {
      res.writeHead(401, {'x-error-code': 'RepoNotFound', 'x-error-message': 'Repository not found'}).end()
      return true
    }
    if (repo.gated && !good) {
      res.writeHead(401, {'x-error-code': 'GatedRepo', 'x-error-message': 'Access to this model is restricted'}).end()
      return true
    }
    return false
  }
  /** An API path's `models` or `datasets`. */
  const typeOf = (kind: string): 'model' | 'dataset' => (kind === 'datasets' ? 'dataset' : 'model')
  const find = (type: string, id: string) => repos.find((r) => (r.type ?? 'model') === type && r.id === id)
  const xetRequests: string[] = []
  const origin = () => server.origin
  const commitOf = (repo: HubRepo, rev: string) => (rev === repo.commit ? rev : {main: repo.commit, ...repo.refs}[rev])
  /** The repo and the commit REV names, as the Hub answers for them; undefined once it said no (401, 404). */
  const repoAt = (req: IncomingMessage, res: ServerResponse, type: 'model' | 'dataset', id: string, rev: string): {repo: HubRepo; commit: string} | undefined => {
    const repo = find(type, id)
    if (denied(req, repo, res)) return undefined
    const commit = commitOf(repo!, decodeURIComponent(rev))
    if (commit) return {repo: repo!, commit}
    res.writeHead(404, {'x-error-code': 'RevisionNotFound', 'x-error-message': 'Invalid rev id'}).end()
    return undefined
  }

  const server = await serve(async (req, res, url) => {
    // What huggingface.js asks before downloading into the cache (downloadFileToCacheDir).
    const pathsInfo = /^\/api\/(models|datasets)\/(.+)\/paths-info\/([^/]+)$/.exec(url.pathname)
    if (pathsInfo && req.method === 'POST') {
      let body = ''
      for await (const chunk of req) body += chunk
      const at = repoAt(req, res, typeOf(pathsInfo[1]), pathsInfo[2], pathsInfo[3])
      if (!at) return
      const {repo, commit} = at
      const wanted = (JSON.parse(body || '{}') as {paths?: string[]}).paths ?? []
      const entries = repo.files
        .filter((f) => wanted.includes(f.path))
        .map((f) => ({
          type: 'file',
          path: f.path,
          oid: gitSha1(f.content),
          size: listedSize(f),
          ...(f.lfs ? {lfs: {oid: sha256(f.content), size: listedSize(f), pointerSize: 134}} : {}),
          lastCommit: {id: commit, title: 'upload', date: '2026-01-01T00:00:00.000Z'},
        }))
      res.writeHead(200, {'content-type': 'application/json'}).end(JSON.stringify(entries))
      return
    }
    const api = /^\/api\/(models|datasets)\/(.+)\/revision\/([^/]+)$/.exec(url.pathname)
    if (api) {
      if (limited > 0) {
        limited--
        res.writeHead(429, {'retry-after': '1'}).end()
        return
      }
      const at = repoAt(req, res, typeOf(api[1]), api[2], api[3])
      if (!at) return
      const {repo, commit} = at
      const siblings = repo.files.map((f) => ({
        rfilename: f.path,
        size: listedSize(f),
        blobId: gitSha1(f.content),
        ...(f.lfs ? {lfs: {sha256: sha256(f.content), size: listedSize(f), pointerSize: 134}} : {}),
      }))
      for (const name of repo.extraNames ?? []) siblings.push({rfilename: name, size: 1, blobId: 'a'.repeat(40)})
      res.writeHead(200, {'content-type': 'application/json'}).end(JSON.stringify({id: repo.id, sha: commit, siblings: siblings.slice(0, repo.siblingsCap)}))
      return
    }
    // The tree, its folders too, `treePage` entries a page (the Hub's: 1,000), the next page in
    // an absolute Link header (on `treeLinkOrigin`: a mirror passing the Hub's links through).
    const tree = /^\/api\/(models|datasets)\/(.+)\/tree\/([^/]+)$/.exec(url.pathname)
    if (tree) {
      const at = repoAt(req, res, typeOf(tree[1]), tree[2], tree[3])
      if (!at) return
      const {repo} = at
      // The commit gone between the revision's answer and the tree's (a force-push).
      if (options.treeRefused) {
        res.writeHead(404, {'x-error-code': 'RevisionNotFound', 'x-error-message': 'Invalid rev id'}).end()
        return
      }
      const folders = new Set(repo.files.flatMap((f) => f.path.split('/').slice(0, -1).map((_, i, parts) => parts.slice(0, i + 1).join('/'))))
      const entries = [
        ...[...folders].map((path) => ({type: 'directory', path, oid: 'f'.repeat(40), size: 0})),
        ...repo.files.map((f) => ({type: 'file', path: f.path, oid: gitSha1(f.content), size: listedSize(f), ...(f.lfs ? {lfs: {oid: sha256(f.content), size: listedSize(f), pointerSize: 134}} : {})})),
      ].sort((a, b) => (a.path < b.path ? -1 : 1))
      const page = options.treePage ?? 1000
      const from = Number(url.searchParams.get('cursor') ?? 0)
      const headers: Record<string, string> = {'content-type': 'application/json'}
      if (from + page < entries.length) headers.link = `<${options.treeLinkOrigin ?? origin()}${url.pathname}?recursive=true&cursor=${from + page}>; rel="next"`
      res.writeHead(200, headers).end(JSON.stringify(entries.slice(from, from + page)))
      return
    }
    if (url.pathname.startsWith('/xet/')) {
      xetRequests.push(url.pathname)
      res.writeHead(500).end('a Xet endpoint: an HTTP cache must keep clients away from it')
      return
    }
    // REV is a commit, or a branch or tag (then X-Repo-Commit says which commit it is).
    const resolve = /^\/(datasets\/)?([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname)
    if (resolve) {
      const at = repoAt(req, res, resolve[1] ? 'dataset' : 'model', resolve[2], resolve[3])
      if (!at) return
      const {repo, commit} = at
      const path = resolve[4].split('/').map(decodeURIComponent).join('/')
      const file = repo.files.find((f) => f.path === path)
      if (!file) {
        res.writeHead(404, {'x-error-code': 'EntryNotFound'}).end()
        return
      }
      const headers: Record<string, string> = {'x-repo-commit': commit, etag: `"${file.lfs ? sha256(file.content) : gitSha1(file.content)}"`}
      if (file.lfs) {
        const linked = {'x-linked-etag': `"${sha256(file.content)}"`, 'x-linked-size': String(file.content.length)}
        const xet = repo.xet
          ? {'x-xet-hash': sha256(file.content), link: `<${origin()}/xet/auth>; rel="xet-auth", <${origin()}/xet/reconstruction/${sha256(file.content)}>; rel="xet-reconstruction-info"`}
          : {}
        if (repo.xet && /application\/vnd\.xet-fileinfo\+json/.test(req.headers.accept ?? '')) {
          res.writeHead(200, {...headers, ...linked, ...xet, 'content-type': 'application/vnd.xet-fileinfo+json'}).end(JSON.stringify({hash: sha256(file.content), size: file.content.length}))
          return
        }
        res.writeHead(302, {...headers, ...linked, ...xet, location: options.cdn.sign(sha256(file.content))}).end()
      } else if (options.directSmallFiles) {
        smallFile(req, res, headers, file)
      } else {
        // As the Hub answers a small file now: a 307 with a relative Location into its own
        // /api/resolve-cache/, with the file's commit and git sha1 on the redirect.
        const cached = `/api/resolve-cache/${resolve[1] ? 'datasets' : 'models'}/${repo.id}/${commit}/${resolve[4]}?${encodeURIComponent(url.pathname)}=&etag=${encodeURIComponent(headers.etag)}`
        res.writeHead(307, {...headers, location: cached}).end()
      }
      return
    }
    const resolveCache = /^\/api\/resolve-cache\/(models|datasets)\/([^/]+\/[^/]+)\/([0-9a-f]{40})\/(.+)$/.exec(url.pathname)
    if (resolveCache) {
      const repo = find(typeOf(resolveCache[1]), resolveCache[2])
      if (denied(req, repo, res)) return
      const path = resolveCache[4].split('/').map(decodeURIComponent).join('/')
      const file = commitOf(repo!, resolveCache[3]) ? repo!.files.find((f) => f.path === path && !f.lfs) : undefined
      if (!file) {
        res.writeHead(404, {'x-error-code': 'EntryNotFound'}).end()
        return
      }
      smallFile(req, res, {'x-repo-commit': resolveCache[3], etag: `"${gitSha1(file.content)}"`}, file)
      return
    }
    res.writeHead(404).end()
  })
  /** Requests that reached the Xet endpoints (must stay empty behind a cache). */
  return Object.assign(server, {xetRequests})
}

/** A fake Ollama registry: manifests, and blobs answered with 307 to the CDN. */
export async function startFakeOllama(models: Array<{namespace: string; model: string; tag: string; blobs: Buffer[]; manifest?: string}>, cdn: FakeCdn) {
  const manifests = new Map<string, string>()
  for (const m of models) {
    for (const b of m.blobs) cdn.add(sha256(b), b)
    const [config, ...layers] = m.blobs
    // Odd spacing on purpose: the store must keep the bytes exactly as received.
    const manifest =
      m.manifest ??
      JSON.stringify(
        {
          schemaVersion: 2,
          mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
          config: {mediaType: 'application/vnd.docker.container.image.v1+json', digest: `sha256:${sha256(config)}`, size: config.length},
          layers: layers.map((l, i) => ({mediaType: i === 0 ? 'application/vnd.ollama.image.model' : 'application/vnd.ollama.image.params', digest: `sha256:${sha256(l)}`, size: l.length})),
        },
        null,
        3,
      )
    manifests.set(`/v2/${m.namespace}/${m.model}/manifests/${m.tag}`, manifest)
  }
  return serve((req, res, url) => {
    const manifest = manifests.get(url.pathname)
    if (manifest !== undefined) {
      res.writeHead(200, {'content-type': 'application/vnd.docker.distribution.manifest.v2+json'}).end(manifest)
      return
    }
    const blob = /^\/v2\/[^/]+\/[^/]+\/blobs\/sha256:([0-9a-f]{64})$/.exec(url.pathname)
    if (blob) {
      res.writeHead(307, {location: cdn.sign(blob[1])}).end()
      return
    }
    res.writeHead(404, {'content-type': 'application/json'}).end('{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
  })
}

/** A fake ModelScope: the recursive file list, and files answered with 302 to the CDN. */
export async function startFakeModelscope(repos: Array<{id: string; revision: string; files: Array<{path: string; content: Buffer}>}>, cdn: FakeCdn) {
  for (const r of repos) for (const f of r.files) cdn.add(sha256(f.content), f.content)
  return serve((req, res, url) => {
    const list = /^\/api\/v1\/models\/(.+)\/repo\/files$/.exec(url.pathname)
    const repo = repos.find((r) => r.id === (list?.[1] ?? /^\/api\/v1\/models\/(.+)\/repo$/.exec(url.pathname)?.[1]))
    if (!repo || url.searchParams.get('Revision') !== repo.revision) {
      res.writeHead(404).end('{"Code":10010101,"Message":"not found"}')
      return
    }
    if (list) {
      const files = repo.files.map((f) => ({Name: f.path.split('/').pop(), Path: f.path, Type: 'blob', Size: f.content.length, Sha256: sha256(f.content), Revision: repo.revision}))
      res.writeHead(200, {'content-type': 'application/json'}).end(JSON.stringify({Code: 200, Data: {Files: [...files, {Name: 'sub', Path: 'sub', Type: 'tree'}]}}))
      return
    }
    const file = repo.files.find((f) => f.path === url.searchParams.get('FilePath'))
    if (!file) {
      res.writeHead(404).end()
      return
    }
    res.writeHead(302, {location: cdn.sign(sha256(file.content))}).end()
  })
}
