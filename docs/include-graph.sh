#!/bin/sh
# SPDX-License-Identifier: MIT
# The include graph of lib/ (docs/design.md shows its output) and two checks:
#   - no include cycle among lib/ files (tsort finds loops);
#   - every lib/X.h declares only functions defined in lib/X.c — or, for a
#     module split over files, in lib/X_*.c (tcp.h: tcp_*.c).
# Usage: docs/include-graph.sh [--check]   (exit 1 when a check fails)
set -eu
cd "$(dirname "$0")/.."
check=${1:-}
edges=$(for f in lib/*.c lib/*.h; do
    sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f" | while read -r h; do
        if [ -f "lib/$h" ]; then echo "${f#lib/} $h"; fi
    done
done)
if [ "$check" != --check ]; then
    echo "$edges" | awk '{d[$1] = d[$1] (d[$1] ? ", " : "") $2} END {for (f in d) print f " -> " d[f]}' | sort
fi
status=0
if ! echo "$edges" | tsort >/dev/null 2>/tmp/jk-tsort.$$; then
    echo "include cycle:" >&2; cat /tmp/jk-tsort.$$ >&2; status=1
fi
rm -f /tmp/jk-tsort.$$
# Functions each header declares (jk_/jktcp_ names at the start of a line's
# declarator), and the .c files that define them. X_int.h is the private
# header of module X (X_*.c).
bad=$(for h in lib/*.h; do
    base=$(basename "$h" .h)
    base=${base%_int}
    grep -hoE '^[a-z_A-Z][a-zA-Z0-9_ *]*[ *](jk_|jktcp_)[a-z0-9_]+\(' "$h" | grep -v '^static' |
        sed -E 's/.*[ *]((jk_|jktcp_)[a-z0-9_]+)\($/\1/' | sort -u | while read -r fn; do
        def=$(grep -lE "^[a-zA-Z_].*[ *]$fn\([^;]*\)?$|^[a-zA-Z_].*[ *]$fn\([^;]*,$" lib/*.c 2>/dev/null | head -1 || true)
        if [ -z "$def" ]; then continue; fi
        d=$(basename "$def" .c)
        case "$d" in "$base" | "${base}"_*) ;; *) echo "$h declares $fn, defined in $def" ;; esac
    done
done)
if [ -n "$bad" ]; then echo "$bad" >&2; status=1; fi
exit $status
