// Bundles src/forms.jsx with esbuild and writes the third-party license notices.
// Run through build.sh (which does `npm ci` first). Deterministic: same lockfile -> same bytes.
// CONNECTOR_FORMS_OUT_DIR=dir writes both files there instead (the test suite rebuilds into a
// temporary directory and compares with the vendored copies).
import * as esbuild from "esbuild";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const outDir = process.env.CONNECTOR_FORMS_OUT_DIR
  ? path.resolve(process.env.CONNECTOR_FORMS_OUT_DIR)
  : path.resolve(here, "..", "azure_openai_connector", "playground", "static");
const outFile = path.join(outDir, "forms.bundle.js");
const licenseFile = path.join(outDir, "THIRD_PARTY_LICENSES.txt");

const readJson = (p) => JSON.parse(fs.readFileSync(p, "utf8"));
const rjsf = readJson(path.join(here, "node_modules", "@rjsf", "core", "package.json"));
const react = readJson(path.join(here, "node_modules", "react", "package.json"));

fs.mkdirSync(outDir, { recursive: true });
const result = await esbuild.build({
  absWorkingDir: here,
  entryPoints: ["src/forms.jsx"],
  outfile: outFile,
  bundle: true,
  minify: true,
  format: "iife",
  platform: "browser",
  target: ["es2019"],
  jsx: "automatic",
  define: { "process.env.NODE_ENV": '"production"' },
  legalComments: "eof",
  banner: {
    js: `/*! ConnectorForms: @rjsf/core ${rjsf.version}, react ${react.version}. ` +
      `Built from frontend/ by frontend/build.sh; third-party notices in THIRD_PARTY_LICENSES.txt */`,
  },
  metafile: true,
  logLevel: "warning",
});

// Find every package that contributed an input file: <...>/node_modules/<name>[/<name>]/...
const packageDirs = new Set();
for (const input of Object.keys(result.metafile.inputs)) {
  const parts = input.split("/");
  const i = parts.lastIndexOf("node_modules");
  if (i < 0) continue;
  const nameLen = parts[i + 1].startsWith("@") ? 2 : 1;
  packageDirs.add(parts.slice(0, i + 1 + nameLen).join("/"));
}

const MIT_TEXT = `MIT License

Copyright (c) <COPYRIGHT HOLDER>

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.`;

const LICENSE_RE = /^(licen[cs]e|copying|notice)([-._].*)?$/i;
const packages = [...packageDirs].map((rel) => {
  const dir = path.join(here, rel);
  const pkg = readJson(path.join(dir, "package.json"));
  const files = fs.readdirSync(dir).filter((f) => LICENSE_RE.test(f) && fs.statSync(path.join(dir, f)).isFile()).sort();
  const license = typeof pkg.license === "string" ? pkg.license
    : pkg.license && pkg.license.type ? pkg.license.type
    : Array.isArray(pkg.licenses) ? pkg.licenses.map((l) => l.type || l).join(" OR ") : "UNKNOWN";
  const texts = files.map((f) => fs.readFileSync(path.join(dir, f), "utf8").replace(/\r\n?/g, "\n").trimEnd());
  if (texts.length === 0) {
    // A few packages ship no LICENSE file (e.g. json-schema-merge-allof). For MIT we write the
    // standard MIT text with the copyright holder from package.json and quote the README's
    // license section; anything else must be looked at by a human.
    if (license !== "MIT") {
      throw new Error(`${pkg.name}@${pkg.version}: no LICENSE file in ${rel} and license is ${license}`);
    }
    const author = typeof pkg.author === "string" ? pkg.author : (pkg.author && pkg.author.name) || `the ${pkg.name} authors`;
    let readmeNote = "";
    const readme = fs.readdirSync(dir).find((f) => /^readme(\..*)?$/i.test(f));
    if (readme) {
      const m = fs.readFileSync(path.join(dir, readme), "utf8").match(/^#+\s*licen[cs]e\s*\n([\s\S]*?)(?=^#|(?![\s\S]))/im);
      if (m) readmeNote = `The package's README says, under "License":\n\n  ${m[1].trim().split("\n").join("\n  ")}\n\n`;
    }
    texts.push(`(The published package contains no LICENSE file; its package.json declares "license": "MIT".)\n\n` +
      readmeNote + MIT_TEXT.replace("<COPYRIGHT HOLDER>", author));
  }
  return { name: pkg.name, version: pkg.version, license, homepage: pkg.homepage || "", texts };
}).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

const rule = "=".repeat(78);
let out = `Third-party software bundled in forms.bundle.js\n` +
  `(generated by frontend/build.mjs from the esbuild metafile; do not edit by hand)\n\n` +
  packages.map((p) => `  ${p.name}@${p.version} (${p.license})`).join("\n") + "\n";
for (const p of packages) {
  out += `\n${rule}\n${p.name}@${p.version}\nLicense: ${p.license}\n` + (p.homepage ? `Homepage: ${p.homepage}\n` : "") +
    `${rule}\n\n` + p.texts.join("\n\n") + "\n";
}
fs.writeFileSync(licenseFile, out);

const size = fs.statSync(outFile).size;
const shown = (p) => path.relative(process.cwd(), p) || p;
console.log(`wrote ${shown(outFile)} (${size} bytes, ${packages.length} packages)`);
console.log(`wrote ${shown(licenseFile)}`);
