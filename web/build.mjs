// `make web`: bundles the widget and the console into functions/threadline/web_static/ (git-ignored; the API
// serves it and `make package` ships it) and prints each asset's size, raw and gzipped.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const out = process.argv[2] ?? "../functions/threadline/web_static";
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, "console"), { recursive: true });
const common = { bundle: true, minify: true, target: "es2020", legalComments: "none", logLevel: "warning" };
await build({ ...common, entryPoints: ["src/widget/widget.ts"], outfile: join(out, "widget.js"), format: "iife" });
await build({
  ...common,
  entryPoints: ["src/console/main.tsx"],
  outdir: join(out, "console"),
  entryNames: "app",
  format: "esm",
  jsx: "automatic",
  jsxImportSource: "preact",
  loader: { ".css": "css" },
});
copyFileSync("src/console/index.html", join(out, "console", "index.html"));
// Swagger UI for the API's /docs, from the pinned swagger-ui-dist: served by the app so the page works offline
// (a CDN left it blank). Only the three files the page loads: the package's source maps and other bundles
// would cost the Lambda artifact ~10 MB it does not have.
mkdirSync(join(out, "docs"), { recursive: true });
for (const name of ["swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"]) {
  copyFileSync(join("node_modules", "swagger-ui-dist", name), join(out, "docs", name));
}

const sizes = [];
const walk = (dir) => {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else sizes.push([path.slice(out.length + 1), statSync(path).size, gzipSync(readFileSync(path), { level: 9 }).length]);
  }
};
walk(out);
for (const [name, raw, gz] of sizes) {
  console.log(`  ${name.padEnd(22)} ${(raw / 1024).toFixed(1).padStart(7)} KB  ${(gz / 1024).toFixed(1).padStart(6)} KB gzipped`);
}
