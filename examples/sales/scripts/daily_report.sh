#!/bin/sh
# sales/daily_report: the daily sales report, in USD and EUR.
#
# Reads one day of loaded orders and the exchange rates (the source asset
# sales/exchange_rates) and writes a small text report: order count, distinct
# customers, revenue in USD and in EUR, average and largest order. Money is summed in
# integer cents, so the figures are exact and the bytes reproducible.
#
#   usage: sh scripts/daily_report.sh YYYY-MM-DD      (or set FRESHET_PARTITION)
#   reads:  $SALES_DATA_DIR/warehouse/orders/date=YYYY-MM-DD/part.csv
#           data/exchange_rates.csv beside scripts/ (or SALES_RATES_FILE)
#   writes: $SALES_DATA_DIR/reports/daily/date=YYYY-MM-DD/report.txt
set -eu

# Data root: everything this script reads and writes lives under it (except the
# exchange rates, an input shipped with the example). Default: the current directory,
# which under Freshet is the definitions folder (examples/sales).
DATA_DIR=${SALES_DATA_DIR:-.}

. "$(dirname "$0")/lib/common.sh"

DATE=$(daily_partition "$@")
IN=$(data_path "warehouse/orders/date=$DATE/part.csv")
RATES=$(rates_file)
OUT=$(data_path "reports/daily/date=$DATE/report.txt")
require_file "$IN" "loaded orders for $DATE (materialize sales/orders_loaded $DATE first)"
require_file "$RATES" "exchange rates (source sales/exchange_rates)"

# units of EUR per 1 USD
EUR=$(awk -F, '{ sub(/\r$/, "") } $1 == "EUR" { print $2; exit }' "$RATES")
case $EUR in
'' | *[!0-9.]* | *.*.* | .* | 0[0-9]*) die "$RATES: no usable EUR rate (want a line like EUR,0.9150)" ;;
esac

atomic_begin "$OUT"
# Prints "orders usd eur" for the metadata after writing the report to TMP.
SUMMARY=$(awk -F, -v date="$DATE" -v rate="$EUR" -v out="$TMP" '
function cents(a,   p, k) { k = split(a, p, "."); return p[1] * 100 + (k > 1 ? p[2] : 0) }
function money(c) { return sprintf("%d.%02d", int(c / 100), c % 100) }
NR == 1 { next }
{
	c = cents($3)
	orders++; total += c
	if (!($2 in cust)) { cust[$2] = 1; customers++ }
	if (orders == 1 || c > maxc) { maxc = c; maxid = $1 }
}
END {
	eur = int(total * rate + 0.5)
	avg = orders ? int(total / orders + 0.5) : 0
	printf "Daily sales report\n" > out
	printf "date:            %s\n", date > out
	printf "orders:          %d\n", orders > out
	printf "customers:       %d\n", customers > out
	printf "revenue (USD):   %s\n", money(total) > out
	printf "revenue (EUR):   %s   (1 USD = %s EUR)\n", money(eur), rate > out
	printf "average order:   %s USD\n", money(avg) > out
	if (orders) printf "largest order:   %s, %s USD\n", maxid, money(maxc) > out
	else printf "largest order:   none\n" > out
	printf "%d %s %s\n", orders, money(total), money(eur)
}' "$IN")
atomic_commit "$OUT"

set -- $SUMMARY
log "$DATE: $1 orders, $2 USD, $3 EUR -> $OUT"
emit_output "$(data_version "$OUT")" \
	"\"rows\": $1, \"revenue_usd\": $2, \"revenue_eur\": $3, \"eur_per_usd\": $EUR, \"path\": $(json_str "$OUT")"
