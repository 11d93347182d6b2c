// A host for the official MCP conformance suite's client scenarios: the TypeScript SDK's
// stdio client (which speaks MCP 2025-11-25) talking to `mcp-expose connect <url>`, which
// does the rest (OAuth sign-in, the 2026-07-28 wire, input-required rounds, x-mcp-header).
//
// Run by the suite as `node driver.mjs <server url>`, with MCP_CONFORMANCE_SCENARIO (and
// MCP_CONFORMANCE_CONTEXT for some scenarios) set. Needs:
//   MCP_EXPOSE_BIN  the mcp-expose binary
//   MCP_SDK_DIR     node_modules/@modelcontextprotocol/sdk (1.x) to import the client from
// The connector signs in with `--oauth-browser` set to a curl that follows the authorization
// server's redirect back to the connector's loopback port, as a browser would.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const sdk = (path) => import(pathToFileURL(join(process.env.MCP_SDK_DIR, "dist/esm", path)).href);
const { Client } = await sdk("client/index.js");
const { StdioClientTransport } = await sdk("client/stdio.js");
const { ElicitRequestSchema, CreateMessageRequestSchema, ListRootsRequestSchema } = await sdk("types.js");

const url = process.argv[process.argv.length - 1];
const scenario = process.env.MCP_CONFORMANCE_SCENARIO ?? "";
const context = process.env.MCP_CONFORMANCE_CONTEXT ? JSON.parse(process.env.MCP_CONFORMANCE_CONTEXT) : {};
const log = (...a) => console.error("[driver]", ...a);

// The suite's fixed client ID metadata document (auth/basic-cimd).
const CIMD = "https://conformance-test.local/client-metadata.json";
const args = ["connect", url, "--oauth-browser", "curl -fsS -o /dev/null -L", "--oauth-client-metadata-url", CIMD];
const env = { ...process.env };
// Each run signs in afresh: its own config directory.
const config = mkdtempSync(join(tmpdir(), "mcp-expose-client-conformance-"));
if (context.client_id) {
  args.push("--oauth-client-id", context.client_id);
  if (context.client_secret) {
    env.MCP_CONFORMANCE_CLIENT_SECRET = context.client_secret;
    args.push("--oauth-client-secret-env", "MCP_CONFORMANCE_CLIENT_SECRET");
  }
  if (context.private_key_pem) {
    const key = join(config, "client-key.pem");
    writeFileSync(key, context.private_key_pem, { mode: 0o600 });
    args.push("--oauth-client-key-file", key);
  }
  // The client credentials scenarios: a client signing in as itself, no browser.
  if (scenario.startsWith("auth/client-credentials")) args.push("--oauth-client-credentials");
}
env.XDG_CONFIG_HOME = config;
env.RUST_LOG ??= "info";

const client = new Client(
  { name: "mcp-expose-conformance-host", version: "1.0.0" },
  { capabilities: { elicitation: { form: { applyDefaults: true } }, sampling: {}, roots: { listChanged: false } } },
);
// Elicitation: accept, filling what has no default (the SDK fills in the defaults).
client.setRequestHandler(ElicitRequestSchema, async (request) => {
  const content = {};
  const properties = request.params.requestedSchema?.properties ?? {};
  for (const [name, schema] of Object.entries(properties)) {
    if (schema.default !== undefined) continue;
    if (scenario === "elicitation-sep1034-client-defaults") continue;
    content[name] = schema.type === "boolean" ? true
      : schema.type === "number" || schema.type === "integer" ? 1
      : schema.enum?.[0] ?? "conformance";
  }
  return { action: "accept", content };
});
client.setRequestHandler(CreateMessageRequestSchema, async () => ({
  role: "assistant", model: "conformance-host", content: { type: "text", text: "sampled" },
}));
client.setRequestHandler(ListRootsRequestSchema, async () => ({ roots: [{ uri: "file:///tmp", name: "tmp" }] }));

// MCP_CONNECTOR=mcp-remote measures that connector instead (scripts/client-conformance-peers.sh):
// the same host, the same scenarios, its own flags for the same settings.
let command = process.env.MCP_EXPOSE_BIN;
let commandArgs = args;
if (process.env.MCP_CONNECTOR === "mcp-remote") {
  command = process.execPath;
  // Its callback port (fixed by default: the suite runs scenarios side by side).
  const port = String(20000 + Math.floor(Math.random() * 30000));
  commandArgs = [process.env.MCP_REMOTE_JS, url, port, "--protocol", "auto", "--client-metadata-url", CIMD];
  if (context.client_id) {
    const info = { client_id: context.client_id, client_secret: context.client_secret };
    commandArgs.push("--static-oauth-client-info", JSON.stringify(info));
    if (scenario.startsWith("auth/client-credentials")) commandArgs.push("--client-credentials");
  }
  env.MCP_REMOTE_CONFIG_DIR = config;
  env.BROWSER = process.env.MCP_REMOTE_BROWSER; // the `open` package's xdg-open honours it
}
const transport = new StdioClientTransport({ command, args: commandArgs, env, stderr: "inherit" });

async function callAll(tools, argumentsFor) {
  for (const tool of tools) {
    log("calling", tool.name);
    await client.callTool({ name: tool.name, arguments: argumentsFor(tool) });
  }
}

async function main() {
  await client.connect(transport);
  const { tools } = await client.listTools();
  log("tools:", tools.map((t) => t.name).join(", "));
  const named = (name) => tools.find((t) => t.name === name);
  if (scenario.startsWith("auth/")) {
    if (named("test-tool")) await client.callTool({ name: "test-tool", arguments: {} });
  } else if (scenario === "tools_call") {
    await client.callTool({ name: "add_numbers", arguments: { a: 5, b: 3 } });
  } else if (scenario === "elicitation-sep1034-client-defaults") {
    await client.callTool({ name: "test_client_elicitation_defaults", arguments: {} });
  } else if (scenario === "sse-retry") {
    await client.callTool({ name: "test_reconnection", arguments: {} });
  } else if (scenario === "sep-2322-client-request-state") {
    for (const name of ["test_mrtr_echo_state", "test_mrtr_unrelated", "test_mrtr_no_state", "test_mrtr_no_result_type"]) {
      if (named(name)) await client.callTool({ name, arguments: {} });
    }
  } else if (scenario === "http-standard-headers") {
    await callAll(tools, () => ({}));
    const { resources } = await client.listResources();
    for (const r of resources) await client.readResource({ uri: r.uri });
    const { prompts } = await client.listPrompts();
    for (const p of prompts) await client.getPrompt({ name: p.name, arguments: {} });
  } else if (scenario === "http-custom-headers") {
    for (const call of context.toolCalls ?? []) await client.callTool(call);
  } else if (scenario === "http-invalid-tool-headers") {
    await callAll(tools, () => ({ region: "us-west1" }));
  } else if (scenario === "json-schema-2020-12-preservation") {
    const source = named("json_schema_2020_12_tool");
    if (source && named("json_schema_echo")) {
      await client.callTool({ name: "json_schema_echo", arguments: { schema: source.inputSchema } });
    }
  }
}

// The suite stops a client after 30 s by killing its shell, which leaves this process and its
// connector holding the suite's pipes: end both before that.
const deadline = setTimeout(async () => {
  log("no end after 25 s; stopping the connector");
  await transport.close().catch(() => {});
  process.exit(1);
}, 25_000);
deadline.unref();

let code = 0;
try {
  await main();
} catch (e) {
  log("failed:", e?.message ?? e);
  code = 1;
} finally {
  await client.close().catch(() => {});
  rmSync(config, { recursive: true, force: true });
}
process.exit(code);
