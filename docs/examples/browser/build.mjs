// Bundles chat.jsx (with React and the AI SDK) into one script for index.html.
// Usage: node build.mjs [OUTFILE]   (default: static/chat.js)
import { build } from "esbuild";

await build({
  entryPoints: ["chat.jsx"],
  bundle: true,
  minify: true,
  jsx: "automatic",
  define: { "process.env.NODE_ENV": '"production"' },
  outfile: process.argv[2] ?? "static/chat.js",
  logLevel: "warning",
});
