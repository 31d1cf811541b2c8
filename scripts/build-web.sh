#!/usr/bin/env bash
# Builds the browser client: the TypeScript library (clients/js), the web app
# (web/ -> web/dist, which the gateway serves at /), and installs the e2e test
# dependencies (tests/e2e: playwright-core, which drives the system chromium
# and never downloads a browser). Needs Node.js >= 20 and npm; only the npm
# registry is contacted, and only by `npm ci` from the committed lockfiles.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v npm >/dev/null 2>&1; then
  echo "build-web: npm not found; install Node.js 20+ (https://nodejs.org or the nodesource Debian packages)" >&2
  exit 1
fi

# Vite 7 needs Node.js 20.19+ (or 22.12+); Debian 12's own nodejs (18) is too old.
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>22||(a===22&&b>=12)||(a===20&&b>=19)?0:1)'; then
  echo "build-web: Node.js $(node --version) is too old; 20.19+ or 22.12+ is needed (nodesource packages)" >&2
  exit 1
fi

# playwright-core must not fetch browsers; the e2e tests use /usr/bin/chromium.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
npm_ci() { npm ci --no-audit --no-fund --prefer-offline "$@"; }

echo "build-web: clients/js"
(cd clients/js && npm_ci && npm run build)

echo "build-web: web"
(cd web && npm_ci && npm run build)

echo "build-web: tests/e2e"
(cd tests/e2e && npm_ci)

echo "build-web: built web/dist ($(find web/dist -type f | wc -l) files)"
