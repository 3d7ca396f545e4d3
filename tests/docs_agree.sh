#!/usr/bin/env bash
# The documentation agrees with the code: every command and every long option that --help
# lists appears in the man page, and every option in README's table and the man page is one
# that --help lists.
# Usage: docs_agree.sh LENET_OMP SOURCE_ROOT
set -euo pipefail
bin=$1 root=$2
man=$root/docs/lenet-omp.1
fails=0
help=$("$bin" --help)
# groff escapes '-' as '\-' in the man page source.
man_text=$(sed 's/\\-/-/g; s/\\f[BIRP]//g' "$man")

for opt in $(grep -o -- '--[a-z][a-z-]*' <<< "$help" | sort -u); do
    grep -q -- "$opt" <<< "$man_text" || { echo "FAIL: --help lists $opt, the man page does not"; fails=$((fails + 1)); }
done
for cmd in $(sed -n 's/^  lenet-omp \([a-z]*\) .*/\1/p' <<< "$help"); do
    grep -q "lenet-omp $cmd" <<< "$man_text" || { echo "FAIL: command $cmd is missing from the man page"; fails=$((fails + 1)); }
    grep -q "lenet-omp $cmd" "$root/README.md" || { echo "FAIL: command $cmd is missing from README.md"; fails=$((fails + 1)); }
done
for opt in $(grep -o -- '--[a-z][a-z-]*' <<< "$man_text" | sort -u) \
           $(grep -o -- '`-[a-zA-Z], --[a-z-]*' "$root/README.md" | grep -o -- '--[a-z-]*' | sort -u); do
    grep -q -- "$opt" <<< "$help" || { echo "FAIL: $opt is documented but --help does not list it"; fails=$((fails + 1)); }
done
echo "$fails failed"
[ "$fails" -eq 0 ]
