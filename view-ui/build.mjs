// Builds XDV View's browser assets into the Python package (src/xdv/view/static) and writes
// their SHA-256 manifest. The output depends only on the sources and the locked packages, so
// `npm ci && npm run build` reproduces the committed files byte for byte.
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "src", "xdv", "view", "static");
mkdirSync(out, { recursive: true });

const common = {
  bundle: true,
  minify: true,
  charset: "utf8",
  legalComments: "eof",
  logLevel: "warning",
  absWorkingDir: here,
};

await esbuild.build({
  ...common,
  entryPoints: ["src/main.js"],
  outfile: join(out, "view.js"),
  format: "iife",
  target: ["es2020"],
  define: { "process.env.NODE_ENV": '"production"' },
});
await esbuild.build({
  ...common,
  entryPoints: ["src/view.css"],
  outfile: join(out, "view.css"),
});

const files = {};
for (const name of ["view.css", "view.js"]) {
  files[name] = createHash("sha256").update(readFileSync(join(out, name))).digest("hex");
}
const manifest = { built_by: "view-ui/build.mjs", files };
writeFileSync(join(out, "MANIFEST.json"), JSON.stringify(manifest, null, 2) + "\n");
for (const [name, digest] of Object.entries(files)) console.log(`${digest}  ${name}`);
