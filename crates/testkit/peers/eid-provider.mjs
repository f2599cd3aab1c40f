// A local OpenID Connect provider standing in for the national E-ID, for the tests (npm
// `oidc-provider`). Test use only.
//
//   node eid-provider.mjs PORT
//
// Listens on 127.0.0.1:PORT, issuer http://127.0.0.1:PORT, prints "ready" on
// stdout once listening.
//
// Env:
//   REDIRECT_URI  redirect URI registered for both clients
//                 (default http://localhost:8080/api/v1/auth/eid/callback)
//   ID_TOKEN_TTL  ID token lifetime in seconds (default 3600), for expiry tests
//   JWKS_FILE     if set: load the RSA signing JWK from this file, or generate
//                 one and write it there. Lets two providers (different issuers)
//                 sign with the same key, for a "wrong issuer, valid signature"
//                 test.
//
// Login: oidc-provider's built-in devInteractions (login form accepts any
// login/password; the typed login becomes the account id), then a consent
// page. Everything is plain form POSTs, no JavaScript needed.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const port = Number.parseInt(process.argv[2] ?? '', 10);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node eid-provider.mjs PORT');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;
const redirectUri = process.env.REDIRECT_URI || 'http://localhost:8080/api/v1/auth/eid/callback';
const idTokenTtl = Number.parseInt(process.env.ID_TOKEN_TTL || '3600', 10);

function signingJwk() {
  const file = process.env.JWKS_FILE;
  if (file && existsSync(file)) return JSON.parse(readFileSync(file, 'utf8'));
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), use: 'sig', alg: 'RS256' };
  if (file) writeFileSync(file, JSON.stringify(jwk), { mode: 0o600 });
  return jwk;
}

const client = (client_id, client_secret) => ({
  client_id,
  client_secret,
  redirect_uris: [redirectUri],
  response_types: ['code'],
  grant_types: ['authorization_code'],
  token_endpoint_auth_method: 'client_secret_basic',
  id_token_signed_response_alg: 'RS256',
});

const configuration = {
  clients: [client('daman', 'daman-secret'), client('other', 'other-secret')],
  jwks: { keys: [signingJwk()] },
  // Account id = the login typed at the form. sub = account id,
  // national_id = account id upper-cased (CIN, e.g. ZA101).
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims(use, scope, claims, rejected) {
        return { sub: id, national_id: String(id).toUpperCase() };
      },
    };
  },
  // Custom scope "national_id" releasing the custom claim "national_id".
  // Scopes are derived from the keys of this object.
  claims: {
    openid: ['sub'],
    national_id: ['national_id'],
  },
  // Default (true) would put scope-released claims only in /userinfo when an
  // access token is also issued (code flow). We want them in the ID token.
  conformIdTokenClaims: false,
  scopes: ['openid'],
  responseTypes: ['code'],
  pkce: { required: () => true }, // v9 supports S256 only
  features: {
    devInteractions: { enabled: true },
    userinfo: { enabled: true },
    revocation: { enabled: false },
  },
  cookies: { keys: [randomUUID()] },
  ttl: {
    AccessToken: 600,
    AuthorizationCode: 60,
    IdToken: () => idTokenTtl,
    Interaction: 600,
    Session: 600,
    Grant: 600,
  },
};

const provider = new Provider(issuer, configuration);
// Plain http on 127.0.0.1: oidc-provider accepts an http issuer; cookies are
// only marked Secure when the request is https, so nothing else is needed.
provider.on('server_error', (ctx, err) => console.error('server_error', err));

const server = provider.listen(port, '127.0.0.1', () => {
  process.stdout.write('ready\n');
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
