#!/bin/sh
# sales/raw_orders: fetch one day of orders from the orders API.
#
# Stand-in for a real API client: it generates a deterministic CSV per date, seeded
# from the date with cksum, so the same date always yields the same bytes (and the
# same data version, so a re-fetch does not make anything downstream stale).
# Like a real feed it is a little messy: amounts come as "12.5", "$12.50" or " 12.50 ",
# one row per day is malformed and some days repeat an order (paging overlap);
# scripts/clean_orders.sh deals with all of that.
#
#   usage: sh scripts/fetch_orders.sh YYYY-MM-DD      (or set FRESHET_PARTITION)
#   writes: $SALES_DATA_DIR/data/raw/date=YYYY-MM-DD/orders.csv
#
# SALES_FETCH_FAIL_ATTEMPTS=N makes attempts 1..N (FRESHET_ATTEMPT) fail as if the
# API were down, to watch Freshet's retries.
set -eu

# Data root: everything this script writes lives under it. Default: the current
# directory, which under Freshet is the definitions folder (examples/sales).
DATA_DIR=${SALES_DATA_DIR:-.}

. "$(dirname "$0")/lib/common.sh"

DATE=$(daily_partition "$@")

attempt=${FRESHET_ATTEMPT:-1}
fail_attempts=${SALES_FETCH_FAIL_ATTEMPTS:-0}
case $attempt$fail_attempts in *[!0-9]*) die "FRESHET_ATTEMPT and SALES_FETCH_FAIL_ATTEMPTS must be integers" ;; esac
if [ "$attempt" -le "$fail_attempts" ]; then
	die "orders API unavailable (simulated: attempt $attempt of the first $fail_attempts fails)"
fi

REL="data/raw/date=$DATE/orders.csv"
OUT=$(data_path "$REL")

# Park-Miller generator seeded from the date; products stay below 2^53, so every
# POSIX awk computes the same numbers exactly (checked: mawk, gawk --posix).
SEED=$(printf 'sales:%s' "$DATE" | cksum | awk '{ print $1 }')

atomic_begin "$OUT"
awk -v date="$DATE" -v seed="$SEED" -v header="$ORDERS_HEADER" "$AWK_DATES"'
function rnd(n) { x = (x * 16807) % 2147483647; return x % n }
function stamp(d, t) { return sprintf("%sT%02d:%02d:%02dZ", d, int(t / 3600), int((t % 3600) / 60), t % 60) }
BEGIN {
	x = seed % 2147483646 + 1
	compact = date; gsub(/-/, "", compact)
	n = 20 + rnd(41)                     # 20..60 rows
	bad = 1 + rnd(n); badkind = rnd(3)   # the malformed row, and how it is broken
	dup = rnd(4) == 0 ? 1 + rnd(n) : 0   # a row the API sends twice, some days
	slot = int(86400 / n)                # row i is ordered inside the i-th slot of the day
	print header
	for (i = 1; i <= n; i++) {
		t = (i - 1) * slot + rnd(slot)
		id = sprintf("%s-%04d", compact, i)
		cust = sprintf("C%04d", 1 + rnd(400))
		cents = 500 + rnd(49501)         # 5.00 .. 500.00 USD
		amt = sprintf("%d.%02d", int(cents / 100), cents % 100)
		style = rnd(10)
		if (style == 0) amt = "$" amt
		else if (style == 1) amt = " " amt " "
		else if (style == 2) sub(/0$/, "", amt)
		line = id "," cust "," amt "," stamp(date, t)
		if (i == bad) {
			if (badkind == 0) line = id "," cust ",N/A," stamp(date, t)
			else if (badkind == 1) line = id "," cust "," amt
			else line = id "," cust "," amt "," stamp(civil(days(date) - 1), t)
		}
		print line
		if (i == dup) print line
	}
}' >"$TMP"
atomic_commit "$OUT"

ROWS=$(($(wc -l <"$OUT") - 1))
log "fetched $ROWS order lines for $DATE -> $OUT"
emit_output "$(data_version "$OUT")" "\"rows\": $ROWS, \"path\": $(json_str "$OUT")"
