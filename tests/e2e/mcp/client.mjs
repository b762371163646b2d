// An MCP client built on the official MCP TypeScript SDK (@modelcontextprotocol/sdk, pinned by
// package-lock.json), driven by tests/e2e/test_mcp_typescript_sdk.py. Plain ESM: no build step.
//
//   node client.mjs --server <MCP server URL> --redirect <loopback callback URL>
//                   [--client-metadata-url <https URL of a Client ID Metadata Document>]
//
// The SDK does all of the OAuth work: the MCP server answers 401 with a `resource_metadata`
// challenge, the SDK reads the protected resource metadata (RFC 9728), the authorization
// server's metadata (RFC 8414), registers (RFC 7591) or uses the metadata document URL as its
// client_id (when the server advertises client_id_metadata_document_supported), and builds the
// /authorize URL (PKCE S256, `resource`). This script only implements the OAuthClientProvider's
// storage and its user-agent hand-off: the URL goes to the test, which signs the user in with
// Chromium and answers with what reached the redirect URI; the SDK then redeems the code
// (with `resource`) and the MCP calls are made with the access token.
//
// Protocol with the test: one JSON object per line on stdout.
//   {"event":"http", method, url, status, form?, json?}  every request the SDK sends
//   {"event":"authorize", "url": "..."}                    the user must go there
//   <- stdin: {"code": "...", "state": "..."}  or  {"error": "..."}
//   {"event":"result", tools, call, client, tokens, discovery}
//   {"event":"error", message, stack}                      then exit status 1
// Every wait is bounded: the answer on stdin (--answer-timeout, seconds), the whole run
// (--timeout, seconds); each HTTP request times out after 15 s.

import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const { values: options } = parseArgs({
  options: {
    server: { type: 'string' },
    redirect: { type: 'string' },
    'client-metadata-url': { type: 'string' },
    'answer-timeout': { type: 'string', default: '90' },
    timeout: { type: 'string', default: '150' },
  },
});
if (!options.server || !options.redirect) {
  process.stderr.write('usage: node client.mjs --server URL --redirect URL [--client-metadata-url URL]\n');
  process.exit(64);
}

const REQUEST_TIMEOUT_MS = 15_000;

function emit(event) {
  process.stdout.write(JSON.stringify(event) + '\n');
}

function fail(error) {
  emit({ event: 'error', message: String(error?.message ?? error), name: error?.name, stack: error?.stack });
  process.exit(1);
}

const watchdog = setTimeout(
  () => fail(new Error(`no result within ${options.timeout} s`)),
  Number(options.timeout) * 1000,
);
watchdog.unref();

// What the SDK sends, for the test to check (token requests: every form field, credentials
// shortened; registration: the JSON body).
function describeBody(body) {
  if (body instanceof URLSearchParams) {
    const form = Object.fromEntries(body);
    for (const secret of ['code', 'code_verifier', 'refresh_token', 'client_secret']) {
      if (form[secret]) form[secret] = `<${form[secret].length} chars>`;
    }
    return { form };
  }
  if (typeof body === 'string') {
    try {
      return { json: JSON.parse(body) };
    } catch {
      return { text: body.slice(0, 200) };
    }
  }
  return {};
}

async function recordingFetch(url, init = {}) {
  const signal = init.signal
    ? AbortSignal.any([init.signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)])
    : AbortSignal.timeout(REQUEST_TIMEOUT_MS);
  const response = await fetch(url, { ...init, signal });
  emit({
    event: 'http',
    method: init.method ?? 'GET',
    url: String(url),
    status: response.status,
    ...describeBody(init.body),
  });
  return response;
}

// One line from the test on stdin, within `seconds`.
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function answer(seconds) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer on stdin within ${seconds} s`)), seconds * 1000);
  });
  try {
    const { value, done } = await Promise.race([lines.next(), timeout]);
    if (done) throw new Error('stdin closed before the answer');
    return JSON.parse(value);
  } finally {
    clearTimeout(timer);
  }
}

// The OAuthClientProvider: in-memory storage, the user agent is the test.
class TestClientProvider {
  constructor(redirectUrl, clientMetadataUrl) {
    this._redirectUrl = redirectUrl;
    if (clientMetadataUrl) this.clientMetadataUrl = clientMetadataUrl;
    this._state = randomBytes(16).toString('base64url');
    this.saved = { client: undefined, tokens: undefined, verifier: undefined, discovery: undefined };
    this.authorizationUrl = undefined;
  }

  get redirectUrl() {
    return this._redirectUrl;
  }

  get clientMetadata() {
    return {
      client_name: 'MCP TypeScript SDK e2e client',
      redirect_uris: [this._redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      software_id: 'e2e-mcp-typescript-sdk',
      software_version: '1.0.0',
    };
  }

  state() {
    return this._state;
  }

  clientInformation() {
    return this.saved.client;
  }

  saveClientInformation(information) {
    this.saved.client = information;
  }

  tokens() {
    return this.saved.tokens;
  }

  saveTokens(tokens) {
    this.saved.tokens = tokens;
  }

  redirectToAuthorization(authorizationUrl) {
    this.authorizationUrl = authorizationUrl;
    emit({ event: 'authorize', url: authorizationUrl.href });
  }

  saveCodeVerifier(verifier) {
    this.saved.verifier = verifier;
  }

  codeVerifier() {
    if (!this.saved.verifier) throw new Error('no code verifier saved');
    return this.saved.verifier;
  }

  saveDiscoveryState(state) {
    this.saved.discovery = state;
  }

  discoveryState() {
    return this.saved.discovery;
  }
}

function newTransport(provider) {
  return new StreamableHTTPClientTransport(new URL(options.server), {
    authProvider: provider,
    fetch: recordingFetch,
  });
}

function newClient() {
  return new Client({ name: 'e2e-mcp-typescript-sdk', version: '1.0.0' });
}

async function main() {
  const provider = new TestClientProvider(options.redirect, options['client-metadata-url']);

  // First attempt: the server answers 401, the SDK discovers, registers and hands the user
  // the /authorize URL (redirectToAuthorization), then connect() rejects with UnauthorizedError.
  const first = newTransport(provider);
  try {
    await newClient().connect(first);
    throw new Error('the MCP server accepted a connection without a token');
  } catch (error) {
    if (!(error instanceof UnauthorizedError)) throw error;
  }
  if (!provider.authorizationUrl) throw new Error('UnauthorizedError without a redirect to /authorize');

  const reply = await answer(Number(options['answer-timeout']));
  if (reply.error) throw new Error(`authorization failed: ${reply.error}`);
  if (reply.state !== provider.state()) throw new Error('state mismatch on the redirect');
  await first.finishAuth(reply.code); // the token request, with `resource`

  // Second attempt, with the access token.
  const transport = newTransport(provider);
  const client = newClient();
  await client.connect(transport);
  const tools = await client.listTools();
  const call = await client.callTool({ name: 'whoami', arguments: {} });
  await client.close();
  emit({
    event: 'result',
    server: client.getServerVersion(),
    protocolVersion: transport.protocolVersion,
    tools: tools.tools,
    call,
    client: provider.saved.client,
    tokens: provider.saved.tokens,
    discovery: provider.saved.discovery,
  });
}

main().then(() => process.exit(0), fail);
