// A real OpenID Connect provider (the `oidc-provider` package, its development
// interactions) for Tracewire's single sign-on tests. Started by tests/oidc/provider.py:
//   node provider.mjs PORT CONFIG_FILE
// CONFIG_FILE (JSON): {"clients": [...oidc-provider client metadata],
//   "accounts": {"<account id>": {<claims>}}, "id_token_ttl": seconds}
// It is read again at each account look-up, so a test may add accounts while it runs.
// Listens on 127.0.0.1 only; prints "ready" once it accepts connections.
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';

const [port, configFile] = process.argv.slice(2);
const read = () => JSON.parse(readFileSync(configFile, 'utf8'));
const config = read();
const issuer = `http://127.0.0.1:${port}`;

const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const signing = { ...(await exportJWK(privateKey)), kid: `k-${randomBytes(4).toString('hex')}`, use: 'sig', alg: 'RS256' };

const provider = new Provider(issuer, {
  clients: config.clients,
  jwks: { keys: [signing] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  // The scope's claims go into the ID token itself (Tracewire reads the ID token only).
  conformIdTokenClaims: false,
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
  ttl: {
    IdToken: config.id_token_ttl || 3600,
    AccessToken: 600,
    AuthorizationCode: 60,
    Interaction: 600,
    Session: 600,
    Grant: 600,
  },
  async findAccount(_ctx, id) {
    const claims = read().accounts[id];
    if (!claims) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...claims }) };
  },
});
// Every refused request is one the test meant; keep the output to what helps a failure.
provider.on('server_error', (_ctx, err) => console.error('server_error', err));

const server = provider.listen(Number(port), '127.0.0.1', () => console.log('ready'));
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
