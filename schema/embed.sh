#!/bin/sh
# Turns the ordered migration files into a C table: { version, sql }.
# Usage: embed.sh schema/001_x.sql schema/002_y.sql ... > migrations.h
echo '/* Generated from the schema migrations by schema/embed.sh. Do not edit. */'
echo 'static const struct migration { const char *version; const char *sql; } migrations[] = {'
for f in "$@"; do
	v=$(basename "$f" .sql)
	printf '\t{ "%s",\n' "$v"
	sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/\t  "/' -e 's/$/\\n"/' "$f"
	printf '\t},\n'
done
echo '};'
