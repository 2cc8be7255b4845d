// The front end's files as browsers download them.
//
//   node scripts/bundle.mjs compress SITE_DIR
//       writes FILE.br (brotli, quality 11) and FILE.gz (gzip, level 9)
//       beside every file of the site, which the server sends as they are
//       to browsers that accept them (server/src/assets.rs); a compressed
//       copy that would not be smaller is not written.
//   node scripts/bundle.mjs report PKG_DIR [--check]
//       prints the raw, gzip and brotli size of the bundle's WASM, JS and
//       CSS (the .gz and .br files when there are any: what is served); with
//       --check, fails when the gzipped WASM is over the budget.
import { readdirSync, readFileSync, statSync, unlinkSync, writeFileSync, existsSync } from "node:fs";
import { join, extname } from "node:path";
import { brotliCompressSync, gzipSync, constants } from "node:zlib";

/// The most the WASM may weigh gzipped, in bytes (150 KB).
export const WASM_GZIP_BUDGET = 150_000;

const compressed = (name) => name.endsWith(".gz") || name.endsWith(".br");

function gzip(bytes) {
  return gzipSync(bytes, { level: 9 });
}

function brotli(bytes, name) {
  const text = [".js", ".css", ".html", ".svg", ".json", ".ts"].includes(extname(name));
  return brotliCompressSync(bytes, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: 11,
      [constants.BROTLI_PARAM_MODE]: text ? constants.BROTLI_MODE_TEXT : constants.BROTLI_MODE_GENERIC,
      [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length,
    },
  });
}

function* files(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* files(path);
    else if (!compressed(name)) yield path;
  }
}

function compress(site) {
  let count = 0;
  for (const path of files(site)) {
    const bytes = readFileSync(path);
    for (const [suffix, packed] of [[".gz", gzip(bytes)], [".br", brotli(bytes, path)]]) {
      if (packed.length < bytes.length) {
        writeFileSync(path + suffix, packed);
        count += 1;
      } else if (existsSync(path + suffix)) {
        unlinkSync(path + suffix);
      }
    }
  }
  console.log(`precompressed ${count} files under ${site}`);
}

/// Size of a file as served with `suffix` encoding: the precompressed file
/// when the build wrote one, else what compressing it gives.
function servedSize(path, suffix, pack) {
  return existsSync(path + suffix) ? statSync(path + suffix).size : pack(readFileSync(path), path).length;
}

function report(pkg, check) {
  const rows = [];
  for (const name of readdirSync(pkg).sort()) {
    const kind = [".wasm", ".js", ".css"].find((ext) => name.endsWith(ext));
    if (!kind || compressed(name)) continue;
    const path = join(pkg, name);
    rows.push({
      kind: kind.slice(1).toUpperCase(),
      name,
      raw: statSync(path).size,
      gzip: servedSize(path, ".gz", gzip),
      brotli: servedSize(path, ".br", brotli),
    });
  }
  if (!rows.some((r) => r.kind === "WASM")) {
    console.error(`no .wasm file in ${pkg}: build the front end first`);
    process.exit(1);
  }
  const kb = (n) => `${(n / 1000).toFixed(1)} KB`.padStart(10);
  console.log(`${"bundle".padEnd(48)}${"raw".padStart(10)}${"gzip".padStart(10)}${"brotli".padStart(10)}`);
  for (const r of rows) console.log(`${`${r.kind} ${r.name}`.padEnd(48)}${kb(r.raw)}${kb(r.gzip)}${kb(r.brotli)}`);
  const wasm = rows.filter((r) => r.kind === "WASM").reduce((sum, r) => sum + r.gzip, 0);
  const verdict = wasm <= WASM_GZIP_BUDGET ? "within" : "OVER";
  console.log(`WASM gzipped: ${kb(wasm).trim()}, ${verdict} the budget of ${kb(WASM_GZIP_BUDGET).trim()}`);
  if (check && wasm > WASM_GZIP_BUDGET) process.exit(1);
}

const [command, dir, flag] = process.argv.slice(2);
if (command === "compress" && dir) compress(dir);
else if (command === "report" && dir) report(dir, flag === "--check");
else {
  console.error("usage: node scripts/bundle.mjs compress SITE_DIR | report PKG_DIR [--check]");
  process.exit(2);
}
