import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {sudoNote} from '../src/lib/sources/sudo-note.js'

describe('sudoNote', () => {
  const root = '/root/.cache/huggingface/hub/models--org--name'

  it("says that a pull run with sudo goes into root's store, not the user's, and what to do", () => {
    assert.equal(
      sudoNote('hf', root, {SUDO_USER: 'alice'}, 0),
      "running under sudo, so this goes into root's store (/root/.cache/huggingface/hub/models--org--name), where alice's programs do not look: pull as alice (only mtune tune --apply needs root), or set HF_HUB_CACHE to the store they read",
    )
    assert.match(sudoNote('ollama', '/root/.ollama/models', {SUDO_USER: 'bob'}, 0)!, /, or set OLLAMA_MODELS to the store they read$/)
    assert.match(sudoNote('modelscope', '/root/.cache/modelscope', {SUDO_USER: 'bob'}, 0)!, /, or set MODELSCOPE_CACHE to/)
  })

  it('says nothing where a setting chose the store, outside sudo, or for root itself', () => {
    for (const name of ['HF_HUB_CACHE', 'HUGGINGFACE_HUB_CACHE', 'HF_HOME']) assert.equal(sudoNote('hf', root, {SUDO_USER: 'alice', [name]: '/models'}, 0), undefined, name)
    assert.equal(sudoNote('ollama', root, {SUDO_USER: 'alice', OLLAMA_MODELS: '/models'}, 0), undefined)
    assert.equal(sudoNote('hf', root, {SUDO_USER: 'alice', HF_HOME: ' '}, 0)?.startsWith('running under sudo'), true, 'an empty setting is unset')
    assert.equal(sudoNote('hf', root, {}, 0), undefined, 'root logged in as root')
    assert.equal(sudoNote('hf', root, {SUDO_USER: 'root'}, 0), undefined)
    assert.equal(sudoNote('hf', root, {SUDO_USER: 'alice'}, 1000), undefined, 'sudo -u alice: her own store')
  })
})
