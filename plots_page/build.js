// Writes template.html (or the path given as argument): template.in.html with vega,
// vega-lite and vega-embed (from node_modules, pinned by package-lock.json) inlined, for
// `dvc plots show` without network. .dvc/config names it as plots.html_template; it is
// committed so that a fresh clone needs no npm. Run by `npm ci` (postinstall).
"use strict";
const fs = require("fs");
const path = require("path");

const here = __dirname;
const bundles = [
  "vega/build/vega.min.js",
  "vega-lite/build/vega-lite.min.js",
  "vega-embed/build/vega-embed.min.js",
];

const scripts = bundles.map((rel) => {
  const code = fs.readFileSync(path.join(here, "node_modules", rel), "utf8");
  // A literal "</script" inside the code would end the inline element early.
  return `<script>/* ${rel} */\n${code.replace(/<\/script/gi, "<\\/script")}\n</script>`;
});

const template = fs.readFileSync(path.join(here, "template.in.html"), "utf8");
const marker = "<!-- vega bundles -->";
if (!template.includes(marker)) {
  throw new Error(`template.in.html lacks the ${marker} marker`);
}
const out = process.argv[2] ? path.resolve(process.argv[2]) : path.join(here, "template.html");
const tmp = `${out}.tmp`;
fs.writeFileSync(tmp, template.replace(marker, () => scripts.join("\n")));
fs.renameSync(tmp, out);
console.log(`wrote ${out}`);
