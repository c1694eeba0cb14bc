#!/bin/sh
':' //; [ -n "$NODE_EXTRA_CA_CERTS" ] || for f in "$SSL_CERT_FILE" /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt /etc/ssl/cert.pem; do if [ -n "$f" ] && [ -f "$f" ] && [ -r "$f" ]; then export NODE_EXTRA_CA_CERTS="$f"; break; fi; done
':' //; exec node --max-semi-space-size=1 --liftoff-only --disable-warning=ExperimentalWarning "$0" "$@"
// The lines above are for sh (node reads each as a string and a comment).
// NODE_EXTRA_CA_CERTS: Node trusts only its own copy of Mozilla's CAs, so a company CA installed
//   in the system's store (update-ca-certificates; an HTTPS-inspecting proxy signs with one),
//   which curl, wget, apt and Ollama trust, was refused. The system's bundle (or SSL_CERT_FILE,
//   as OpenSSL, Go and Python's httpx read it) is added to Node's, unless the user set
//   NODE_EXTRA_CA_CERTS. Node reads it once at start, for every thread; it costs no measurable time.
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
