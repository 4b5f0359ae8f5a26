// The TypeScript SDK's own token server (npm azure-realtime-webrtc, entry "server"), for bench_server.py.
// Usage: node express_token_server.cjs PORT UPSTREAM_BASE_URL API_KEY
// CommonJS on purpose: the package's "import" export points at dist/server.mjs, which it does not ship.
const express = require("express");
const { createRealtimeMiddleware } = require("azure-realtime-webrtc/server");

const [port, baseUrl, apiKey] = process.argv.slice(2);
const app = express();
app.use(createRealtimeMiddleware({
  express,
  baseUrl,
  deployment: "gpt-realtime",
  auth: { type: "api-key", apiKey },
  rateLimit: 1e9, // its default (10 per minute per X-Forwarded-For) would stop the benchmark
  session: { instructions: "You are a friendly voice assistant.", audio: { output: { voice: "alloy" } } },
}));
app.listen(Number(port), "127.0.0.1", () => console.log("ready"));
