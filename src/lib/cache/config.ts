import {createHash} from 'node:crypto'
import {join} from 'node:path'
import {minFreeOf, type CacheOptions} from './options.js'

/**
 * The nginx configuration of `mtune cache`: pure, from options to text (tested on its own and
 * with `nginx -t`). The design, from shared/reference/fleet.md:
 *
 * - Requests to a hub (Hugging Face at /, Ollama's registry at /v2/, ModelScope under
 *   /-/modelscope/) go to the hub every time, uncached, with the client's own Authorization: the
 *   hub decides who may have what, even when the bytes are in the cache.
 * - The hub's redirect to its CDN is passed back to the client as the hub gave it (status and
 *   X-Repo-Commit, X-Linked-Etag, X-Linked-Size), its Location rewritten to the cache's
 *   /-/cdn/SCHEME/HOST/PATH?QUERY, absolute. The client follows it to the cache.
 * - /-/cdn/ is the one location that talks to CDNs, and the only one with `slice`: the slice
 *   module must not meet a redirect (nginx PR 1611). Slices are cached under HOST/PATH without the
 *   query, so an expired signature does not stop a cached object from serving; proxy_cache_lock
 *   makes concurrent misses of a slice wait for one fetch. No Authorization or Cookie goes there.
 *   Only CDN hosts are fetched from (the upstreams' own hosts, the hubs' known CDN domains and
 *   --cdn-host), so the cache is not an open proxy into the rack's network.
 * - Xet: clients are kept on the plain HTTP path (an HTTP cache cannot serve Xet's store): the
 *   Accept asking for Xet file info is not passed upstream, and X-Xet-* and Link headers are not
 *   passed back from /resolve/.
 */

/** CDN domains the hubs redirect to (suffixes). fleet.md: never assume one CDN host name. */
export const KNOWN_CDN_DOMAINS = ['hf.co', 'huggingface.co', 'xethub.hf.co', 'cloudflarestorage.com', 'ollama.com', 'ollama.ai', 'modelscope.cn', 'modelscope.ai', 'aliyuncs.com']

/** Slices: big enough that a model is few upstream requests, small enough to share a file among clients early. */
export const SLICE = '8m'

const XET_HEADERS = ['X-Xet-Hash', 'X-Xet-Refresh-Route', 'X-Xet-Cas-Url', 'X-Xet-Access-Token', 'X-Xet-Token-Expiration', 'X-Xet-Endpoint', 'Link']
/** What a client needs from the hub's redirect (huggingface_hub's get_hf_file_metadata, huggingface.js). */
const KEPT_ON_REDIRECT = ['X-Repo-Commit', 'X-Linked-Etag', 'X-Linked-Size', 'ETag', 'X-Error-Code', 'X-Error-Message', 'Accept-Ranges', 'Docker-Content-Digest']
const REDIRECTS = [301, 302, 303, 307, 308]

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
/** A quoted nginx string: upstream URLs and regexes never hold a `$` but at a regex's end. */
const q = (s: string) => `"${s.replace(/["\\]/g, (c) => `\\${c}`)}"`

/** A URL as a bare nginx token: whatever nginx would read as syntax is percent-encoded. */
const bare = (url: string) => url.replace(/[;{}'"\\$\s#]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`)

export function cacheUrl(o: Pick<CacheOptions, 'listen'>): string {
  const host = o.listen.host.includes(':') ? `[${o.listen.host}]` : o.listen.host
  // A wildcard listen address is reached on loopback from here; other hosts use publicUrl (serve.ts).
  return `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${o.listen.port}`
}

/** The CDN host names the cache may fetch from, as a map's regexes: upstream hosts exactly, CDN domains as suffixes. */
function allowedCdnHosts(o: CacheOptions): string[] {
  const upstreamHosts = [o.upstreams.hf, o.upstreams.ollama, o.upstreams.modelscope, ...Object.values(o.origins)].map((u) => new URL(u).hostname.replace(/^\[|\]$/g, ''))
  const exact = [...new Set(upstreamHosts)].map((h) => `~^${escapeRegex(h)}$`)
  const suffixes = [...new Set([...KNOWN_CDN_DOMAINS, ...o.cdnHosts.map((h) => h.replace(/^\*?\./, ''))])].map((d) => `~(^|\\.)${escapeRegex(d)}$`)
  return [...exact, ...suffixes]
}

/** Where a redirect from an upstream sends the client: back through the cache. */
function redirectMap(o: CacheOptions): string[] {
  const lines = [
    '  # Another cache\'s /-/cdn/ (chained caches) is fetched through that cache: it is a CDN to this one.',
    '  "~^(?<mtune_xs>https?)://(?<mtune_xh>[^/?#]+)(?<mtune_xr>/-/cdn/.*)$" $scheme://$http_host/-/cdn/$mtune_xs/$mtune_xh$mtune_xr;',
    '  # The upstreams\' own redirects stay on their own path through the cache (with the client\'s Authorization);',
    '  # anything else is a CDN: /-/cdn/ fetches and caches it.',
  ]
  const prefixes: Array<[string, string]> = [
    [o.upstreams.hf, ''],
    [o.upstreams.ollama, ''],
    [o.upstreams.modelscope, '/-/modelscope'],
  ]
  for (const [origin, prefix] of prefixes) lines.push(`  ${q(`~^${escapeRegex(origin)}(?<mtune_up>/.*)?$`)} $scheme://$http_host${prefix}$mtune_up;`)
  lines.push('  "~^(?<mtune_cs>https?)://(?<mtune_ch>[^/?#]+)(?<mtune_cr>.*)$" $scheme://$http_host/-/cdn/$mtune_cs/$mtune_ch$mtune_cr;')
  lines.push('  "~^/" $scheme://$http_host$upstream_http_location;')
  return lines
}

/** Named locations that answer an upstream's redirect, one per status, keeping what clients need. */
function redirectLocations(): string[] {
  const out: string[] = []
  for (const status of REDIRECTS) {
    out.push(`    location @redirect${status} {`)
    for (const h of KEPT_ON_REDIRECT) out.push(`      add_header ${h} $upstream_http_${h.toLowerCase().replace(/-/g, '_')} always;`)
    out.push(`      return ${status} $mtune_redirect;`, '    }')
  }
  return out
}

const interceptRedirects = () => ['      proxy_intercept_errors on;', ...REDIRECTS.map((s) => `      error_page ${s} = @redirect${s};`)]

/** A location that passes requests to an upstream hub, uncached, with the client's credentials. */
function hubLocation(match: string, upstreamVar: string, extra: string[] = []): string[] {
  return [
    `    location ${match} {`,
    ...extra,
    `      proxy_pass $${upstreamVar};`,
    '      proxy_set_header Accept-Encoding "";',
    '      proxy_set_header Accept $mtune_accept;',
    '      proxy_cache off;',
    ...interceptRedirects(),
    '    }',
  ]
}

/** nginx's min_free (1.19.1+): the cache manager evicts to keep this much of the disk free. */
function minFreeParam(o: CacheOptions): string {
  const bytes = minFreeOf(o)
  return bytes ? ` min_free=${Math.max(1, Math.floor(bytes / (1024 * 1024)))}m` : ''
}

const minFreeLines = (o: CacheOptions): string[] =>
  minFreeOf(o) === undefined ? [`  # --min-free ${o.minFree}: the size of the disk under ${o.dir} is unknown, so none is kept free; give a size (--min-free 50G).`] : []

export function nginxConfig(o: CacheOptions, now = new Date()): string {
  const dir = o.dir
  const listenHost = o.listen.host.includes(':') ? `[${o.listen.host}]` : o.listen.host
  const maxSizeMb = Math.max(64, Math.floor(o.maxSize / (1024 * 1024)))
  const lines: string[] = [
    `# Written by mtune cache on ${now.toISOString()}: a pull-through cache for model hubs.`,
    `# Start: nginx -p ${dir} -c ${join(dir, 'nginx.conf')}   (mtune cache serve --dir ${dir} does it)`,
    `# Stop:  mtune cache stop --dir ${dir}`,
    ...(o.user ? [`user ${o.user};`] : []),
    'worker_processes auto;',
    `pid ${join(dir, 'nginx.pid')};`,
    `error_log ${join(dir, 'logs', 'error.log')} warn;`,
    '',
    'events {',
    '  worker_connections 4096;',
    '}',
    '',
    'http {',
    '  default_type application/octet-stream;',
    '  sendfile on;',
    '  tcp_nopush on;',
    '  server_tokens off;',
    `  client_body_temp_path ${join(dir, 'tmp', 'client')};`,
    `  proxy_temp_path ${join(dir, 'tmp', 'proxy')};`,
    `  fastcgi_temp_path ${join(dir, 'tmp', 'fastcgi')};`,
    `  uwsgi_temp_path ${join(dir, 'tmp', 'uwsgi')};`,
    `  scgi_temp_path ${join(dir, 'tmp', 'scgi')};`,
    '  # One line per request and per slice fetched: `mtune cache status` reads it.',
    '  log_format mtune escape=json \'{"t":"$msec","m":"$request_method","u":"$uri","s":"$status","sent":"$body_bytes_sent",\'',
    '                               \'"cache":"$upstream_cache_status","up":"$upstream_bytes_received","slice":"$mtune_slice","len":"$request_length"}\';',
    `  access_log ${join(dir, 'logs', 'access.log')} mtune;`,
    ...minFreeLines(o),
    `  proxy_cache_path ${join(dir, 'cache')} levels=1:2 keys_zone=mtune:64m max_size=${maxSizeMb}m${minFreeParam(o)} inactive=365d use_temp_path=off;`,
    ...(o.resolvers.length ? [`  resolver ${o.resolvers.join(' ')} valid=300s;`, '  resolver_timeout 10s;'] : ['  # No name server in /etc/resolv.conf: only upstreams and CDNs given as IP addresses can be reached.']),
    '  proxy_http_version 1.1;',
    '  proxy_set_header Connection "";',
    '  proxy_connect_timeout 30s;',
    '  proxy_read_timeout 300s;',
    '  proxy_send_timeout 300s;',
    '  proxy_ssl_server_name on;',
    '  proxy_ssl_verify on;',
    '  proxy_ssl_verify_depth 4;',
    ...(o.caFile ? [`  proxy_ssl_trusted_certificate ${o.caFile};`] : ['  # No CA bundle found (apt-get install ca-certificates): https upstreams cannot be verified, so they fail.']),
    '',
    `  map "" $hf_upstream { default ${q(o.upstreams.hf)}; }`,
    `  map "" $ollama_upstream { default ${q(o.upstreams.ollama)}; }`,
    `  map "" $modelscope_upstream { default ${q(o.upstreams.modelscope)}; }`,
    '',
    '  # Xet file info is not asked for: clients stay on the plain HTTP path, which this cache serves.',
    '  map $http_accept $mtune_accept {',
    '    "~*application/vnd\\.xet-" "*/*";',
    '    default $http_accept;',
    '  }',
    '',
    '  map $upstream_http_location $mtune_redirect {',
    ...redirectMap(o),
    '    default $upstream_http_location;',
    '  }',
    '',
    '  # /-/cdn/SCHEME/HOST/PATH?QUERY, from the request as sent (undecoded: signatures cover it).',
    '  map $request_uri $mtune_cdn_url {',
    '    "~^/-/cdn/(?<mtune_us>https?)/(?<mtune_uh>[^/?#]+)(?<mtune_ur>.*)$" $mtune_us://$mtune_uh$mtune_ur;',
    '    default "";',
    '  }',
    '  # The cache key: host and path, never the query (the signature), so that an object outlives its link.',
    '  map $request_uri $mtune_cdn_key {',
    '    "~^/-/cdn/https?/(?<mtune_kh>[^/?#]+)(?<mtune_kp>[^?#]*)" $mtune_kh$mtune_kp;',
    '    default "";',
    '  }',
    '  map $request_uri $mtune_cdn_host {',
    '    "~^/-/cdn/https?/(?<mtune_hn>\\[[^\\]]+\\]|[^/?#:]+)" $mtune_hn;',
    '    default "";',
    '  }',
    '  map $mtune_cdn_host $mtune_cdn_allowed {',
    ...allowedCdnHosts(o).map((r) => `    ${q(r)} 1;`),
    '    default 0;',
    '  }',
    '  map $request_uri $mtune_origin_path {',
    '    "~^/-/origin/[^/?#]+(?<mtune_op>/.*)$" $mtune_op;',
    '    default "/";',
    '  }',
    '  map $request_uri $mtune_slice {',
    '    "~^/-/(cdn|origin)/" $slice_range;',
    '    default "";',
    '  }',
    '',
    '  server {',
    `    listen ${listenHost}:${o.listen.port};`,
    '    server_name _;',
    '    client_max_body_size 1m;',
    '',
    '    location = /-/mtune {',
    '      default_type application/json;',
    // The upstreams tell a client which registry's models this cache serves (Ollama's registry is
    // part of a model's name); the origins, which plain URLs it serves at /-/origin/NAME/.
    `      return 200 '{"service": "mtune cache", "config": "${GENERATION}", "upstreams": ${JSON.stringify(o.upstreams)}, "origins": ${JSON.stringify(Object.fromEntries(Object.entries(o.origins).map(([n, u]) => [n, bare(u)])))}}\\n';`,
    '    }',
    '',
    '    location ^~ /-/cdn/ {',
    '      if ($mtune_cdn_allowed = 0) {',
    '        return 403 "mtune cache: $mtune_cdn_host is not a CDN this cache fetches from (mtune cache serve --cdn-host adds one)\\n";',
    '      }',
    `      slice ${SLICE};`,
    '      log_subrequest on;',
    '      proxy_cache mtune;',
    '      proxy_cache_key $mtune_cdn_key$slice_range;',
    '      proxy_set_header Range $slice_range;',
    '      proxy_set_header Authorization "";',
    '      proxy_set_header Cookie "";',
    '      proxy_set_header Accept-Encoding "";',
    '      proxy_cache_valid 200 206 365d;',
    '      proxy_cache_lock on;',
    '      proxy_cache_lock_timeout 10m;',
    '      proxy_cache_lock_age 10m;',
    '      proxy_ignore_headers Expires Cache-Control Set-Cookie Vary X-Accel-Expires X-Accel-Buffering;',
    '      proxy_hide_header Set-Cookie;',
    '      proxy_ssl_name $mtune_cdn_host;',
    '      proxy_pass $mtune_cdn_url;',
    '      add_header X-Mtune-Cache $upstream_cache_status always;',
    '    }',
    '',
    ...Object.entries(o.origins).flatMap(([name, url]) => [
      `    location ^~ /-/origin/${name}/ {`,
      `      slice ${SLICE};`,
      '      log_subrequest on;',
      '      proxy_cache mtune;',
      `      proxy_cache_key origin:${bare(url)}$mtune_origin_path$slice_range;`,
      '      proxy_set_header Range $slice_range;',
      '      proxy_set_header Accept-Encoding "";',
      // A plain mirror's file may change: revalidated with its ETag after a day.
      '      proxy_cache_valid 200 206 1d;',
      '      proxy_cache_revalidate on;',
      '      proxy_cache_lock on;',
      '      proxy_cache_lock_timeout 10m;',
      '      proxy_cache_lock_age 10m;',
      '      proxy_ignore_headers Expires Cache-Control Set-Cookie Vary;',
      `      proxy_pass ${bare(url)}$mtune_origin_path;`,
      '      add_header X-Mtune-Cache $upstream_cache_status always;',
      '    }',
      '',
    ]),
    ...hubLocation('^~ /-/modelscope/', 'modelscope_upstream', ['      rewrite ^/-/modelscope(/.*)$ $1 break;']),
    '',
    '    # Ollama\'s registry: manifests passed through; blob answers redirect to /-/cdn/ (cached there).',
    ...hubLocation('^~ /v2/', 'ollama_upstream'),
    '',
    '    # Hugging Face: /api/... and /ORG/NAME/resolve/REV/PATH (datasets/ too), passed through.',
    ...hubLocation('~ /resolve/', 'hf_upstream', XET_HEADERS.map((h) => `      proxy_hide_header ${h};`)),
    ...hubLocation('/', 'hf_upstream'),
    '',
    ...redirectLocations(),
    '  }',
    '}',
    '',
  ]
  const text = lines.join('\n')
  return text.replace(GENERATION, configGeneration(text))
}

const GENERATION = '@generation@'

/**
 * What identifies a configuration's settings, served at /-/mtune: a digest of the text without
 * its date. A second serve with other settings compares it to decide on a reload, and reads it
 * back from nginx to know the reload took.
 */
function configGeneration(text: string): string {
  return createHash('sha256').update(text.replace(/^# Written by mtune cache on .*$/m, '')).digest('hex').slice(0, 16)
}

/** The generation a configuration file carries (undefined: not one of mtune's, or older). */
export function generationOf(config: string): string | undefined {
  return /"service": "mtune cache", "config": "([0-9a-f]{16})"/.exec(config)?.[1]
}
