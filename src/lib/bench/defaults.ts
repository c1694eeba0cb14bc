/** The grid mtune bench runs by default: connection counts and chunk sizes. */
export const DEFAULT_CONNECTIONS = [1, 2, 4, 8, 16, 32]
export const DEFAULT_CHUNKS = [1, 4, 16, 64].map((m) => m * 1024 * 1024)

/**
 * The smallest file whose throughput says something about the link: below it a transfer is
 * over inside TCP's slow start, and the grid times request round trips (a 7-byte config.json
 * "measured" 1 Mbit/s on loopback). Such a run is shown but not saved as the link.
 */
export const LINK_MIN_BYTES = 8 * 1024 * 1024
