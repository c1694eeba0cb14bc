import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {homedir} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import {MtuneError} from '../src/lib/errors.js'
import {headersFor} from '../src/lib/net/credentials.js'
import {signedUrlExpiry} from '../src/lib/net/request.js'
import {hfCacheDir, hfEndpoint, hfError} from '../src/lib/sources/hf.js'
import {nextPage} from '../src/lib/sources/hf-tree.js'
import {modelscopeCacheDir, modelscopeEndpoint} from '../src/lib/sources/modelscope.js'
import {ollamaModelsDir} from '../src/lib/sources/ollama.js'
import {hfToken, modelscopeToken} from '../src/lib/sources/tokens.js'
import {hubFileHeaders} from '../src/lib/sources/hub-files.js'
import {otherHub} from '../src/lib/sources/through-cache.js'
import {parseCacheUrl} from '../src/lib/sources/cache-endpoints.js'
import {ofVariant, pathsOf, selected, selector, underPath} from '../src/lib/sources/select.js'
import {parseSource} from '../src/lib/sources/reference.js'
import {parseSha256Digest, safeJoin, safeRelativePath} from '../src/lib/sources/safe-names.js'
import {renewalTime} from '../src/lib/transfer/source-pool.js'
import {weightNotes} from '../src/lib/sources/weight-formats.js'
import type {Plan} from '../src/lib/sources/plan.js'
import {describeFiles, describePlan} from '../src/lib/ui/pull-output.js'
import {nearestPath} from '../src/lib/near-names.js'
import {tempDir} from './support/temp.js'

describe('source references', () => {
  it('parses hf://, datasets and revisions with slashes', () => {
    assert.deepEqual(parseSource('hf://Qwen/Qwen2.5-7B'), {kind: 'hf', repoType: 'model', repo: 'Qwen/Qwen2.5-7B', revision: 'main'})
    assert.deepEqual(parseSource('hf://datasets/org/set@refs/pr/1'), {kind: 'hf', repoType: 'dataset', repo: 'org/set', revision: 'refs/pr/1'})
    assert.deepEqual(parseSource('hf://gpt2@v1.0'), {kind: 'hf', repoType: 'model', repo: 'gpt2', revision: 'v1.0'})
  })

  it("reads a path after the repo (or its revision) as huggingface_hub's HfFileSystem does", () => {
    const hf = (repo: string, revision: string, path?: string) => ({kind: 'hf', repoType: 'model', repo, revision, ...(path ? {path} : {})})
    assert.deepEqual(parseSource('hf://org/m/sub/w.gguf'), hf('org/m', 'main', 'sub/w.gguf'))
    assert.deepEqual(parseSource('hf://org/m@v2/sub/'), hf('org/m', 'v2', 'sub'))
    assert.deepEqual(parseSource('hf://org/m@main/*.gguf'), hf('org/m', 'main', '*.gguf'))
    // The Hub's refs with slashes keep them; any other branch with one is written with %2F.
    assert.deepEqual(parseSource('hf://org/m@refs/pr/3/config.json'), hf('org/m', 'refs/pr/3', 'config.json'))
    assert.deepEqual(parseSource('hf://org/m@refs/convert/parquet'), hf('org/m', 'refs/convert/parquet'))
    assert.deepEqual(parseSource('hf://org/m@feature%2Fx/a.bin'), hf('org/m', 'feature/x', 'a.bin'))
    assert.deepEqual(parseSource('hf://datasets/org/set/data/train.parquet'), {kind: 'hf', repoType: 'dataset', repo: 'org/set', revision: 'main', path: 'data/train.parquet'})
    assert.deepEqual(parseSource('modelscope://qwen/Q@v1/a/b.json'), {kind: 'modelscope', repo: 'qwen/Q', revision: 'v1', path: 'a/b.json'})
    // One GGUF variant, as llama.cpp's -hf and Ollama's hf.co/ORG/NAME:QUANT write it.
    assert.deepEqual(parseSource('hf://bartowski/X-GGUF:Q4_K_M'), {...hf('bartowski/X-GGUF', 'main'), quant: 'Q4_K_M'})
    assert.deepEqual(parseSource('hf://org/m:iq2_xs@v2'), {...hf('org/m', 'v2'), quant: 'iq2_xs'})
  })

  it('picks the files of one GGUF variant, its shards included, whatever the case of its tag', () => {
    assert.ok(ofVariant('X-Q4_K_M.gguf', 'q4_k_m'))
    assert.ok(ofVariant('X-Q4_K_M/X-Q4_K_M-00002-of-00003.gguf', 'Q4_K_M'))
    assert.ok(!ofVariant('X-Q4_K_S.gguf', 'Q4_K'), 'a whole tag, not a prefix')
    assert.ok(!ofVariant('mmproj-X-Q4_K_M.gguf', 'Q4_K_M'))
    assert.ok(!ofVariant('README.md', 'Q4_K_M'))
    assert.ok(ofVariant('README.md', undefined))
    // A repo that keeps every variant in one folder names them in the files.
    assert.ok(ofVariant('gguf/X-Q4_K_M.gguf', 'Q4_K_M'))
    assert.ok(ofVariant('gguf/X-Q8_0-00001-of-00002.gguf', 'q8_0'))
    assert.ok(!ofVariant('gguf/X-Q8_0.gguf', 'Q4_K_M'))
  })

  it('says what a path that matches nothing most likely meant', () => {
    const names = ['config.json', 'tokenizer.json', 'gguf/M-Q4_K_M.gguf', 'onnx_fp16/model.onnx', 'sub/a/weights.bin', 'other/weights.bin']
    assert.equal(nearestPath('confg.json', names), 'config.json')
    assert.equal(nearestPath('M-Q4_K_M.gguf', names), 'gguf/M-Q4_K_M.gguf', 'the file in its folder')
    assert.equal(nearestPath('Config.JSON', names), 'config.json')
    assert.equal(nearestPath('onnx-fp16/', names), 'onnx_fp16', 'a folder')
    assert.equal(nearestPath('a/weights.bin', names), 'sub/a/weights.bin')
    assert.equal(nearestPath('weights.bin', names), undefined, 'in two folders: no guess')
    assert.equal(nearestPath('README.md', names), undefined, 'nothing close')
  })

  it("parses ollama:// with Ollama's defaults and its tag rule", () => {
    assert.deepEqual(parseSource('ollama://llama3.2'), {kind: 'ollama', scheme: 'https', host: 'registry.ollama.ai', namespace: 'library', model: 'llama3.2', tag: 'latest'})
    assert.deepEqual(parseSource('ollama://user/model:q4'), {kind: 'ollama', scheme: 'https', host: 'registry.ollama.ai', namespace: 'user', model: 'model', tag: 'q4'})
    assert.deepEqual(parseSource('ollama://localhost:5000/ns/m', {insecure: true}), {kind: 'ollama', scheme: 'http', host: 'localhost:5000', namespace: 'ns', model: 'm', tag: 'latest'})
    // HOST/MODEL is NAMESPACE/MODEL to Ollama: a registry given without a namespace gets the line to use.
    assert.throws(() => parseSource('ollama://10.0.0.5:5000/qwen3:8b'), /"10\.0\.0\.5:5000" looks like a registry, which needs a namespace too: ollama:\/\/10\.0\.0\.5:5000\/library\/qwen3:8b$/)
    assert.throws(() => parseSource('ollama://localhost/tiny'), /needs a namespace too: ollama:\/\/localhost\/library\/tiny$/)
  })

  it('parses modelscope:// with master as the default revision, and keeps URLs as they are', () => {
    assert.deepEqual(parseSource('modelscope://qwen/Qwen2.5'), {kind: 'modelscope', repo: 'qwen/Qwen2.5', revision: 'master'})
    assert.deepEqual(parseSource('https://h/x.bin'), {kind: 'url', url: 'https://h/x.bin'})
  })

  it('says what a reference typed as its own ecosystem\'s tool takes most likely means', () => {
    const said = (input: string) => {
      try {
        parseSource(input)
      } catch (error) {
        return (error as Error).message
      }
      return ''
    }
    assert.match(said('Qwen/Qwen2.5-7B'), /: did you mean hf:\/\/Qwen\/Qwen2\.5-7B\? \(modelscope:\/\/Qwen\/Qwen2\.5-7B for ModelScope, ollama:\/\/Qwen\/Qwen2\.5-7B for Ollama\)$/)
    assert.match(said('llama3.2:3b'), /: did you mean ollama:\/\/llama3\.2:3b\?$/)
    assert.match(said('mirror.example.com/m.gguf'), /: did you mean https:\/\/mirror\.example\.com\/m\.gguf\?$/)
    // Ollama's (and llama.cpp's) name for a GGUF on the Hub: not a web address to fetch.
    assert.match(said('hf.co/bartowski/Qwen3-8B-GGUF:Q4_K_M'), /: did you mean hf:\/\/bartowski\/Qwen3-8B-GGUF:Q4_K_M \(into the Hugging Face cache\), or ollama:\/\/hf\.co\/bartowski\/Qwen3-8B-GGUF:Q4_K_M \(into Ollama's store, as ollama pull hf\.co\/bartowski\/Qwen3-8B-GGUF:Q4_K_M\)\?$/)
    assert.match(said('hf://spaces/org/app'), /a Space is an app, not a model/)
    assert.match(said('model.bin'), /: give a URL \(https:\/\/\.\.\.\), hf:\/\/ORG\/NAME/)
  })

  it('rejects malformed references with a usage error', () => {
    for (const bad of ['hf://', 'hf://a/b/../c', 'hf://a/b@main//c', 'hf://../x', 'ollama://a/b/c/d', 'ollama://m:', 'modelscope://single', 's3://bucket/x', 'model.bin']) {
      assert.throws(() => parseSource(bad), (e: unknown) => e instanceof MtuneError && e.exitCode === 2, bad)
    }
  })
})

describe('a Hub file URL pulled as a URL', () => {
  it('gets the Hub token on the Hub and its HF_ENDPOINT mirror, for its file URLs only (/resolve/, /raw/); credentials in the URL win', () => {
    const env = {HF_TOKEN: 'hf_secret', HF_ENDPOINT: 'https://artifacts.corp/api/hf', HF_HOME: tempDir('hf-home')}
    const bearer = {authorization: 'Bearer hf_secret'}
    assert.deepEqual(hubFileHeaders('https://huggingface.co/meta-llama/Llama-3.1-8B/resolve/main/model-00001-of-00004.safetensors', env), bearer)
    assert.deepEqual(hubFileHeaders('https://hf.co/datasets/org/set/resolve/v2/data/train.parquet', env), bearer)
    assert.deepEqual(hubFileHeaders('https://artifacts.corp/api/hf/org/m/resolve/main/w.bin', env), bearer)
    assert.deepEqual(hubFileHeaders('https://huggingface.co/org/m/raw/main/config.json', env), bearer)
    for (const url of [
      'https://huggingface.co/api/models/org/m',
      'https://artifacts.corp/other/org/m/resolve/main/w.bin',
      'https://cdn-lfs.huggingface.co/repos/ab/cd/sha?X-Amz-Signature=1',
      'https://user:pat@huggingface.co/org/m/resolve/main/w.bin',
      'https://example.com/org/m/resolve/main/w.bin',
    ]) {
      assert.equal(hubFileHeaders(url, env), undefined, url)
    }
    assert.equal(hubFileHeaders('https://huggingface.co/org/m/resolve/main/w.bin', {HF_HOME: env.HF_HOME}), undefined, 'no token, no header')
  })
})

describe("a model's web page given as a URL", () => {
  const refused = (url: string, env: NodeJS.ProcessEnv = {}) => {
    try {
      parseSource(url, {env})
    } catch (error) {
      assert.ok(error instanceof MtuneError && error.exitCode === 2, url)
      return error.message
    }
    return undefined
  }
  it('names the file behind a Hub page, or the hf:// reference of a repo page', () => {
    assert.equal(
      refused('https://huggingface.co/org/m-GGUF/blob/main/m-Q4_K_M.gguf'),
      "https://huggingface.co/org/m-GGUF/blob/main/m-Q4_K_M.gguf is the file's page on the Hub, not the file: pull https://huggingface.co/org/m-GGUF/resolve/main/m-Q4_K_M.gguf, or hf://org/m-GGUF/m-Q4_K_M.gguf into the Hugging Face cache",
    )
    assert.match(refused('https://huggingface.co/Qwen/Qwen2.5-7B')!, /is the model's page on the Hub, not a file: pull hf:\/\/Qwen\/Qwen2\.5-7B \(/)
    assert.match(refused('https://hf.co/datasets/org/set/tree/v2/data')!, /is the dataset's page on the Hub, not a file: pull hf:\/\/datasets\/org\/set@v2\/data /)
    assert.match(refused('https://modelscope.cn/models/qwen/Q/summary')!, /page on ModelScope, not a file: pull modelscope:\/\/qwen\/Q$/)
    assert.match(refused('https://ollama.com/library/qwen3:8b')!, /page on ollama\.com, not a file: pull ollama:\/\/qwen3:8b$/)
    // A mirror (HF_ENDPOINT, with its path) has the Hub's pages; its other paths may be files.
    const env = {HF_ENDPOINT: 'https://artifacts.corp/api/hf'}
    assert.match(refused('https://artifacts.corp/api/hf/org/m/blob/main/w.bin', env)!, /pull https:\/\/artifacts\.corp\/api\/hf\/org\/m\/resolve\/main\/w\.bin, or hf:\/\/org\/m\/w\.bin/)
  })
  it('leaves files and the sites\' other pages alone', () => {
    for (const url of [
      'https://huggingface.co/org/m/resolve/main/w.gguf',
      'https://huggingface.co/docs/hub',
      'https://modelscope.cn/models/qwen/Q/resolve/master/w.bin',
      'https://ollama.com/download/ollama-linux-amd64.tgz',
      'https://mirror.example/org/m',
      'https://artifacts.corp/files/w.bin',
    ]) {
      assert.equal(refused(url, {HF_ENDPOINT: 'https://artifacts.corp/api/hf'}), undefined, url)
    }
  })
})

describe('hub tokens', () => {
  it("are read in huggingface_hub's order and cleaned of line breaks and blanks as it cleans them", () => {
    const home = tempDir('token')
    writeFileSync(join(home, 'token'), 'hf_from_file\n')
    assert.equal(hfToken({HF_TOKEN: ' hf_env\r\n', HUGGING_FACE_HUB_TOKEN: 'hf_old', HF_HOME: home}), 'hf_env')
    assert.equal(hfToken({HF_TOKEN: '\n', HUGGING_FACE_HUB_TOKEN: 'hf_old', HF_HOME: home}), 'hf_old', 'a blank variable is no token')
    assert.equal(hfToken({HF_HOME: home}), 'hf_from_file')
    assert.equal(hfToken({HF_HOME: join(home, 'none')}), undefined)
    assert.equal(modelscopeToken({MODELSCOPE_API_TOKEN: 'ms-token\n'}), 'ms-token')
  })
})

describe("the Hub's error answers", () => {
  const answer = (status: number, headers: Record<string, string> = {}) => ({status, headers, body: Buffer.alloc(0), url: 'https://hub/api/x'})
  it('become error codes in one style for --json, whatever the X-Error-Code header says', () => {
    const cases: Array<[number, Record<string, string>, boolean, string, RegExp]> = [
      [403, {'x-error-code': 'GatedRepo'}, false, 'hf-gated', /is gated: request access .* give a token \(HF_TOKEN\)/],
      [404, {'x-error-code': 'RepoNotFound'}, true, 'hf-repo-not-found', /not found, or your token cannot see it/],
      [401, {}, false, 'hf-repo-not-found', /not found, or private: .* \(HF_TOKEN\)/],
      [404, {'x-error-code': 'RevisionNotFound'}, false, 'hf-revision-not-found', /check the branch, tag or commit after @/],
      [404, {'x-error-code': 'EntryNotFound'}, false, 'hf-entry-not-found', /^file not found: hf:\/\/o\/n$/],
      [401, {'x-error-message': 'Invalid credentials'}, true, 'hf-token-refused', /token was refused .*\(401: Invalid credentials\): check HF_TOKEN/],
      [429, {}, false, 'hf-rate-limited', /try again later/],
      [500, {'x-error-code': 'Something<New>'}, false, 'hf-error', /HTTP 500/],
    ]
    for (const [status, headers, token, code, message] of cases) {
      const error = hfError(answer(status, headers), 'hf://o/n', token)
      assert.equal(error.code, code, `${status} ${JSON.stringify(headers)}`)
      assert.match(error.message, message)
      assert.equal(error.exitCode, 3)
    }
  })
})

describe("the Hub's tree listing, page after page", () => {
  it('asks the next page of the endpoint given, whatever host its Link names', () => {
    const hub = 'https://huggingface.co'
    const link = '<https://huggingface.co/api/datasets/a/b/tree/c?recursive=true&cursor=ZXh0>; rel="next"'
    assert.equal(nextPage(link, hub), 'https://huggingface.co/api/datasets/a/b/tree/c?recursive=true&cursor=ZXh0')
    // A mirror or an mtune cache passing the Hub's own link through: the token stays with them.
    assert.equal(nextPage(link, 'http://cache.rack:8080'), 'http://cache.rack:8080/api/datasets/a/b/tree/c?recursive=true&cursor=ZXh0')
    assert.equal(nextPage(link, 'https://mirror.example/hf/'), 'https://mirror.example/hf/api/datasets/a/b/tree/c?recursive=true&cursor=ZXh0')
    assert.equal(nextPage('</hf/api/models/a/b/tree/c?cursor=2>; rel=next', 'https://mirror.example/hf'), 'https://mirror.example/hf/api/models/a/b/tree/c?cursor=2')
    assert.equal(nextPage(['<https://h/x>; rel="prev"', `${link.replace('ZXh0', 'bmV4')}`], hub), 'https://huggingface.co/api/datasets/a/b/tree/c?recursive=true&cursor=bmV4')
    assert.equal(nextPage('<https://h/api/x>; rel="prev"', hub), undefined, 'the last page')
    assert.equal(nextPage(undefined, hub), undefined)
    assert.throws(() => nextPage('<https://elsewhere/login?next=1>; rel="next"', hub), (e: MtuneError) => e.exitCode === 3 && /not in its API \(\/login\); check the endpoint/.test(e.message))
  })
})

describe('which hub a cache serves', () => {
  const ref = (source: string) => {
    const r = parseSource(source)
    if (r.kind === 'url') throw new Error('not a model')
    return r
  }
  const cache = 'http://cache.rack1:8080'
  const serves = {hf: 'https://huggingface.co', ollama: 'https://registry.ollama.ai', modelscope: 'https://www.modelscope.cn'}
  it("sends only the cache's own registry's Ollama models through it; a cache that does not say serves the default", () => {
    assert.equal(otherHub(ref('ollama://llama3.2:1b'), cache, serves), undefined)
    assert.equal(otherHub(ref('ollama://registry.ollama.ai/library/llama3.2'), cache, undefined), undefined, 'an older cache: its default registry')
    assert.equal(
      otherHub(ref('ollama://hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M'), cache, serves),
      'serves the Ollama registry registry.ollama.ai, not hf.co: pulling from hf.co directly',
    )
    assert.match(otherHub(ref('ollama://hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M'), cache, undefined) ?? '', /not hf\.co/)
    assert.equal(otherHub(ref('ollama://registry.corp:5000/team/model'), cache, {...serves, ollama: 'https://registry.corp:5000'}), undefined)
    // The cache serves the same host over plain HTTP: the line names the schemes, and --insecure.
    assert.equal(
      otherHub(ref('ollama://registry.corp:5000/team/model'), cache, {...serves, ollama: 'http://registry.corp:5000'}),
      'serves the Ollama registry http://registry.corp:5000, not https://registry.corp:5000: pulling from registry.corp:5000 directly (--insecure names the one it serves)',
    )
  })

  it('sends hf:// and modelscope:// through it unless --endpoint names another hub than its own (or the cache itself)', () => {
    assert.equal(otherHub(ref('hf://org/name'), cache, serves), undefined, 'no --endpoint: the fleet setting, behind the cache')
    assert.equal(otherHub(ref('hf://org/name'), cache, serves, `${cache}/`), undefined, 'the cache itself')
    assert.equal(otherHub(ref('hf://org/name'), cache, serves, 'https://www.huggingface.co'), undefined)
    assert.equal(otherHub(ref('hf://team/private'), cache, serves, 'https://hub.corp'), 'serves the Hugging Face hub huggingface.co, not hub.corp: pulling from hub.corp directly')
    assert.equal(otherHub(ref('hf://org/name'), cache, {...serves, hf: 'https://hf-mirror.com'}, 'https://hf-mirror.com/'), undefined)
    assert.match(otherHub(ref('hf://org/name'), cache, serves, 'https://huggingface.co/api-mirror') ?? '', /serves the Hugging Face hub https:\/\/huggingface\.co, not https:\/\/huggingface\.co\/api-mirror: /)
    assert.equal(otherHub(ref('modelscope://qwen/tiny'), cache, serves, 'https://modelscope.cn'), undefined, 'modelscope.cn is www.modelscope.cn')
    assert.equal(otherHub(ref('modelscope://qwen/tiny'), cache, serves, `${cache}/-/modelscope`), undefined)
    assert.match(otherHub(ref('modelscope://qwen/tiny'), cache, serves, 'https://www.modelscope.ai') ?? '', /serves the ModelScope hub www\.modelscope\.cn, not www\.modelscope\.ai/)
  })
})

describe('where the Hugging Face cache is', () => {
  it('reads the variables in huggingface_hub\'s order, the older HUGGINGFACE_HUB_CACHE included', () => {
    assert.equal(hfCacheDir({HF_HUB_CACHE: '/a', HUGGINGFACE_HUB_CACHE: '/b', HF_HOME: '/c'}), '/a')
    assert.equal(hfCacheDir({HUGGINGFACE_HUB_CACHE: '/b', HF_HOME: '/c'}), '/b')
    assert.equal(hfCacheDir({HF_HUB_CACHE: '', HF_HOME: '/c'}), '/c/hub', 'an empty value counts as unset')
    assert.equal(hfCacheDir({XDG_CACHE_HOME: '/x'}), '/x/huggingface/hub')
  })

  it('expands ~ and $NAME in its paths, as huggingface_hub does (an env file or a pod spec has no shell to do it)', () => {
    assert.equal(hfCacheDir({HF_HOME: '~/hf', HOME: '/home/ops'}), '/home/ops/hf/hub', 'not ./~/hf/hub')
    assert.equal(hfCacheDir({HF_HUB_CACHE: '${SCRATCH}/hub', SCRATCH: '/scratch/ops'}), '/scratch/ops/hub')
    assert.equal(hfCacheDir({HF_HUB_CACHE: '$SCRATCH/x', HOME: '/home/ops'}), '$SCRATCH/x', 'an unset variable stays as written, as in Python')
    assert.equal(hfCacheDir({XDG_CACHE_HOME: '~/.cache2', HOME: '/home/ops'}), '/home/ops/.cache2/huggingface/hub')
    const home = tempDir('tilde')
    writeFileSync(join(home, 'tok'), 'hf_from_file\n')
    assert.equal(hfToken({HF_TOKEN_PATH: '~/tok', HOME: home}), 'hf_from_file')
  })

  it('takes an empty setting (NAME= in an env file) for an unset one, as Ollama and XDG do', () => {
    assert.equal(hfCacheDir({HF_HOME: '', XDG_CACHE_HOME: '/x'}), '/x/huggingface/hub', 'not ./hub')
    assert.equal(hfCacheDir({HF_HOME: ' ', XDG_CACHE_HOME: ''}), join(homedir(), '.cache', 'huggingface', 'hub'))
    assert.equal(hfEndpoint(undefined, {HF_ENDPOINT: ''}), 'https://huggingface.co')
    assert.equal(modelscopeEndpoint({MODELSCOPE_ENDPOINT: ''}), 'https://modelscope.cn')
    assert.equal(modelscopeCacheDir({MODELSCOPE_CACHE: ''}), join(homedir(), '.cache', 'modelscope'))
    assert.equal(ollamaModelsDir({OLLAMA_MODELS: ''}), join(homedir(), '.ollama', 'models'))
  })

  it('refuses an endpoint or cache that is not a URL, naming where it came from; takes a cache as HOST:PORT', () => {
    assert.equal(hfEndpoint(undefined, {HF_ENDPOINT: 'https://hf-mirror.com/'}), 'https://hf-mirror.com')
    assert.throws(() => hfEndpoint(undefined, {HF_ENDPOINT: 'hub rack'}), /^MtuneError: invalid HF_ENDPOINT "hub rack": give the hub's URL, e.g. https:\/\/hf-mirror\.com$/)
    assert.throws(() => hfEndpoint('ftp://x', {}), /invalid --endpoint "ftp:\/\/x": use http:\/\/ or https:\/\//)
    assert.throws(() => modelscopeEndpoint({MODELSCOPE_ENDPOINT: 'x'}), /invalid MODELSCOPE_ENDPOINT "x"/)
    assert.equal(parseCacheUrl('10.0.0.5:8080'), 'http://10.0.0.5:8080')
    assert.equal(parseCacheUrl('cache.rack1:8080/'), 'http://cache.rack1:8080')
    assert.equal(parseCacheUrl('[fd00::5]:8080'), 'http://[fd00::5]:8080')
    assert.equal(parseCacheUrl('https://cache.rack1'), 'https://cache.rack1')
    assert.throws(() => parseCacheUrl('cache rack'), /give the cache's URL or HOST:PORT/)
  })
})

describe('names and digests from servers', () => {
  it('accepts plain relative paths', () => {
    assert.equal(safeRelativePath('sub/dir/model.safetensors'), 'sub/dir/model.safetensors')
    assert.equal(safeJoin('/cache/x', 'a/b.json'), '/cache/x/a/b.json')
  })

  it('refuses absolute paths, .., backslashes, NUL and over-long names', () => {
    for (const bad of ['/etc/passwd', '../x', 'a/../../x', 'a\\b', 'a\u0000b', 'a//b', './a', `${'x'.repeat(256)}`, '']) {
      assert.throws(() => safeRelativePath(bad), (e: unknown) => e instanceof MtuneError && /refusing the file name/.test(e.message), JSON.stringify(bad))
    }
    // A terminal's CSI (C1 U+009B) is refused, and the refusal prints it escaped, bidi marks too.
    assert.throws(
      () => safeRelativePath('a\u009b2J\u202eb'),
      (e: unknown) => e instanceof MtuneError && e.message === 'refusing the file name "a\\u009b2J\\u202eb" from the server: it contains control characters',
    )
  })

  it('takes only sha256:<64 hex> digests', () => {
    assert.equal(parseSha256Digest(`sha256:${'a'.repeat(64)}`), 'a'.repeat(64))
    for (const bad of ['sha256:xyz', `sha512:${'a'.repeat(64)}`, `sha256:${'A'.repeat(64)}`, `sha256:${'a'.repeat(64)}/../x`, 42]) {
      assert.throws(() => parseSha256Digest(bad), MtuneError)
    }
  })

  it('matches --include/--exclude like the official client', () => {
    assert.ok(selected('sub/model.safetensors', ['*.safetensors']))
    assert.ok(!selected('model.bin', ['*.safetensors']))
    assert.ok(!selected('onnx/model.onnx', undefined, ['onnx/*']))
    assert.ok(selected('config.json'))
  })

  it('takes a path as the file, the folder under it, or a glob from the root', () => {
    assert.ok(underPath('sub/w.gguf', 'sub/w.gguf'))
    assert.ok(underPath('sub/deep/w.gguf', 'sub'))
    assert.ok(!underPath('subway/w.gguf', 'sub'), 'a folder is a whole name, not a prefix')
    assert.ok(underPath('w-Q4_K_M.gguf', '*Q4_K_M*.gguf'))
    assert.ok(!underPath('q/w-Q4_K_M.gguf', '*Q4_K_M*.gguf'), 'a glob in the path starts at the root')
    const pick = selector({paths: ['sub'], exclude: ['*.md']})
    assert.ok(pick('sub/a.bin') && !pick('sub/README.md') && !pick('a.bin'), 'the path and the globs both apply')
    const several = selector({paths: pathsOf({path: 'sub'}, ['config.json', '*.gguf'])})
    assert.ok(several('sub/a.bin') && several('config.json') && several('w.gguf'), 'any of the paths lets a file through')
    assert.ok(!several('other/config.json') && !several('q/w.gguf'), 'each path starts at the root')
  })
})

describe('credentials and signed URLs', () => {
  it('sends credentials to their own origin only', () => {
    const h = {authorization: 'Bearer t', 'user-agent': 'x'}
    assert.deepEqual(headersFor('https://hub.example/a', 'https://hub.example', h), h)
    assert.deepEqual(headersFor('https://cdn.example/a', 'https://hub.example', h), {'user-agent': 'x'})
    assert.deepEqual(headersFor('http://hub.example/a', 'https://hub.example', h), {'user-agent': 'x'}, 'another scheme is another origin')
    assert.deepEqual(headersFor('https://hub.example:8443/a', 'https://hub.example', h), {'user-agent': 'x'}, 'another port too')
  })

  it('reads the expiry of CloudFront and S3 signed URLs, and renews before it', () => {
    assert.equal(signedUrlExpiry('https://cdn/x?Expires=1700000000&Signature=s'), 1_700_000_000_000)
    assert.equal(signedUrlExpiry('https://s3/x?X-Amz-Date=20260101T000000Z&X-Amz-Expires=3600'), Date.UTC(2026, 0, 1, 1))
    assert.equal(signedUrlExpiry('https://cdn/x'), undefined)
    assert.equal(renewalTime(100_000, 0), 90_000, 'at most 10 s early')
    assert.equal(renewalTime(2_000, 0), 1_600, 'a fifth of a short lifetime')
  })
})

describe('what a whole-repo pull would fetch that most users leave out', () => {
  const GB = 1024 ** 3
  it('names the GGUF variants of a repo and the --include that takes one', () => {
    const notes = weightNotes([
      {name: 'M-Q2_K.gguf', size: 3 * GB},
      {name: 'M-Q4_K_M.gguf', size: 4.7 * GB},
      {name: 'M-Q8_0.gguf', size: 8 * GB},
      {name: 'M-f16/M-f16-00001-of-00002.gguf', size: 8 * GB},
      {name: 'M-f16/M-f16-00002-of-00002.gguf', size: 7 * GB},
      {name: 'mmproj-M-f16.gguf', size: 0.6 * GB},
      {name: 'README.md', size: 1000},
    ])
    assert.deepEqual(notes, [
      "this repo holds 4 GGUF variants (30.7 GiB in all) and a runtime loads one: --include '*Q4_K_M*' takes Q4_K_M alone (Q2_K 3.0 GiB, Q4_K_M 4.7 GiB, Q8_0 8.0 GiB, f16 15.0 GiB)",
    ])
    assert.deepEqual(weightNotes([{name: 'M-Q4_K_M-00001-of-00002.gguf', size: GB}, {name: 'M-Q4_K_M-00002-of-00002.gguf', size: GB}]), [], 'the shards of one variant')
    // For hf://, the variant's own reference first.
    const [hf] = weightNotes([{name: 'M-Q4_K_M.gguf', size: GB}, {name: 'M-Q8_0.gguf', size: 2 * GB}], 'hf://org/M-GGUF@main')
    assert.match(hf, /a runtime loads one: hf:\/\/org\/M-GGUF:Q4_K_M \(or --include '\*Q4_K_M\*'\) takes Q4_K_M alone/)
    assert.match(weightNotes([{name: 'M-Q4_K_M.gguf', size: GB}, {name: 'M-Q8_0.gguf', size: GB}], 'hf://org/M-GGUF@v2')[0], /hf:\/\/org\/M-GGUF:Q4_K_M@v2 \(or/)
    // Variants side by side in one folder are variants, not one folder's worth.
    assert.match(weightNotes([{name: 'gguf/M-Q4_K_M.gguf', size: GB}, {name: 'gguf/M-Q8_0.gguf', size: 2 * GB}])[0] ?? '', /holds 2 GGUF variants .*\(Q4_K_M 1\.0 GiB, Q8_0 2\.0 GiB\)/)
  })

  it('names the same weights in other formats beside safetensors, when they add up to something', () => {
    const notes = weightNotes([
      {name: 'model-00001-of-00002.safetensors', size: 5 * GB},
      {name: 'model-00002-of-00002.safetensors', size: 3 * GB},
      {name: 'pytorch_model.bin', size: 8 * GB},
      {name: 'original/consolidated.00.pth', size: 8 * GB},
      {name: 'training_args.bin', size: 5000},
    ])
    assert.deepEqual(notes, [
      "besides its safetensors (8.0 GiB) this repo holds the weights again as PyTorch .bin (8.0 GiB), Meta's original/ checkpoint (8.0 GiB), which transformers and vLLM do not load when safetensors are there: --exclude 'pytorch_model*' --exclude 'original/*' saves 16.0 GiB",
    ])
    assert.deepEqual(weightNotes([{name: 'model.safetensors', size: 100e6}, {name: 'pytorch_model.bin', size: 100e6}]), [], 'a small model: not worth a line')
    assert.deepEqual(weightNotes([{name: 'pytorch_model.bin', size: 8 * GB}]), [], 'no safetensors: the .bin is the model')
  })
})

describe("a model pull's plan line", () => {
  it('tells files it resumes from files another mtune is pulling now', () => {
    const MiB = 1024 * 1024
    const f = (name: string, present = false) => ({name, url: `http://h/${name}`, size: 8 * MiB, dest: `/m/${name}`, present})
    const files = [f('a'), f('b'), f('c'), f('d', true)]
    const plan = {source: 'hf://acme/tiny@main', root: '/m', files} as unknown as Plan
    const held = (x: {name: string}) => ({a: 2 * MiB, b: 3 * MiB, c: 0})[x.name as 'a'] ?? 0
    const busy = (x: {name: string}) => x.name === 'b'
    const text = describePlan(plan, true, held, busy)
    assert.match(text, /^hf:\/\/acme\/tiny@main: 4 files, 32\.0 MiB, 1 already present \(8\.0 MiB\), 1 partly downloaded \(2\.0 MiB on disk, resumed\), 1 being pulled by another mtune \(3\.0 MiB on disk so far\) -> \/m$/m)
    assert.match(text, /^  resumes +8\.0 MiB  a \(2\.0 MiB on disk\)$/m)
    assert.match(text, /^  pulling +8\.0 MiB  b \(3\.0 MiB on disk, another mtune is pulling it\)$/m)
    assert.match(text, /^  to pull +8\.0 MiB  c$/m)
    assert.match(text, /^  present +8\.0 MiB  d$/m)
  })
})

describe("a model pull's result line", () => {
  it('says how much of what was pulled an earlier pull had left, so the time does not read as this run\'s rate', () => {
    const MiB = 1024 * 1024
    const plan = {source: 'hf://acme/tiny@main', root: '/models/acme', files: []} as unknown as Plan
    const files = [
      {name: 'a.safetensors', path: '/models/acme/a.safetensors', size: 10 * MiB, skipped: false, resumedBytes: 4 * MiB},
      {name: 'b.safetensors', path: '/models/acme/b.safetensors', size: 2 * MiB, skipped: false, resumedBytes: 0},
    ]
    assert.match(describeFiles(plan, files, 1.5), /hf:\/\/acme\/tiny@main: 2 pulled \(12\.0 MiB in 1\.5s, 4\.0 MiB of it resumed from disk\), verified -> \/models\/acme$/)
    assert.match(describeFiles(plan, files.slice(1), 1.5), /: 1 pulled \(2\.0 MiB in 1\.5s\), verified -> /)
    // Put in place by the pull this one waited on: neither fetched nor resumed here.
    const handed = {name: 'c.safetensors', path: '/models/acme/c.safetensors', size: 8 * MiB, skipped: false, resumedBytes: 8 * MiB, pulledByAnother: true}
    assert.match(describeFiles(plan, [...files.slice(1), handed], 1.5), /: 1 pulled \(2\.0 MiB in 1\.5s\), 1 by another mtune while this one waited, verified -> /)
    assert.match(describeFiles(plan, [handed, handed], 1.5), /: 2 pulled by another mtune while this one waited, verified -> /)
  })
})
