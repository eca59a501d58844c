#!/usr/bin/env bash
# One entry point for newcomers and CI:
#   ./run.sh pipeline   create .venv if needed, install ganforge, run `dvc repro`
#   ./run.sh test       same bootstrap, then the whole test suite
#   ./run.sh ui         same bootstrap, then MLflow's UI on the runs table (`ganforge ui`)
#   ./run.sh lint       same bootstrap, then the checks CI runs first: ruff check, ruff format, mypy
# Extra arguments go to dvc repro / pytest (e.g. ./run.sh test -m "not slow").
set -euo pipefail
cd "$(dirname "$0")"

venv=.venv
python=${PYTHON:-}
if [ -z "$python" ]; then
  for candidate in python3.11 python3 python; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      python=$candidate
      break
    fi
  done
fi
if [ ! -x "$venv/bin/python" ]; then
  [ -n "$python" ] || { echo "ganforge needs Python >= 3.11 (set PYTHON=/path/to/python3.11)" >&2; exit 1; }
  echo ">> creating $venv with $python"
  "$python" -m venv "$venv"
fi

# Reinstall only when the project's requirements changed.
stamp="$venv/.ganforge-installed"
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo ">> installing ganforge and its requirements into $venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet -e ".[dev]"
  echo "$want" >"$stamp"
fi
export PATH="$PWD/$venv/bin:$PATH"

# The browser page's runtime (onnxruntime-web, Swagger UI) comes from the npm packages pinned in
# web/package-lock.json, copied into the package data; rebuilt only when the lock changes.
web_stamp="web/node_modules/.ganforge-built"
web_want=$(cat web/package-lock.json web/build.mjs | sha256sum | cut -d' ' -f1)
if [ "$(cat "$web_stamp" 2>/dev/null)" != "$web_want" ]; then
  if command -v npm >/dev/null 2>&1; then
    echo ">> building the web page's assets (npm ci in web/)"
    if npm --prefix web ci --no-audit --no-fund --silent && npm --prefix web run build --silent
    then
      echo "$web_want" >"$web_stamp"
    else
      echo ">> web assets not built: 'ganforge serve' runs without its page at / and /docs" >&2
    fi
  else
    echo ">> npm not found: 'ganforge serve' runs, but without its page at / and /docs" >&2
  fi
fi

task=${1:-}
shift || true
case "$task" in
  pipeline) exec dvc repro "$@" ;;
  test) exec python -m pytest "$@" ;;
  ui) exec ganforge ui "$@" ;;
  lint) ruff check . && ruff format --check . && exec mypy ;;
  *) echo "usage: ./run.sh pipeline|test|ui|lint [args...]" >&2; exit 2 ;;
esac
