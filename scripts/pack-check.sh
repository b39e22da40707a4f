#!/usr/bin/env bash
# The packed package works from plain Node: `npm pack`, install the tarball into an empty folder (only the
# npm registry needed), then `npx mcore --help`, a quick demo (trains, evaluates and exports a bundle with
# the compiled CLI), a clip to score, and a plain-Node script that imports 'mcore', loads the bundle and
# scores the clip. Run by .ci/run; `npm run pack:check` by hand.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$root"
tarball="$(npm pack --silent --pack-destination "$work" 2>/dev/null | tail -1)"
echo "pack-check: packed $tarball ($(du -k "$work/$tarball" | cut -f1) KiB)"
mkdir "$work/app"
cd "$work/app"
echo '{ "name": "app", "private": true, "type": "module" }' > package.json
# As the README says for users: onnxruntime-node's install script would fetch CUDA libraries from a host
# outside the npm registry; the CPU runtime mcore uses ships inside the npm package.
echo 'onnxruntime-node-install=skip' > .npmrc
npm install --no-audit --no-fund --silent "$work/$tarball"
npx mcore --help > help.txt
grep -q 'Usage: mcore' help.txt
npx mcore demo --quick --out demo > demo.txt 2>&1 || { cat demo.txt; exit 1; }
# Data-parallel training loads its worker thread from the installed package's dist/.
npx mcore train --dataset synthdive:seed=3,clips=16,size=32 --out threads --set model.frames=8 \
  --set model.imageSize=32 --set train.epochs=1 --set train.threads=2 > threads.txt 2>&1 || { cat threads.txt; exit 1; }
echo "pack-check: $(tail -n 1 threads.txt) (train.threads=2)"
npx mcore data export synthdive:seed=7,clips=40 --split test --mp4 --out clips > /dev/null 2>&1
cat > score.mjs <<'JS'
import { readdirSync } from 'node:fs';
import { loadBundle, VERSION } from 'mcore';
const dir = 'clips/synthdive';
const clip = `${dir}/${readdirSync(dir).find((f) => f.endsWith('.mp4'))}`;
const bundle = await loadBundle('demo/bundle');
const r = await bundle.score(clip, { exemplars: 5 });
await bundle.dispose();
if (!Number.isFinite(r.score) || r.stages.length !== bundle.manifest.stages || r.exemplars.length !== 5) {
  throw new Error(`unexpected result: ${JSON.stringify({ score: r.score, stages: r.stages.length })}`);
}
console.log(`pack-check: mcore ${VERSION} from plain Node scored ${clip}: ${r.score.toFixed(2)} (${r.stages.map((s) => s.name).join(', ')})`);
JS
node score.mjs
# The browser page ships built: `mcore serve` from the tarball serves it, the bundle and onnxruntime-web's wasm.
# The installed bin itself (not npx), so that the signal reaches the server.
./node_modules/.bin/mcore serve --model demo/bundle --port 0 > serve.txt 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 600); do grep -q 'serving .* at http' serve.txt && break; sleep 0.1; done
url="$(grep -o 'http://[^ ]*' serve.txt | head -1)"
[ -n "$url" ] || { cat serve.txt; kill "$server"; exit 1; }
for p in "" bundle/manifest.json ort/ort-wasm-simd-threaded.wasm; do
  code="$(curl -s -o /dev/null -w '%{http_code}' "${url%/}/$p")"
  [ "$code" = 200 ] || { echo "pack-check: GET /$p -> $code"; kill "$server"; exit 1; }
done
kill -INT "$server"
wait "$server"
grep -q stopped serve.txt
echo "pack-check: mcore serve from the tarball served the page, the bundle and onnxruntime-web's wasm at $url"
