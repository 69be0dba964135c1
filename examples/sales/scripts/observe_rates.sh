#!/bin/sh
# sales/exchange_rates (source asset): observe the exchange-rates file.
#
# Freshet cannot build a source; it observes it. This prints the file's data version,
# its cksum as "<crc>-<bytes>", on stdout and nothing else. When the file changes the
# version changes, and sales/daily_report becomes stale (UPSTREAM_CHANGED).
#
#   usage: sh scripts/observe_rates.sh
#   reads: data/exchange_rates.csv beside scripts/ (or SALES_RATES_FILE)
set -eu

. "$(dirname "$0")/lib/common.sh"

RATES=$(rates_file)
require_file "$RATES" "exchange rates"
VERSION=$(data_version "$RATES")
ROWS=$(($(wc -l <"$RATES") - 1))

printf '%s\n' "$VERSION"
emit_output "$VERSION" "\"rows\": $ROWS, \"path\": $(json_str "$RATES")"
