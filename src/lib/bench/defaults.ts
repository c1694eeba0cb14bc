/** The grid mtune bench runs by default: connection counts and chunk sizes. */
export const DEFAULT_CONNECTIONS = [1, 2, 4, 8, 16, 32]
export const DEFAULT_CHUNKS = [1, 4, 16, 64].map((m) => m * 1024 * 1024)
