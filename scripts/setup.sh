#!/usr/bin/env bash
# Creates the project's virtualenv from requirements.lock with a Python 3.10.
# TFX 1.16 supports Python < 3.11 only, so the interpreter is searched for:
#   $PYTHON (if set), python3.10 on PATH, pyenv's 3.10 versions, python3.
set -euo pipefail
venv=${1:-.venv}
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

is_310() { [ -n "$1" ] && "$1" -c 'import sys, venv; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; }

find_python() {
  local candidates=()
  [ -n "${PYTHON:-}" ] && candidates+=("$PYTHON")
  candidates+=("$(command -v python3.10 || true)")
  if command -v pyenv >/dev/null 2>&1; then
    local root; root=$(pyenv root)
    candidates+=($(ls -d "$root"/versions/3.10*/bin/python3.10 2>/dev/null | sort -V -r))
  fi
  candidates+=($(ls -d "$HOME"/.pyenv/versions/3.10*/bin/python3.10 2>/dev/null | sort -V -r))
  candidates+=(/usr/bin/python3.10 /usr/local/bin/python3.10 "$(command -v python3 || true)")
  for c in "${candidates[@]}"; do
    if is_310 "$c"; then echo "$c"; return 0; fi
  done
  return 1
}

if [ -n "${PYTHON:-}" ] && ! is_310 "$PYTHON"; then
  echo "setup: PYTHON=$PYTHON is not a working Python 3.10 with venv." >&2
  exit 1
fi
if ! py=$(find_python); then
  cat >&2 <<'MSG'
setup: no Python 3.10 found (TFX 1.16 needs Python 3.10; 3.11+ is not supported).
Install one, then run this again, for example:
  pyenv install 3.10        # with pyenv (https://github.com/pyenv/pyenv)
  uv python install 3.10    # with uv
  apt-get install python3.10 python3.10-venv   # where your distribution has it
or point to an existing interpreter:  PYTHON=/path/to/python3.10 make run
MSG
  exit 1
fi
echo "setup: using $py ($("$py" --version 2>&1))"

# Graphviz `dot` renders `tfxp lineage --format dot` (the HTML pages need nothing).
if ! command -v dot >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Graphviz (dot) with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null \
      || echo "setup: could not install Graphviz; DOT output will not render here" >&2
  else
    echo "setup: Graphviz 'dot' not found; to render DOT lineage install it" \
         "(e.g. sudo apt-get install graphviz, brew install graphviz)" >&2
  fi
fi

lock_hash=$(cat requirements.lock setup.py scripts/setup.sh | sha256sum | cut -c1-16)
stamp="$venv/.installed-$lock_hash"
if [ -f "$stamp" ]; then
  echo "setup: $venv is up to date with requirements.lock"
  exit 0
fi
if [ -d "$venv" ] && ! is_310 "$venv/bin/python"; then
  echo "setup: $venv is not a Python 3.10 environment; recreating it"
  rm -rf "$venv"
fi
[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade "pip>=24" "uv==0.13.9" \
  || echo "setup: could not install uv; falling back to pip (slower)"
if [ -x "$venv/bin/uv" ]; then
  "$venv/bin/uv" pip install --python "$venv/bin/python" -r requirements.lock
  "$venv/bin/uv" pip install --python "$venv/bin/python" --no-deps -e .
else
  "$venv/bin/python" -m pip install -r requirements.lock
  "$venv/bin/python" -m pip install --no-deps -e .
fi
# Byte-compile what was installed. uv does not by default, and where
# PYTHONDONTWRITEBYTECODE is set (CI images, containers) Python would otherwise
# compile TensorFlow, TFX and Beam from source in every process: about 25 s of
# every `tfxp run` and of every Beam worker's start.
echo "setup: byte-compiling the environment (once)"
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
"$venv/bin/python" -m compileall -q -j 0 "$site" >/dev/null 2>&1 || true
rm -f "$venv"/.installed-*
touch "$stamp"
echo "setup: $venv ready"
