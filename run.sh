#!/usr/bin/env bash
# Starts the whole product on one port (default 8000): console, /v1, webhooks, scheduler, workers.
#   ./run.sh                  set up (venv, packages, migrations) and serve
#   ./run.sh --install-only   create the venv and install, then exit (used by ./test.sh)
#   ./run.sh --setup-only     also apply migrations and prepare the data directory, then exit
#   ./run.sh --setup-link     print a new one-time console setup link and exit
#   ./run.sh --backend-port 9000 ...   any other arguments go to `reflex run`
set -euo pipefail
cd "$(dirname "$0")"

pick_python() {
  for candidate in python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
      echo "$candidate"; return 0
    fi
  done
  echo "Python 3.11 or newer is required" >&2; return 1
}

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$(pick_python)" -m venv .venv
fi
# Reinstall only when requirements.txt changed since the last successful install.
stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> installing requirements"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
  echo "$want" > "$stamp"
fi
export PATH="$PWD/.venv/bin:$PATH"

case "${1:-}" in
  --install-only)
    exit 0 ;;
  --setup-only)
    python -m app.bootstrap
    exit 0 ;;
  --setup-link)
    python -m app.bootstrap --setup-link
    exit 0 ;;
esac

echo "==> applying migrations"
python -m app.bootstrap
# Single-port mode serves on the backend port; Reflex's default (3000) is not the documented 8000.
case " $* " in
  *" --backend-port"*|*" --frontend-port"*) ;;
  *) set -- --backend-port 8000 "$@" ;;
esac
echo "==> starting on ${IC_PUBLIC_URL:-http://localhost:8000}"
# `reflex run --env prod --single-port "$@"`, without building the console again when nothing it is built
# from changed since the last build (app/launch.py).
exec python -m app.launch "$@"
