// Writes oclif.manifest.json: the flags, arguments and help of every command, as oclif's own
// `oclif manifest` does. Without it oclif imports every command file (and all they import) on
// each run, to learn which commands exist; with it, only the command that runs is loaded.
// Run after tsc (npm run build), so the manifest always describes the dist/ it sits beside.
import {writeFile} from 'node:fs/promises'
import {fileURLToPath} from 'node:url'
import {Plugin} from '@oclif/core'

const root = fileURLToPath(new URL('..', import.meta.url))
const plugin = new Plugin({root, type: 'core', ignoreManifest: true, errorOnManifestCreate: true, isRoot: true})
await plugin.load()
await writeFile(new URL('../oclif.manifest.json', import.meta.url), JSON.stringify(plugin.manifest, null, 2) + '\n')
