#!/usr/bin/env bash
# DDL at scale: one transaction of DDL_STATEMENTS statements (10,000 in
# `make test`) beside DDL_TABLES tracked tables (3,000) keeps
# TopTransactionContext as flat as without the extension, and records every
# statement (tests/reliability/ddl_memory.py).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
python3 "$here/reliability/ddl_memory.py" "${DDL_TABLES:-3000}" "${DDL_STATEMENTS:-10000}"
