// A real OpenID provider (oidc-provider) on loopback, for searchgate's integration tests.
// Env: PORT (0 = ephemeral), RESOURCE, OTHER_RESOURCE (resource indicators with JWT access
// tokens), TOKEN_TTL (s, default 300), TOKEN_FORMAT (jwt|opaque, default jwt).
// Prints ONE JSON line on stdout when ready (issuer, endpoints, clients); logs go to stderr.
// Test hooks (loopback only, never in a real IdP):
//   POST /__test/rotate  switch to a new signing key (the old one stays published)
//   POST /__test/sign    {header?, claims, fresh_key?} -> {token, public_pem}: tokens a real IdP
//                        would not issue (future nbf, no exp, foreign iss, unpublished kid)
import * as crypto from 'node:crypto';
import * as http from 'node:http';
import { SignJWT, importJWK, exportSPKI } from 'jose';
import Provider, { errors } from 'oidc-provider';
// One module-global in-memory store shared by every Provider built below (survives rotation).
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';

console.info = console.error; // oidc-provider prints notices with console.info; stdout is the JSON line
const env = process.env;
const RESOURCE = env.RESOURCE ?? 'http://127.0.0.1:5555/web-search/mcp';
const OTHER_RESOURCE = env.OTHER_RESOURCE ?? 'http://127.0.0.1:5556/other/mcp';
const TTL = Number(env.TOKEN_TTL ?? 300);
const FORMAT = env.TOKEN_FORMAT ?? 'jwt';
const SCOPES = 'web-search:read web-search:admin';

function newKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: crypto.randomUUID(), use: 'sig', alg: 'RS256' };
}
const keys = [newKey()]; // keys[0] signs

const clients = [
  { client_id: 'searchgate-cc', client_secret: 'cc-secret' },
  { client_id: 'searchgate-cc-opaque', client_secret: 'cc-opaque-secret' },
  { client_id: 'searchgate-cc-expired', client_secret: 'cc-expired-secret' },
].map((c) => ({ ...c, grant_types: ['client_credentials'], response_types: [], redirect_uris: [], scope: SCOPES }));
// searchgate's own credentials for introspection (no grants)
clients.push({ client_id: 'searchgate-rs', client_secret: 'rs-secret', grant_types: [], response_types: [], redirect_uris: [] });

const server = http.createServer();
await new Promise((resolve) => server.listen(Number(env.PORT ?? 0), '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const build = () => new Provider(issuer, {
  adapter: (model) => new MemoryAdapter(model),
  clients: structuredClone(clients),
  jwks: { keys: structuredClone(keys) },
  scopes: ['openid', 'offline_access', 'web-search:read', 'web-search:admin'],
  cookies: { keys: ['test-cookie-key'] },
  ttl: { AccessToken: TTL, ClientCredentials: TTL, AuthorizationCode: 60, IdToken: TTL, Interaction: 600, Session: 3600, Grant: 3600, RefreshToken: 3600 },
  issueRefreshToken: (ctx, client) => client.grantTypeAllowed('refresh_token'),
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: { enabled: true, allowedPolicy: (ctx, client) => client.clientAuthMethod !== 'none' },
    revocation: { enabled: true },
    registration: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: (ctx, client, oneOf) => oneOf,
      useGrantedResource: () => true,
      getResourceServerInfo(ctx, resource, client) {
        if (resource !== RESOURCE && resource !== OTHER_RESOURCE) throw new errors.InvalidTarget();
        return {
          scope: SCOPES,
          accessTokenTTL: TTL,
          accessTokenFormat: client?.clientId === 'searchgate-cc-opaque' ? 'opaque' : FORMAT,
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  formats: {
    customizers: {
      jwt(ctx, token, jwt) { // this client's tokens expired an hour ago
        if (token.clientId === 'searchgate-cc-expired') {
          jwt.payload.iat -= 7200;
          jwt.payload.exp = jwt.payload.iat + 3600;
        }
      },
    },
  },
});
let provider = build();
let handler = provider.callback();

async function readJson(req) {
  let body = '';
  for await (const chunk of req) body += chunk;
  return body ? JSON.parse(body) : {};
}

async function sign({ header = {}, claims, fresh_key = false }) {
  const jwk = fresh_key ? newKey() : keys[0];
  const privateKey = await importJWK(jwk, 'RS256');
  const { d, p, q, dp, dq, qi, ...publicJwk } = jwk;
  const publicPem = await exportSPKI(await importJWK(publicJwk, 'RS256'));
  const token = await new SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: jwk.kid, ...header })
    .sign(privateKey);
  return { token, public_pem: publicPem, kid: jwk.kid };
}

server.on('request', async (req, res) => {
  if (req.method === 'POST' && req.url === '/__test/rotate') {
    keys.unshift(newKey());
    provider = build();
    handler = provider.callback();
    res.setHeader('content-type', 'application/json');
    return res.end(JSON.stringify({ signing_kid: keys[0].kid, kids: keys.map((k) => k.kid) }));
  }
  if (req.method === 'POST' && req.url === '/__test/sign') {
    res.setHeader('content-type', 'application/json');
    return res.end(JSON.stringify(await sign(await readJson(req))));
  }
  return handler(req, res);
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));

const url = (name) => provider.urlFor(name);
console.log(JSON.stringify({
  issuer,
  jwks_uri: url('jwks'),
  token_endpoint: url('token'),
  introspection_endpoint: url('introspection'),
  revocation_endpoint: url('revocation'),
  registration_endpoint: url('registration'),
  resource: RESOURCE,
  other_resource: OTHER_RESOURCE,
  signing_kid: keys[0].kid,
  clients: Object.fromEntries(clients.map((c) => [c.client_id, c.client_secret])),
}));
