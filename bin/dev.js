#!/usr/bin/env node
// Same as run.js but with oclif's development flag (more verbose errors); the
// sources are compiled by `npm run build` first, there is no on-the-fly TypeScript.
import {execute} from '@oclif/core'

await execute({development: true, dir: import.meta.url})
