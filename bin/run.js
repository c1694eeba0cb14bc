#!/bin/sh
':' //; exec node --max-semi-space-size=1 --liftoff-only --disable-warning=ExperimentalWarning "$0" "$@"
// The line above is for sh (node reads it as a string and a comment).
// --disable-warning=ExperimentalWarning: undici says its SOCKS5 client (HTTPS_PROXY=socks5://)
//   is experimental, as a Node warning of two lines on stderr before any output of mtune's.
// The other flags keep a pull's memory low:
// --max-semi-space-size=1 caps V8's young generation at 1 MiB a semi-space: a pull allocates
//   fast and keeps little, so the default 16 MiB only held garbage (and the network buffers it
//   points to), about 15 MB of peak RSS.
// --liftoff-only keeps undici's HTTP parser (WebAssembly) on V8's baseline compiler. Optimising
//   it happens a few hundred ms into a pull, just as data starts to flow, and its compiler's
//   working memory made that the pull's peak: about 25 MB more. For a body the parser only
//   hands over byte ranges, so the optimised code bought no measurable speed.
import {execute} from '@oclif/core'

await execute({dir: import.meta.url})
