#!/usr/bin/env bash
# Sliceboard's test command: installs what the tests need, then runs every test.
#   bash tests/run.sh            all tests
#   bash tests/run.sh -k labels  extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."

# 1. A local virtual environment with the pinned requirements (app + tests), and Sliceboard
#    itself installed from this folder (editable: the `sliceboard` command, `analysis` importable).
if [ ! -x .venv/bin/python ]; then
    "${PYTHON:-python3}" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt \
    -r tests/requirements-spark.txt -e .

# 2. Debian's Chromium and ChromeDriver for the browser tests, where missing.
if [ ! -x /usr/bin/chromium ]; then
    SUDO=""
    if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi
    if command -v apt-get >/dev/null; then
        $SUDO apt-get install -y -q chromium chromium-driver >/dev/null \
            || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q chromium chromium-driver >/dev/null; } \
            || echo "warning: could not install chromium; the browser tests will skip" >&2
    else
        echo "warning: no apt-get; install Chromium at /usr/bin/chromium for the browser tests" >&2
    fi
fi

# 3. A Java runtime for the local Spark of the parity tests, where missing.
if ! command -v java >/dev/null; then
    SUDO=""
    if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi
    if command -v apt-get >/dev/null; then
        $SUDO apt-get install -y -q openjdk-17-jre-headless >/dev/null \
            || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q openjdk-17-jre-headless >/dev/null; } \
            || echo "warning: could not install Java; the Spark parity tests will skip" >&2
    else
        echo "warning: no apt-get; install Java 17 for the Spark parity tests" >&2
    fi
fi

# 4. Every test, in two worker processes (pytest-xdist); each test file runs whole in one
#    worker, so a file's shared server, Spark session or database is built once.
exec .venv/bin/python -m pytest tests -q -p no:cacheprovider -n 2 --dist loadfile "$@"
