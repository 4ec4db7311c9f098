#!/usr/bin/env bash
# Regenerate the single initial migration from the models (only while nothing is deployed).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
rm -f migrations/versions/*_initial_schema.py
DATABASE_URL="sqlite:///$tmp/empty.sqlite3" .venv/bin/alembic revision --autogenerate -m "initial schema" >/dev/null 2>&1
.venv/bin/ruff format migrations/versions >/dev/null
rm -rf "$tmp"
ls migrations/versions
