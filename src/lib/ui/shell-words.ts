/** A word as a POSIX shell reads it back: plain when it can be, else in single quotes. */
export const shellWord = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", "'\\''")}'`)

/** A command line to copy and paste: each word quoted as needed. */
export const shellLine = (words: string[]) => words.map(shellWord).join(' ')
