import type {FailureKind} from '../net/retry-policy.js'

/** A source (the URL or a mirror) that keeps failing with others at hand is dropped after this many in a row. */
export const SOURCE_FAILURE_LIMIT = 4

/** What the engine knows when one request has failed: the error, and the source's state. */
export interface FailureFacts {
  kind: FailureKind
  status?: number
  message: string
  /** The local disk failed (ENOSPC and the like), not the network. */
  disk: boolean
  /** The server serves ranges: what is on disk can be continued. */
  ranged: boolean
  primary: boolean
  /** Other sources are still in use. */
  others: boolean
  /** The source redirects to a signed link (a CDN) that can be asked for again. */
  signed: boolean
  /** The request used a link that another connection has renewed since. */
  staleLink: boolean
  /** Another connection is renewing the link right now. */
  renewing: boolean
  /** The link was renewed less than a second ago: renewing again would loop. */
  renewedJustNow: boolean
  /** The source's failures in a row, this one included. */
  sourceFailures: number
}

/**
 * What to do about one failed request, decided from facts alone (the engine acts on it):
 * - `fail`: the pull ends (`why` says which way);
 * - `drop`: this source is left, the others go on;
 * - `renew`: a refused signed link: join a renewal under way and/or renew it; when that fails,
 *   `otherwise`;
 * - `throttle`: the server said "too many": fewer connections, and this source waits;
 * - `rest`: this source waits a while (others at hand), then the failure counts as a retry;
 * - `retry`: count it and try again after a backoff.
 */
export type FailureAction =
  | {do: 'fail'; why: 'disk' | 'not-resumable' | 'changed' | 'refused'}
  | {do: 'drop'; why: string}
  | {do: 'renew'; join: boolean; renew: boolean; otherwise: FailureAction}
  | {do: 'throttle'}
  | {do: 'rest'}
  | {do: 'retry'}

export function decideFailure(f: FailureFacts): FailureAction {
  if (f.disk) return {do: 'fail', why: 'disk'}
  if (!f.ranged && f.kind !== 'fatal') return {do: 'fail', why: 'not-resumable'}
  switch (f.kind) {
    case 'changed':
      return f.primary ? {do: 'fail', why: 'changed'} : {do: 'drop', why: `its file changed: ${f.message}`}
    case 'fatal': {
      const refused: FailureAction = f.others ? {do: 'drop', why: f.message} : {do: 'fail', why: 'refused'}
      // Signed CDN links expire mid-download: ask the original URL where the file is now, and go
      // on (still counted as a failure, so a CDN that always refuses cannot loop). A request sent
      // with a link that another connection has renewed since just retries.
      if (f.status !== undefined && [401, 403, 404, 410].includes(f.status) && f.signed) {
        if (f.staleLink) return {do: 'retry'}
        return {do: 'renew', join: f.renewing, renew: !f.renewedJustNow, otherwise: refused}
      }
      return refused
    }
    case 'bad-response':
      return f.others || !f.primary ? {do: 'drop', why: f.message} : {do: 'retry'}
    case 'throttle':
      return {do: 'throttle'}
    default:
      // With other sources at hand, a failing one rests, and one that keeps failing is dropped:
      // its connections move to the next best without losing a byte already written.
      if (!f.others) return {do: 'retry'}
      if (f.sourceFailures >= SOURCE_FAILURE_LIMIT) return {do: 'drop', why: `${f.sourceFailures} failures in a row (${f.message}): switching to the other sources`}
      return {do: 'rest'}
  }
}
