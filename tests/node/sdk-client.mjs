// The official MCP TypeScript SDK client, end to end against searchgate: it meets the 401,
// discovers the IdP from searchgate's protected-resource metadata, registers dynamically,
// authorizes with PKCE and the RFC 8707 resource (walking the IdP's login and consent pages),
// exchanges the code, then lists tools and calls web_search; finally it refreshes its token.
// Env: MCP_URL. Prints one JSON line with what happened; exits non-zero on failure.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError, refreshAuthorization, discoverAuthorizationServerMetadata } from '@modelcontextprotocol/sdk/client/auth.js';
import { walkAuthorize } from './login-flow.mjs';

const mcpUrl = new URL(process.env.MCP_URL);
const REDIRECT = 'http://127.0.0.1:33333/callback'; // nothing listens: walkAuthorize stops at the redirect
const seen = { requests: [], authorize: null };

class HeadlessProvider {
  get redirectUrl() { return REDIRECT; }
  get clientMetadata() {
    return { client_name: 'searchgate-sdk-test', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'], token_endpoint_auth_method: 'none' };
  }
  clientInformation() { return this.client; }
  saveClientInformation(client) { this.client = client; }
  tokens() { return this.saved; }
  saveTokens(tokens) { this.saved = tokens; }
  saveCodeVerifier(verifier) { this.verifier = verifier; }
  codeVerifier() { return this.verifier; }
  invalidateCredentials(scope) {
    if (scope === 'all' || scope === 'client') this.client = undefined;
    if (scope === 'all' || scope === 'tokens') this.saved = undefined;
  }
  redirectToAuthorization(url) {
    seen.authorize = Object.fromEntries(url.searchParams);
    this.code = walkAuthorize(url.href, REDIRECT).then((callback) => new URL(callback).searchParams.get('code'));
  }
}

const loggingFetch = async (url, init) => {
  const response = await fetch(url, init);
  seen.requests.push(`${init?.method ?? 'GET'} ${new URL(url).pathname} ${response.status}`);
  return response;
};

const provider = new HeadlessProvider();
const connect = async () => {
  const client = new Client({ name: 'searchgate-sdk-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider, fetch: loggingFetch }));
  return client;
};

// With REGISTER_URL the client registers there (searchgate's /oauth/register) before it
// starts, and the SDK uses that client id instead of registering on its own.
if (process.env.REGISTER_URL) {
  const res = await fetch(process.env.REGISTER_URL, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(provider.clientMetadata),
  });
  seen.requests.push(`POST ${new URL(process.env.REGISTER_URL).pathname} ${res.status}`);
  if (res.status !== 201) throw new Error(`registration failed: ${res.status} ${await res.text()}`);
  provider.saveClientInformation(await res.json());
}
const registeredClientId = provider.client?.client_id;

let client;
try {
  client = await connect();
  throw new Error('connected without authorizing');
} catch (error) {
  if (!(error instanceof UnauthorizedError)) throw error;
}
const transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider, fetch: loggingFetch });
await transport.finishAuth(await provider.code);
client = await connect();
const tools = await client.listTools();
const call = await client.callTool({ name: 'web_search', arguments: { query: 'typescript sdk', max_results: 2 } });
await client.close();

// Refresh: exchange the refresh token (with the resource) and call again with the new token.
const firstToken = provider.saved.access_token;
const firstRefresh = provider.saved.refresh_token;
const prm = await (await fetch(new URL('/.well-known/oauth-protected-resource' + mcpUrl.pathname, mcpUrl))).json();
const asMetadata = await discoverAuthorizationServerMetadata(prm.authorization_servers[0]);
const refreshed = await refreshAuthorization(prm.authorization_servers[0], {
  metadata: asMetadata, clientInformation: provider.client, refreshToken: provider.saved.refresh_token, resource: new URL(prm.resource),
});
provider.saveTokens({ ...refreshed, refresh_token: refreshed.refresh_token ?? provider.saved.refresh_token });
client = await connect();
const again = await client.callTool({ name: 'web_search', arguments: { query: 'after refresh' } });
await client.close();

// The refresh token just exchanged must not work twice (rotation with reuse detection).
let reuseRejected = false;
try {
  await refreshAuthorization(prm.authorization_servers[0], {
    metadata: asMetadata, clientInformation: provider.client, refreshToken: firstRefresh, resource: new URL(prm.resource),
  });
} catch (error) {
  reuseRejected = /invalid_grant/i.test(String(error?.errorCode ?? error?.code ?? error));
}

console.log(JSON.stringify({
  tools: tools.tools.map((t) => t.name),
  result: call.structuredContent,
  is_error: call.isError ?? false,
  authorize: seen.authorize,
  requests: seen.requests,
  refreshed: refreshed.access_token !== firstToken,
  after_refresh: again.structuredContent,
  reuse_rejected: reuseRejected,
  registered_client_id: registeredClientId ?? null,
  client_id: provider.client?.client_id,
}));
