#!/bin/sh
# The layout of fcgi/, checked on the objects the build made:
#   - no two files of fcgi/ each call into the other (a file's
#     undefined symbols against every other file's defined ones);
#   - bltcy-ctl links neither libfcgi nor libcurl.
# Prints one line per check and `layout: N passed, M failed`.
#
# Usage: tests/layout.sh [BUILD_DIR]

B=${1:-${BLTCY_BUILD:-build}}
pass=0
fail=0
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

ok() { echo "ok - $1"; pass=$((pass + 1)); }
notok() { echo "not ok - $1"; fail=$((fail + 1)); }

set -- "$B"/fcgi/*.o
if [ ! -e "$1" ]; then
	notok "objects of fcgi/ in $B/fcgi"
else
	for o in "$@"; do
		b=$(basename "$o" .o)
		nm "$o" | awk '$2 ~ /^[TDBRGSVW]$/ { print $3 }' | sort -u > "$tmp/$b.def"
		nm -u "$o" | awk '{ print $NF }' | sort -u > "$tmp/$b.und"
	done
	: > "$tmp/edges"
	for a in "$tmp"/*.und; do
		an=$(basename "$a" .und)
		for d in "$tmp"/*.def; do
			dn=$(basename "$d" .def)
			[ "$an" = "$dn" ] && continue
			[ -n "$(comm -12 "$a" "$d")" ] && echo "$an $dn" >> "$tmp/edges"
		done
	done
	cycles=$(while read -r x y; do
		if grep -qx "$y $x" "$tmp/edges" && [ "$x" \< "$y" ]; then
			echo "$x.c <-> $y.c"
		fi
	done < "$tmp/edges")
	if [ -z "$cycles" ]; then
		ok "no two files of fcgi/ call into each other ($(wc -l < "$tmp/edges") edges)"
	else
		notok "files of fcgi/ that call into each other: $(echo $cycles)"
	fi
fi

if [ ! -x "$B/bltcy-ctl" ]; then
	notok "$B/bltcy-ctl built"
elif ldd "$B/bltcy-ctl" | grep -Eq 'libfcgi|libcurl'; then
	notok "bltcy-ctl links $(ldd "$B/bltcy-ctl" | grep -Eo 'lib(fcgi|curl)[^ ]*' | tr '\n' ' ')"
else
	ok "bltcy-ctl links neither libfcgi nor libcurl"
fi

echo "layout: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
