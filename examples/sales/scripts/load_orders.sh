#!/bin/sh
# sales/orders_loaded: load one day of clean orders into the local "warehouse".
#
# The warehouse is a plain directory tree, one folder per partition, Hive style:
#   warehouse/orders/date=YYYY-MM-DD/part.csv
# The load is idempotent: the partition's file is written to a temporary file and
# renamed over the old one, so a re-run replaces the day instead of adding its rows
# twice (the file-system version of DELETE ... WHERE date = ? ; INSERT in one
# transaction). Rows are sorted by order_id so equal input gives equal bytes.
#
#   usage: sh scripts/load_orders.sh YYYY-MM-DD       (or set FRESHET_PARTITION)
#   reads:  $SALES_DATA_DIR/data/clean/date=YYYY-MM-DD/orders.csv
#   writes: $SALES_DATA_DIR/warehouse/orders/date=YYYY-MM-DD/part.csv
set -eu

# Data root: everything this script reads and writes lives under it. Default: the
# current directory, which under Freshet is the definitions folder (examples/sales).
DATA_DIR=${SALES_DATA_DIR:-.}

. "$(dirname "$0")/lib/common.sh"

DATE=$(daily_partition "$@")
IN=$(data_path "data/clean/date=$DATE/orders.csv")
OUT=$(data_path "warehouse/orders/date=$DATE/part.csv")
require_file "$IN" "clean orders for $DATE (materialize sales/orders_clean $DATE first)"

header=$(head -n 1 "$IN")
[ "$header" = "$ORDERS_HEADER" ] || die "$IN: unexpected header '$header' (want: $ORDERS_HEADER)"

atomic_begin "$OUT"
{
	printf '%s\n' "$ORDERS_HEADER"
	tail -n +2 "$IN" | LC_ALL=C sort -t, -k1,1
} >"$TMP"
atomic_commit "$OUT"

ROWS=$(($(wc -l <"$OUT") - 1))
log "loaded $ROWS orders for $DATE -> $OUT (partition replaced)"
emit_output "$(data_version "$OUT")" "\"rows\": $ROWS, \"path\": $(json_str "$OUT")"
