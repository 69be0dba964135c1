# Shared helpers for the sales example's step scripts.
#
# POSIX sh; sourced by the scripts in scripts/, never run on its own. The sourcing
# script sets DATA_DIR (the root of everything it writes) before sourcing this file.
# Conventions every script follows:
#   - output is written per partition only (.../date=YYYY-MM-DD/...), to a temporary
#     file in the target folder that is then renamed over the target, so a re-run
#     replaces the partition instead of appending to it and readers never see half a file;
#   - progress goes to stdout, errors to stderr with a non-zero exit;
#   - when FRESHET_OUTPUT is set, the step writes
#       {"data_version": "...", "metadata": {...}}
#     into it (see DESIGN.md §4). The data version is the `cksum` of the output
#     ("<crc>-<bytes>"), so a rebuild with identical bytes reports an identical version.

PROG=$(basename "$0")
SCRIPT_DIR=$(dirname "$0")
ORDERS_HEADER='order_id,customer_id,amount_usd,ordered_at'

die() {
	printf '%s: error: %s\n' "$PROG" "$*" >&2
	exit 1
}

log() {
	printf '%s: %s\n' "$PROG" "$*"
}

# The temporary file being written, removed if the script exits before renaming it
# (an error, or SIGTERM when Freshet cancels the step).
TMP=
trap 'if [ -n "$TMP" ]; then rm -f "$TMP"; fi' EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# data_path REL: REL (a path under the data root) as seen from the working directory.
data_path() {
	case $DATA_DIR in
	. | ./ | '') printf '%s' "$1" ;;
	*) printf '%s/%s' "${DATA_DIR%/}" "$1" ;;
	esac
}

# require_file PATH WHAT: fail clearly if an input file is missing.
require_file() {
	[ -f "$1" ] || die "missing input: $2 not found at $1"
}

# atomic_begin TARGET: create TARGET's folder and set TMP to a temporary file beside it.
atomic_begin() {
	_dir=$(dirname "$1")
	mkdir -p "$_dir" || die "cannot create $_dir"
	TMP="$_dir/.$(basename "$1").tmp.$$"
	rm -f "$TMP"
}

# atomic_commit TARGET: rename TMP over TARGET (atomic within one file system).
atomic_commit() {
	mv -f "$TMP" "$1" || die "cannot move $TMP to $1"
	TMP=
}

# data_version FILE...: cksum of the files' concatenated bytes, as "<crc>-<bytes>".
data_version() {
	cat "$@" | cksum | awk '{ printf "%s-%s", $1, $2 }'
}

# json_str S: S as a JSON string literal.
json_str() {
	printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"
}

# emit_output VERSION MEMBERS: when FRESHET_OUTPUT is set, write the step's result
# there. MEMBERS is the inside of the metadata object, already formatted as JSON.
emit_output() {
	[ -n "${FRESHET_OUTPUT:-}" ] || return 0
	printf '{"data_version": "%s", "metadata": {%s}}\n' "$1" "$2" >"$FRESHET_OUTPUT" ||
		die "cannot write FRESHET_OUTPUT file $FRESHET_OUTPUT"
}

# Civil-date arithmetic for awk (no GNU `date -d` in POSIX): days since 1970-01-01.
AWK_DATES='
function days(s,   y, m, d, era, yoe, doy) {
	y = substr(s, 1, 4) + 0; m = substr(s, 6, 2) + 0; d = substr(s, 9, 2) + 0
	y -= (m <= 2)
	era = int((y >= 0 ? y : y - 399) / 400)
	yoe = y - era * 400
	doy = int((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1
	return era * 146097 + yoe * 365 + int(yoe / 4) - int(yoe / 100) + doy - 719468
}
function civil(z,   era, doe, yoe, y, doy, mp, d, m) {
	z += 719468
	era = int((z >= 0 ? z : z - 146096) / 146097)
	doe = z - era * 146097
	yoe = int((doe - int(doe / 1460) + int(doe / 36524) - int(doe / 146096)) / 365)
	y = yoe + era * 400
	doy = doe - (365 * yoe + int(yoe / 4) - int(yoe / 100))
	mp = int((5 * doy + 2) / 153)
	d = doy - int((153 * mp + 2) / 5) + 1
	m = mp + (mp < 10 ? 3 : -9)
	y += (m <= 2)
	return sprintf("%04d-%02d-%02d", y, m, d)
}
function valid(s) { return s ~ /^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]$/ && civil(days(s)) == s }
function weekday(s) { return ((days(s) % 7) + 10) % 7 + 1 }   # 1 = Monday .. 7 = Sunday
'

# is_date S: S is a real calendar date written YYYY-MM-DD.
is_date() {
	awk -v s="$1" "$AWK_DATES"'BEGIN { exit !valid(s) }'
}

# date_add DATE N: DATE plus N days.
date_add() {
	awk -v s="$1" -v n="$2" "$AWK_DATES"'BEGIN { print civil(days(s) + n) }'
}

# is_monday DATE
is_monday() {
	awk -v s="$1" "$AWK_DATES"'BEGIN { exit !(weekday(s) == 1) }'
}

# split_keys LIST: one partition key per line from a newline- or comma-separated
# list, blanks trimmed, empties and repeats dropped, order kept.
split_keys() {
	printf '%s\n' "$1" | tr ',' '\n' | awk '{ gsub(/^[ \t\r]+|[ \t\r]+$/, "") } $0 != "" && !seen[$0]++'
}

# daily_partition [ARG]: the one daily partition this step builds, from the script's
# argument (Freshet passes "{partition}"), FRESHET_PARTITION, FRESHET_PARTITION_KEYS
# or, last, the date of FRESHET_PARTITION_START. Prints it; fails on a bad or
# ambiguous key.
daily_partition() {
	_p=${1:-}
	if [ -n "${FRESHET_PARTITION:-}" ]; then
		if [ -z "$_p" ]; then
			_p=$FRESHET_PARTITION
		elif [ "$_p" != "$FRESHET_PARTITION" ]; then
			die "argument '$_p' and FRESHET_PARTITION '$FRESHET_PARTITION' disagree"
		fi
	fi
	if [ -n "${FRESHET_PARTITION_KEYS:-}" ]; then
		_n=$(split_keys "$FRESHET_PARTITION_KEYS" | wc -l)
		if [ "$_n" -gt 1 ]; then
			die "got a batch of $((_n)) partitions in FRESHET_PARTITION_KEYS; this script builds one partition per call (remove batch: from the asset)"
		fi
		[ -n "$_p" ] || _p=$(split_keys "$FRESHET_PARTITION_KEYS")
	fi
	if [ -z "$_p" ] && [ -n "${FRESHET_PARTITION_START:-}" ]; then
		_p=$(printf '%s' "$FRESHET_PARTITION_START" | cut -c1-10)
	fi
	[ -n "$_p" ] || die "no partition given; usage: sh scripts/$PROG YYYY-MM-DD (or set FRESHET_PARTITION)"
	is_date "$_p" || die "bad partition key '$_p': want a date YYYY-MM-DD"
	printf '%s\n' "$_p"
}

# rates_file: the exchange-rates CSV, an input shipped with the example (not under the
# data root): SALES_RATES_FILE, or data/exchange_rates.csv beside scripts/.
rates_file() {
	if [ -n "${SALES_RATES_FILE:-}" ]; then
		printf '%s\n' "$SALES_RATES_FILE"
		return
	fi
	_ex=$(cd "$SCRIPT_DIR/.." && pwd) || die "cannot find the example folder from $SCRIPT_DIR"
	if [ "$_ex" = "$(pwd)" ]; then
		printf '%s\n' data/exchange_rates.csv
	else
		printf '%s\n' "$_ex/data/exchange_rates.csv"
	fi
}
