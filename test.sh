#!/usr/bin/env bash
# Sets up exactly as ./run.sh does, then runs the linter and the whole test suite:
# services and API on SQLite and PostgreSQL, integration tests against the real server, and
# browser tests in headless Chromium. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"

./run.sh --install-only
export PATH="$PWD/.venv/bin:$PATH"

# Browser tests drive Debian's Chromium (Playwright's own browser download is not used).
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "==> installing chromium for the browser tests"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ||
    echo "could not install chromium; browser tests will fail" >&2
fi

# PostgreSQL for the scale-out tests (IC_TEST_POSTGRES_URL); start the local cluster if it is down.
export IC_TEST_POSTGRES_URL="${IC_TEST_POSTGRES_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}"
if command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  if command -v pg_ctlcluster >/dev/null; then
    echo "==> starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
fi

echo "==> ruff"
ruff check .
echo "==> pytest"
exec python -m pytest "$@"
