#!/bin/sh
# sales/orders_clean: validate and clean one day of raw orders.
#
# Keeps rows that have exactly the four columns, a sane order and customer id, a
# non-negative amount with at most two decimals and an ordered_at timestamp inside the
# partition's day; drops the rest (counted, and reported in the metadata) and drops
# repeated order ids (first one wins). Amounts are normalised to plain "123.40".
#
#   usage: sh scripts/clean_orders.sh YYYY-MM-DD      (or set FRESHET_PARTITION)
#   reads:  $SALES_DATA_DIR/data/raw/date=YYYY-MM-DD/orders.csv
#   writes: $SALES_DATA_DIR/data/clean/date=YYYY-MM-DD/orders.csv
set -eu

# Data root: everything this script reads and writes lives under it. Default: the
# current directory, which under Freshet is the definitions folder (examples/sales).
DATA_DIR=${SALES_DATA_DIR:-.}

. "$(dirname "$0")/lib/common.sh"

DATE=$(daily_partition "$@")
IN=$(data_path "data/raw/date=$DATE/orders.csv")
OUT=$(data_path "data/clean/date=$DATE/orders.csv")
require_file "$IN" "raw orders for $DATE (materialize sales/raw_orders $DATE first)"

atomic_begin "$OUT"
# Prints "kept malformed outside duplicates"; exits 3 on a missing or unexpected header.
if ! COUNTS=$(awk -F, -v date="$DATE" -v header="$ORDERS_HEADER" -v out="$TMP" '
function trim(s) { gsub(/^[ \t]+|[ \t]+$/, "", s); return s }
{ sub(/\r$/, "") }
NR == 1 {
	if ($0 != header) { badheader = 1; exit }
	print > out
	next
}
/^[ \t]*$/ { next }
{
	if (NF != 4) { malformed++; next }
	id = trim($1); cust = trim($2); amt = trim($3); ts = trim($4)
	sub(/^[$]/, "", amt)
	if (id !~ /^[0-9A-Za-z_-]+$/ || cust !~ /^C[0-9]+$/ || amt !~ /^[0-9]+([.][0-9][0-9]?)?$/ ||
	    ts !~ /^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]Z$/) {
		malformed++
		next
	}
	if (substr(ts, 1, 10) != date) { outside++; next }   # belongs to another partition
	if (id in seen) { duplicates++; next }
	seen[id] = 1
	k = split(amt, p, ".")
	ip = p[1]; fp = k > 1 ? p[2] : ""
	sub(/^0+/, "", ip); if (ip == "") ip = "0"
	while (length(fp) < 2) fp = fp "0"
	print id "," cust "," ip "." fp "," ts > out
	kept++
}
END {
	if (NR == 0 || badheader) exit 3
	printf "%d %d %d %d\n", kept, malformed, outside, duplicates
}' "$IN"); then
	die "$IN: missing or unexpected header (want: $ORDERS_HEADER)"
fi
atomic_commit "$OUT"

set -- $COUNTS
log "$DATE: kept $1 orders, dropped $2 malformed, $3 outside the day, $4 duplicate -> $OUT"
emit_output "$(data_version "$OUT")" \
	"\"rows\": $1, \"dropped_malformed\": $2, \"dropped_outside_partition\": $3, \"dropped_duplicates\": $4, \"path\": $(json_str "$OUT")"
