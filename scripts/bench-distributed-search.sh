#!/usr/bin/env bash
# The distributed-search throughput benchmark (docs/distributed-search.md), in one command:
#   scripts/bench-distributed-search.sh [TRIALS] [WORKERS...]      (default: 200 trials; 1 2 4 8 workers)
# builds tforge (Release), starts a throwaway PostgreSQL server (.ci/postgres.sh, installed if missing), runs
# `tforge bench search` against it and against a SQLite file for comparison, and removes both.
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-200}
shift || true
workers=("${@:-1 2 4 8}")
dotnet build src/TransformerForge.Cli -c Release -v q -nologo >/dev/null
tforge=(dotnet src/TransformerForge.Cli/bin/Release/net10.0/tforge.dll)
pg=$(mktemp -d /tmp/tforge-bench-pg.XXXXXX)
db=$(mktemp -d /tmp/tforge-bench-sqlite.XXXXXX)
trap 'bash .ci/postgres.sh stop "$pg" >/dev/null 2>&1 || true; rm -rf "$db"' EXIT
bash .ci/postgres.sh start "$pg" "$$"
echo "PostgreSQL $("$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)/postgres" --version | awk '{print $3}') on 127.0.0.1 (fsync off), $(nproc) cores"
# shellcheck disable=SC2068
"${tforge[@]}" bench search --storage "file:$pg/url" --trials "$trials" --workers ${workers[@]}
echo
"${tforge[@]}" bench search --storage "$db/bench.db" --trials "$trials" --workers ${workers[@]}
