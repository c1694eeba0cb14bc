import type {Dispatcher} from 'undici'
import {headersFor} from '../net/credentials.js'
import {get, redact, signedUrlExpiry} from '../net/request.js'
import {renewalTime, type Source, type WritableSource} from './source-pool.js'

/** The source's link as its one writer sees it. */
const own = (source: Source) => source as WritableSource

/**
 * Signed links (a hub's redirect to its CDN) expire, some within the hour: a pull longer than
 * that asks the source's own URL again for a fresh link before the old one runs out, or after
 * the CDN refused it (403, 410). The renewal's only writer of a source's target, headers and
 * renewal time; one renewal per source at a time, shared by every connection that needs it.
 */
export class LinkRenewal {
  constructor(
    private readonly dispatcher: Dispatcher,
    /** The origin the user's headers (a token) were given for. */
    private readonly trustedOrigin: string,
    private readonly headers: Record<string, string>,
    private readonly events: {
      info(message: string): void
      /** The fresh answer is another version of the file. */
      changed(why: string): void
    },
  ) {}

  /** Whether the link should be renewed before a new request starts with it. */
  due(source: Source): boolean {
    return source.renewAt !== undefined && Date.now() > source.renewAt && source.target !== source.url
  }

  /** Before a request: renew a link about to expire; one that cannot be renewed is used as it is. */
  async beforeRequest(source: Source): Promise<void> {
    const renewed = await this.renew(source, 'is about to expire')
    if (!renewed || (source.renewAt !== undefined && Date.now() > source.renewAt)) own(source).renewAt = undefined
  }

  /** Ask the source's original URL where the file is now (a fresh signed link); shared. */
  renew(source: Source, why: string): Promise<boolean> {
    own(source).resolving ??= this.resolve(source, why).finally(() => (own(source).resolving = undefined))
    return source.resolving!
  }

  private async resolve(source: Source, why: string): Promise<boolean> {
    own(source).resolvedAt = performance.now()
    try {
      const headers = headersFor(source.url, this.trustedOrigin, this.headers)
      const res = await get(this.dispatcher, source.url, {...headers, range: 'bytes=0-0', 'accept-encoding': 'identity'})
      await res.body.dump().catch(() => {})
      if (res.status !== 206 && res.status !== 200) return false
      if (source.etag && res.headers.etag && res.headers.etag !== source.etag) {
        this.events.changed(`its ETag changed (${source.etag} -> ${res.headers.etag})`)
        return true
      }
      this.events.info(`the link to ${redact(source.url)} ${why}: resolved it again, continuing the missing ranges`)
      const link = own(source)
      link.target = res.url
      link.headers = headersFor(res.url, this.trustedOrigin, this.headers)
      link.renewAt = renewalTime(signedUrlExpiry(res.url))
      return true
    } catch {
      return false
    }
  }
}
