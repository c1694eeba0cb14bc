/**
 * Flags that other download tools take (aria2c, wget, curl, the hf CLI, sha256sum), typed into
 * mtune out of habit, with what mtune takes for them: said on the line that refuses the flag.
 */
const CONNECTIONS = 'connections are -c N (to start with; the count adapts) and --max-connections N'
const DIRECTORY = 'a directory is -o DIR/ (made if missing)'

const HABITS: Record<string, Record<string, string>> = {
  pull: {
    '--checksum': "the digest is --sha256 HEX (aria2c's --checksum=sha-256=HEX)",
    '--check-integrity': 'the digest is --sha256 HEX; mtune verify PATH checks a file on disk',
    '-x': CONNECTIONS,
    '--max-connection-per-server': CONNECTIONS,
    '-s': CONNECTIONS,
    '--split': CONNECTIONS,
    '--min-split-size': "a request's size is --chunk-size SIZE",
    '-d': DIRECTORY,
    '--dir': DIRECTORY,
    '-P': DIRECTORY,
    '--directory-prefix': DIRECTORY,
    '--output-dir': DIRECTORY,
    '-O': 'the destination is -o PATH (a file, or a directory ending in /)',
    '--output-document': 'the destination is -o PATH (a file, or a directory ending in /)',
    '--remote-name': 'the name comes from the server, else the URL, by default (-o DIR/ for another directory)',
    '-C': "mtune resumes its own downloads by itself (run the same command again); --continue takes over another tool's, as curl -C - does",
    '--max-download-limit': 'a cap is --limit-rate RATE',
    '--max-overall-download-limit': 'a cap is --limit-rate RATE',
    '--token': 'tokens come from HF_TOKEN (or HF_TOKEN_PATH, $HF_HOME/token) for the Hub, MODELSCOPE_API_TOKEN for ModelScope',
    '--revision': 'the revision goes in the source: hf://ORG/NAME@REVISION',
    '--repo-type': 'a dataset is hf://datasets/ORG/NAME',
    '--cache-dir': 'the caches are HF_HUB_CACHE=DIR (or HF_HOME), MODELSCOPE_CACHE=DIR, OLLAMA_MODELS=DIR; --local-dir DIR writes a plain tree',
    '-n': '~/.netrc is read by default (NETRC names another file)',
    '--netrc': '~/.netrc is read by default (NETRC names another file)',
    '-H': 'mtune sends no custom headers: credentials go in the URL (https://USER:TOKEN@host/...) or ~/.netrc, the Hub token in HF_TOKEN',
    '--header': 'mtune sends no custom headers: credentials go in the URL (https://USER:TOKEN@host/...) or ~/.netrc, the Hub token in HF_TOKEN',
    '--no-check-certificate': "mtune never skips TLS verification: trust the server's CA (NODE_EXTRA_CA_CERTS=ca.pem, or the system bundle)",
    '-v': 'details are --debug',
    '--verbose': 'details are --debug',
  },
  verify: {
    '-c': 'mtune verify SHA256SUMS (or its directory) checks what it lists, as sha256sum -c does',
    '--check': 'mtune verify SHA256SUMS (or its directory) checks what it lists, as sha256sum -c does',
    '--fix': 'that is --repair',
  },
}

/**
 * mtune flags whose short form means something else elsewhere: said when the value given does
 * not parse. `-c URL` is wget's and aria2c's continue, typed as mtune's connection count.
 */
const SHORT_HABITS: Record<string, Record<string, [short: string, habit: string]>> = {
  pull: {'--connections': ['-c', "-c N is mtune's connection count; wget's -c (continue) is --continue, for a file another tool cut short (mtune resumes its own, and aria2c's, by itself)"]},
}

/** What to add when `flag`'s value did not parse and the user typed its short form (in argv). */
export function shortHabitFor(command: string | undefined, flag: string, argv: string[]): string | undefined {
  const entry = command ? SHORT_HABITS[command]?.[flag] : undefined
  return entry && argv.includes(entry[0]) ? entry[1] : undefined
}

/** What mtune has for a flag another tool takes (a clause for the refusal's line), or undefined. `flag` as typed, a value after = included. */
export function habitFor(command: string | undefined, flag: string): string | undefined {
  return command ? HABITS[command]?.[flag.replace(/=.*$/, '')] : undefined
}

/**
 * --insecure means plain http to an Ollama registry; given for anything else it would be ignored
 * and read as curl -k, which mtune never does: refused, in the same words by every command.
 */
export const INSECURE_ELSEWHERE = "--insecure applies to ollama:// (plain http to a registry); mtune never skips TLS verification: trust the server's CA (NODE_EXTRA_CA_CERTS=ca.pem, or the system bundle)"
