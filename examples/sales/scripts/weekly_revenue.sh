#!/bin/sh
# sales/weekly_revenue: revenue per ISO week (Monday to Sunday), from the loaded orders.
#
# The asset is weekly and declares batch: {max_partitions: 8}, so Freshet calls this
# script once for up to 8 weeks at a time (a backfill of a year is 7 calls, not 52).
# The weeks come in FRESHET_PARTITION_KEYS (newline- or comma-separated Monday dates);
# without it, the script takes the weeks given as arguments, or FRESHET_PARTITION.
# Every input day is checked before anything is written, then each week's file is
# replaced atomically.
#
#   usage: sh scripts/weekly_revenue.sh MONDAY [MONDAY...]
#          FRESHET_PARTITION_KEYS="2026-01-05,2026-01-12" sh scripts/weekly_revenue.sh
#   reads:  $SALES_DATA_DIR/warehouse/orders/date=YYYY-MM-DD/part.csv (7 per week)
#   writes: $SALES_DATA_DIR/reports/weekly/week=YYYY-MM-DD/revenue.txt
set -eu

# Data root: everything this script reads and writes lives under it. Default: the
# current directory, which under Freshet is the definitions folder (examples/sales).
DATA_DIR=${SALES_DATA_DIR:-.}

. "$(dirname "$0")/lib/common.sh"

if [ -n "${FRESHET_PARTITION_KEYS:-}" ]; then
	WEEKS=$(split_keys "$FRESHET_PARTITION_KEYS")
elif [ $# -gt 0 ]; then
	WEEKS=$(printf '%s\n' "$@" | awk '$0 != "" && !seen[$0]++')
else
	WEEKS=${FRESHET_PARTITION:-}
fi
[ -n "$WEEKS" ] || die "no partition given; usage: sh scripts/$PROG MONDAY [MONDAY...] (or set FRESHET_PARTITION_KEYS / FRESHET_PARTITION)"

set -f # keys are split on white space below; never glob them
missing=
for W in $WEEKS; do
	is_date "$W" || die "bad partition key '$W': want the Monday of the week, YYYY-MM-DD"
	is_monday "$W" || die "bad partition key '$W': weekly partitions start on a Monday"
	for i in 0 1 2 3 4 5 6; do
		D=$(date_add "$W" "$i")
		[ -f "$(data_path "warehouse/orders/date=$D/part.csv")" ] || missing="$missing $D"
	done
done
[ -z "$missing" ] || die "missing input: loaded orders (materialize sales/orders_loaded first) for:$missing"

total_rows=0
nweeks=0
parts=
paths=
for W in $WEEKS; do
	REL="reports/weekly/week=$W/revenue.txt"
	OUT=$(data_path "$REL")
	DATES=
	set --
	for i in 0 1 2 3 4 5 6; do
		D=$(date_add "$W" "$i")
		DATES="$DATES $D"
		set -- "$@" "$(data_path "warehouse/orders/date=$D/part.csv")"
	done
	atomic_begin "$OUT"
	ROWS=$(awk -F, -v week="$W" -v dates="$DATES" -v out="$TMP" '
	function money(c) { return sprintf("%d.%02d", int(c / 100), c % 100) }
	BEGIN { for (i = 1; i < ARGC; i++) day[ARGV[i]] = i }
	FNR == 1 { next }
	{ f = day[FILENAME]; k = split($3, p, "."); n[f]++; s[f] += p[1] * 100 + (k > 1 ? p[2] : 0) }
	END {
		split(dates, d, " ")
		printf "Weekly revenue\n" > out
		printf "week:  %s .. %s\n\n", d[1], d[7] > out
		printf "%-12s %7s %14s\n", "date", "orders", "revenue_usd" > out
		for (i = 1; i <= 7; i++) {
			printf "%-12s %7d %14s\n", d[i], n[i], money(s[i]) > out
			tn += n[i]; ts += s[i]
		}
		printf "%-12s %7d %14s\n", "total", tn, money(ts) > out
		print tn
	}' "$@")
	atomic_commit "$OUT"
	log "week $W: $ROWS orders -> $OUT"

	total_rows=$((total_rows + ROWS))
	nweeks=$((nweeks + 1))
	[ -z "$parts" ] || parts="$parts, "
	parts="$parts\"$W\": {\"data_version\": \"$(data_version "$OUT")\", \"rows\": $ROWS, \"path\": $(json_str "$OUT")}"
	[ -z "$paths" ] || paths="$paths, "
	paths="$paths$(json_str "$OUT")"
	first=${first:-$OUT}
done

# One step, one data version: the cksum of all the batch's files in key order.
# Per-week versions are in metadata.partitions.
version=$(for W in $WEEKS; do cat "$(data_path "reports/weekly/week=$W/revenue.txt")"; done | cksum | awk '{ printf "%s-%s", $1, $2 }')
if [ "$nweeks" -eq 1 ]; then path=$first; else path=$(data_path reports/weekly); fi
emit_output "$version" \
	"\"rows\": $total_rows, \"weeks\": $nweeks, \"path\": $(json_str "$path"), \"paths\": [$paths], \"partitions\": {$parts}"
