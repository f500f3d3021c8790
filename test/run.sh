#!/usr/bin/env bash
# The test command (`npm test`): installs what the tests need, builds, and runs every test file
# one at a time (they start real clusters; two at once would fight over 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/setup.sh
# Lint and format first: zero findings, or the run stops here (`npm run format` fixes the format).
npx biome ci --error-on-warnings .
npx tsc -p tsconfig.json
node --test --test-concurrency=1 --test-timeout=300000 dist/test/*.test.js
