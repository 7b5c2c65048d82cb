// A real, OpenID Certified provider (oidc-provider) for kube-dc's login
// tests, serving Keycloak's paths under /realms/<REALM>. Prints one JSON
// line {"ready":true,"issuer":...} on stdout once it listens.
//
// A confidential client `kube-dc-ci` (secret `ci-secret`, or CI_SECRET) has
// a service account, as a Keycloak client with "Service accounts roles"
// enabled: the client-credentials grant, HTTP Basic client authentication,
// and tokens naming `service-account-kube-dc-ci`, an organization admin of
// acme (group org-admin).
//
// Environment: PORT (0 = any), REALM (default "test"), ACCESS_TTL seconds
// (default 300), REFRESH_TTL seconds (default 86400), DEVICE_TTL seconds
// (default 600), USERS_FILE (a JSON object of more users, shaped like USERS
// below; read again at every sign-in and token, so a test can change a
// user's groups as an administrator would).
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

const realm = process.env.REALM || 'test';
const accessTtl = Number(process.env.ACCESS_TTL || 300);
const refreshTtl = Number(process.env.REFRESH_TTL || 86400);
const deviceTtl = Number(process.env.DEVICE_TTL || 600);
const prefix = `/realms/${realm}`;
const kc = '/protocol/openid-connect';

// A few users. Passwords are checked by the login form below.
const USERS = {
  alice: { password: 'alice-pw', email: 'alice@example.com', org: 'acme', groups: ['acme-devs'], namespaces: ['acme-demo', 'acme-staging'] },
  oscar: { password: 'oscar-pw', email: 'oscar@example.com', org: 'acme', groups: ['org-admin'], namespaces: [] },
  nina: { password: 'nina-pw', email: 'nina@example.com', org: 'acme', groups: [], namespaces: [] },
};

function users() {
  if (!process.env.USERS_FILE) return USERS;
  return { ...USERS, ...JSON.parse(readFileSync(process.env.USERS_FILE, 'utf8')) };
}

function account(id) {
  const u = users()[id];
  if (!u) return undefined;
  const claims = {
    sub: id,
    email: u.email,
    email_verified: true,
    preferred_username: id,
    org: u.org,
    groups: u.groups,
    namespaces: u.namespaces,
  };
  return { accountId: id, claims: async () => claims };
}

// The key leaves the generator as PEM and is re-imported before the JWK
// export: on Node 20, exporting a JWK straight from generateKeyPairSync's key
// object can deadlock the process when a garbage collection runs during the
// export (the key-generation job's destructor takes a lock the export holds).
const { privateKey: pem } = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  publicKeyEncoding: { type: 'spki', format: 'pem' },
});
const jwk = { ...createPrivateKey(pem).export({ format: 'jwk' }), kid: 'test-rs256', use: 'sig', alg: 'RS256' };

const configuration = {
  clients: [{
    client_id: 'kube-dc-ci',
    client_secret: process.env.CI_SECRET || 'ci-secret',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
  }, {
    client_id: 'kube-dc',
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    // Native clients may use any port on a loopback redirect (RFC 8252).
    redirect_uris: ['http://localhost/callback', 'http://127.0.0.1/callback'],
    grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
    response_types: ['code'],
  }],
  jwks: { keys: [jwk] },
  cookies: { keys: [randomBytes(16).toString('hex')] },
  findAccount: (_ctx, id) => account(id),
  // Like Keycloak's protocol mappers: the platform's claims come with
  // `openid` itself (the CLI asks for `openid offline_access`).
  claims: {
    openid: ['sub', 'email', 'email_verified', 'preferred_username', 'groups', 'namespaces', 'org'],
  },
  scopes: ['openid', 'offline_access'],
  conformIdTokenClaims: false,
  // Consent is part of the login form; offline_access needs prompt=consent
  // on the authorization request.
  features: {
    devInteractions: { enabled: false },
    deviceFlow: { enabled: true },
    clientCredentials: { enabled: true },
    revocation: { enabled: true },
    userinfo: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'urn:kube-dc:backend',
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'openid offline_access',
        audience: 'kube-dc',
        accessTokenTTL: accessTtl,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  extraTokenClaims: async (_ctx, token) => {
    if (token.kind === 'ClientCredentials') {
      // Keycloak's service-account user for the client.
      return {
        preferred_username: `service-account-${token.clientId}`,
        email: '',
        groups: ['org-admin'],
        namespaces: [],
        org: 'acme',
      };
    }
    if (token.kind !== 'AccessToken') return undefined;
    const a = account(token.accountId);
    if (!a) return undefined;
    const { email, preferred_username, groups, namespaces, org } = await a.claims();
    return { email, preferred_username, groups, namespaces, org };
  },
  ttl: {
    AccessToken: accessTtl,
    IdToken: 3600,
    RefreshToken: refreshTtl,
    DeviceCode: deviceTtl,
    Grant: Math.max(refreshTtl, 3600),
    Interaction: 600,
    Session: 86400,
  },
  routes: {
    authorization: `${kc}/auth`,
    token: `${kc}/token`,
    device_authorization: `${kc}/auth/device`,
    code_verification: '/device',
    jwks: `${kc}/certs`,
    revocation: `${kc}/revoke`,
    userinfo: `${kc}/userinfo`,
    end_session: `${kc}/logout`,
    introspection: `${kc}/token/introspect`,
  },
  interactions: { url: (_ctx, interaction) => `${prefix}/interaction/${interaction.uid}` },
  renderError: async (ctx, out) => {
    ctx.type = 'html';
    ctx.body = `<!doctype html><title>Error</title><h1>${escape(out.error)}</h1><p>${escape(out.error_description || '')}</p>`;
  },
  pkce: { required: () => true },
};

function escape(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title, body) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escape(title)}</title></head><body>${body}</body></html>`;
}

async function readForm(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

// Login and consent in one form: user, password, then the grant covers
// every requested scope, claim and resource.
async function interaction(provider, req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('interaction mismatch');
  if (req.method === 'GET') {
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.end(page('Sign in', `
      <h1>Sign in to ${escape(realm)}</h1>
      <form id="login" method="post" action="${prefix}/interaction/${uid}/login">
        <label>Username <input name="username" autocomplete="username" autofocus></label>
        <label>Password <input name="password" type="password" autocomplete="current-password"></label>
        <button type="submit" id="kc-login">Sign in</button>
      </form>
      <form method="post" action="${prefix}/interaction/${uid}/abort"><button type="submit" id="abort">Cancel</button></form>`));
    return;
  }
  if (action === 'abort') {
    await provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'the user cancelled' }, { mergeWithLastSubmission: false });
    return;
  }
  const form = await readForm(req);
  const username = form.get('username') || '';
  const user = users()[username];
  if (!user || user.password !== form.get('password')) {
    res.statusCode = 401;
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.end(page('Sign in', `<p id="error">Invalid username or password.</p><a href="${prefix}/interaction/${uid}">Try again</a>`));
    return;
  }
  const { prompt, params, session } = details;
  const grant = details.grantId ? await provider.Grant.find(details.grantId) : new provider.Grant({ accountId: username, clientId: params.client_id });
  grant.addOIDCScope(String(params.scope || 'openid'));
  if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes || {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  grant.addResourceScope('urn:kube-dc:backend', String(params.scope || 'openid'));
  const grantId = await grant.save();
  void session;
  await provider.interactionFinished(req, res, { login: { accountId: username }, consent: { grantId } }, { mergeWithLastSubmission: false });
}

const server = http.createServer();
server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}${prefix}`;
  const provider = new Provider(issuer, configuration);
  const callback = provider.callback();
  // One JSON line per token event on stderr, for tests to count refreshes
  // and revocations.
  const log = (event, extra) => process.stderr.write(`${JSON.stringify({ event, ...extra })}\n`);
  provider.on('grant.success', (ctx) => log('grant.success', { grant_type: ctx.oidc.params.grant_type }));
  provider.on('grant.error', (ctx, err) => log('grant.error', { grant_type: ctx.oidc.params?.grant_type, error: err.error }));
  provider.on('revocation.error', (ctx, err) => log('revocation.error', { error: err.error }));
  provider.on('grant.revoked', () => log('grant.revoked', {}));
  server.on('request', async (req, res) => {
    try {
      if (!req.url.startsWith(prefix)) {
        res.statusCode = 404;
        res.end('not found');
        return;
      }
      req.originalUrl = req.url;
      const rest = req.url.slice(prefix.length) || '/';
      const m = rest.match(/^\/interaction\/([^/?]+)(?:\/(login|abort))?/);
      if (m) {
        await interaction(provider, req, res, m[1], m[2]);
        return;
      }
      req.url = rest;
      callback(req, res);
    } catch (e) {
      res.statusCode = 500;
      res.setHeader('content-type', 'text/plain');
      res.end(String(e && e.message));
    }
  });
  process.stdout.write(`${JSON.stringify({ ready: true, issuer, port })}\n`);
});

for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => server.close(() => process.exit(0)));
