// The benchmark's peer: node-oidc-provider with open dynamic client registration (no initial
// access token), its default in-memory adapter, on one port. bench/registration.py starts it
// pinned to the registration service's core and sends it the same request (bench/register.lua:
// POST /oidc/register, Host bench.example) with the same wrk settings.
//
// Usage: node server.js PORT   (or PORT=... node server.js); BENCH_HOST names the issuer's host.
import { generateKeyPairSync, randomBytes } from 'node:crypto';

import Provider from 'oidc-provider';

const port = Number(process.argv[2] ?? process.env.PORT);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: node server.js PORT');
  process.exit(2);
}
const host = process.env.BENCH_HOST ?? 'bench.example';

// A signing key of its own: without one the provider uses its published development keys
// (and says so); registration itself signs nothing.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'bench', use: 'sig', alg: 'RS256' };

const provider = new Provider(`http://${host}`, {
  features: {
    registration: { enabled: true, initialAccessToken: false },
    // Sign-in pages are not measured; the development ones would only warn.
    devInteractions: { enabled: false },
  },
  // The path our service answers on, so both take the very same request.
  routes: { registration: '/oidc/register' },
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
});
// No request or error logging: Koa's default error printer is its only output under load.
provider.silent = true;

const server = provider.listen(port, '127.0.0.1');
// The bench stops it with SIGTERM: close at once (wrk has finished by then).
process.on('SIGTERM', () => server.close(() => process.exit(0)));
