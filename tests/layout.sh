#!/bin/sh
# The layout of the programs' folders, checked on the objects the build
# made:
#   - no two files of fcgi/ each call into the other, nor two of
#     admin-cgi/ (ctl.c, bltcy-ctl, among them): a file's undefined
#     symbols against every other file's defined ones;
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

# no_loops DIR: no two objects in $B/DIR call into each other.
no_loops() {
	d=$1
	set -- "$B/$d"/*.o
	if [ ! -e "$1" ]; then
		notok "objects of $d/ in $B/$d"
		return
	fi
	rm -rf "$tmp/$d"
	mkdir -p "$tmp/$d"
	for o in "$@"; do
		b=$(basename "$o" .o)
		nm "$o" | awk '$2 ~ /^[TDBRGSVW]$/ { print $3 }' | sort -u > "$tmp/$d/$b.def"
		nm -u "$o" | awk '{ print $NF }' | sort -u > "$tmp/$d/$b.und"
	done
	: > "$tmp/$d.edges"
	for a in "$tmp/$d"/*.und; do
		an=$(basename "$a" .und)
		for def in "$tmp/$d"/*.def; do
			dn=$(basename "$def" .def)
			[ "$an" = "$dn" ] && continue
			[ -n "$(comm -12 "$a" "$def")" ] && echo "$an $dn" >> "$tmp/$d.edges"
		done
	done
	cycles=$(while read -r x y; do
		if grep -qx "$y $x" "$tmp/$d.edges" && [ "$x" \< "$y" ]; then
			echo "$x.c <-> $y.c"
		fi
	done < "$tmp/$d.edges")
	if [ -z "$cycles" ]; then
		ok "no two files of $d/ call into each other ($(wc -l < "$tmp/$d.edges") edges)"
	else
		notok "files of $d/ that call into each other: $(echo $cycles)"
	fi
}

no_loops fcgi
no_loops admin-cgi

if [ ! -x "$B/bltcy-ctl" ]; then
	notok "$B/bltcy-ctl built"
elif ldd "$B/bltcy-ctl" | grep -Eq 'libfcgi|libcurl'; then
	notok "bltcy-ctl links $(ldd "$B/bltcy-ctl" | grep -Eo 'lib(fcgi|curl)[^ ]*' | tr '\n' ' ')"
else
	ok "bltcy-ctl links neither libfcgi nor libcurl"
fi

echo "layout: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
