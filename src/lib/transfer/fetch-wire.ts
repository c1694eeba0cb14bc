import {TransferError, onUsedSocket, type FailureKind} from '../net/retry-policy.js'
import {isDiskError} from './range-fetch.js'
import type {RangeRequest} from './range-fetch.js'

/**
 * What the engine (main thread) and its fetch threads say to each other. Only plain data
 * crosses: requests, byte counts, written ranges and errors as their facts.
 */

/**
 * Where a segment ends, shared with the fetch thread writing it: the engine shrinks it when
 * another connection takes over the tail, and the thread reads it before every write. A write
 * that started before a cut may run past the new end by at most one flush; those bytes are the
 * same bytes the new connection writes, so the overlap costs a little traffic, never data.
 */
export class EndCell {
  private readonly cell: BigInt64Array

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(8)) {
    this.cell = new BigInt64Array(buffer)
  }

  get(): number {
    return Number(Atomics.load(this.cell, 0))
  }

  set(end: number): void {
    Atomics.store(this.cell, 0, BigInt(end))
  }
}

export type ToThread =
  | {t: 'fetch'; id: number; req: RangeRequest; partPath: string; end: SharedArrayBuffer}
  | {t: 'stop'; id: number}
  /** The engine opened (ok) or failed to open the part file: writes to it may go ahead, or fail. */
  | {t: 'part'; path: string; ok: boolean}
  /** The transfer is over: close the thread's handle on the part file. */
  | {t: 'close'; path: string}

export type FromThread =
  | {t: 'first'; id: number}
  /** Received bytes and written ranges (start, end pairs) since the last report. */
  | {t: 'progress'; id: number; received: number; written: number[]}
  | {t: 'end'; id: number; pos: number; error?: WireError}
  | {t: 'closed'; path: string}
  /** The thread's writes to the part file wait on the disk (write-gate.ts sent them to the pool). */
  | {t: 'slow'; path: string}

export type WireError =
  | {disk: true; code: string; message: string}
  | {disk: false; kind: FailureKind; message: string; status?: number; retryAfterMs?: number; usedSocket: boolean; validators?: {etag?: string; lastModified?: string}}

export function errorToWire(error: unknown): WireError {
  if (isDiskError(error)) return {disk: true, code: (error as {code: string}).code, message: (error as Error).message}
  const e = error instanceof TransferError ? error : new TransferError('transient', (error as Error)?.message ?? String(error))
  return {disk: false, kind: e.kind, message: e.message, status: e.status, retryAfterMs: e.retryAfterMs, usedSocket: onUsedSocket(error), validators: e.details.validators}
}

/** The error as the engine's failure policy reads it: the same kind, status, wait and socket fact. */
export function errorFromWire(w: WireError): Error {
  if (w.disk) return Object.assign(new Error(w.message), {code: w.code})
  // onUsedSocket looks for a socket that had read bytes.
  const cause = w.usedSocket ? {socket: {bytesRead: 1}} : undefined
  return new TransferError(w.kind, w.message, {status: w.status, retryAfterMs: w.retryAfterMs, cause, validators: w.validators})
}
