#!/bin/sh
':' //; exec node --max-semi-space-size=1 "$0" "$@"
// The line above is for sh (node reads it as a string and a comment). The flag caps V8's young
// generation at 1 MiB a semi-space: a pull allocates fast and keeps little, so the default 16 MiB
// only held garbage (and the network buffers it points to), about 15 MB of peak RSS.
import {execute} from '@oclif/core'

await execute({dir: import.meta.url})
