#!/usr/bin/env bash
# Rebuilds the vendored forms bundle:
#   azure_openai_connector/playground/static/forms.bundle.js
#   azure_openai_connector/playground/static/THIRD_PARTY_LICENSES.txt
# Needs Node >= 18 and access to the npm registry. Re-runnable; output is deterministic.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
npm ci --no-audit --no-fund
node build.mjs
