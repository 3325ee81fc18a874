#!/usr/bin/env bash
# Writes greenrt(1) in man(7) format on stdout, generated from the
# launcher's own `--help` (so the page never drifts from the program):
#   scripts/manpage.sh path/to/greenrt VERSION
# The first line of --help becomes NAME; each "HEADING:" line starts a
# section; the text under it is kept as preformatted lines.
set -euo pipefail
bin=$1
version=$2
help=$("$bin" --help)
date=$(date -u -d "@${SOURCE_DATE_EPOCH:-$(date +%s)}" +%Y-%m-%d)
printf '.TH GREENRT 1 "%s" "greenrt %s" "User Commands"\n' "$date" "$version"
printf '%s\n' "$help" | awk '
    function esc(s) { gsub(/\\/, "\\e", s); sub(/^[.'"'"']/, "\\\\\\&&", s); gsub(/-/, "\\-", s); return s }
    NR == 1 {
        # "greenrt — what it does"
        sub(/^greenrt[[:space:]]*(—|-)+[[:space:]]*/, "")
        print ".SH NAME"; print "greenrt \\- " esc($0)
        next
    }
    /^[A-Z][A-Z ()]*:[[:space:]]*$/ || /^[A-Z][A-Z ]*\(/ {
        if (open) print ".fi"
        h = $0; sub(/:[[:space:]]*$/, "", h); sub(/[[:space:]]*\(.*$/, "", h)
        if (h == "USAGE") h = "SYNOPSIS"
        print ".SH " h
        if ($0 ~ /\(/) { n = $0; sub(/^[^(]*\(/, "(", n); sub(/:[[:space:]]*$/, "", n); print esc(n) }
        print ".nf"; open = 1
        next
    }
    /^[[:space:]]*$/ { if (open) print ""; next }
    { line = $0; sub(/^    /, "", line); print esc(line) }
    END { if (open) print ".fi"; print ".SH SEE ALSO"; print "The README of greenrt, and include/greenrt.h for the C API." }
'
