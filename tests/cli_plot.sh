#!/usr/bin/env bash
# Plots end to end on a small synthetic set (tests/make_idx.c): training keeps
# RUN_DIR/errors.svg up to date, `lenet-omp plot` draws several runs into one SVG, every SVG
# passes xmllint, and bad run directories get exit status 2 naming the file.
# xmllint (Debian: libxml2-utils) is required when CI is set; otherwise its absence skips (77).
# Usage: cli_plot.sh LENET_OMP MAKE_IDX TESTS_DIR
set -euo pipefail
bin=$(realpath "$1") make_idx=$(realpath "$2")
if ! command -v xmllint > /dev/null; then
    echo "xmllint not found (Debian package libxml2-utils)"
    [ -n "${CI:-}" ] && exit 1
    exit 77
fi
source "$(dirname "$0")/lib.sh"

"$make_idx" "$tmp" 300 100 5
small_config "$tmp/small.cfg" small 3 '{ epochs = 3; batch_size = 7;
          schedule = ( { epochs = 2; lr = 0.05; }, { epochs = 1; lr = 0.01; } ); }'

"$bin" --output "$tmp/runs/seed3" "$tmp/small.cfg" > /dev/null
"$bin" --output "$tmp/runs/seed4" --set seed=4 --set train.batch_size=5 "$tmp/small.cfg" \
    > /dev/null

svg=$tmp/runs/seed3/errors.svg
check "training wrote errors.svg" test -s "$svg"
check "errors.svg is well-formed XML" xmllint --noout "$svg"
check "errors.svg is an SVG" grep -q '<svg xmlns="http://www.w3.org/2000/svg"' "$svg"
check "errors.svg is titled with the run's name" grep -q '>small</tspan>' "$svg"
best=$(tail -n +2 "$tmp/runs/seed3/metrics.csv" | sort -t, -k5,5n -k1,1n | head -n 1 | cut -d, -f1)
check "errors.svg marks the best epoch ($best)" grep -q ">best: epoch $best, " "$svg"
check "no temporary files left" test -z "$(find "$tmp/runs" -name '*.tmp.*')"

# Several runs into one figure.
out=$("$bin" plot -o "$tmp/cmp.svg" "$tmp/runs/seed3" "$tmp/runs/seed4")
check "plot prints the path it wrote" test "$out" = "$tmp/cmp.svg"
check "the comparison is well-formed XML" xmllint --noout "$tmp/cmp.svg"
check "the legend names run seed3" grep -q '>seed3</text>' "$tmp/cmp.svg"
check "the legend names run seed4" grep -q '>seed4</text>' "$tmp/cmp.svg"
check "the title counts the runs" grep -q '>2 runs</tspan>' "$tmp/cmp.svg"

# Without -o: one run redraws RUN_DIR/errors.svg; several write compare.svg here.
rm "$svg"
check "plot RUN_DIR redraws its errors.svg" \
    test "$("$bin" plot "$tmp/runs/seed3")" = "$tmp/runs/seed3/errors.svg"
check "the redrawn errors.svg is well-formed XML" xmllint --noout "$svg"
(cd "$tmp" && "$bin" plot runs/seed3 runs/seed4/ > /dev/null)
check "plot RUN_DIR RUN_DIR writes compare.svg" xmllint --noout "$tmp/compare.svg"

# Bad input: exit status 2 and a message naming the file.
expect_fail() { # expect_fail DESCRIPTION PATTERN ARGS...
    local status=0
    "$bin" "${@:3}" > /dev/null 2> "$tmp/err" || status=$?
    if [ "$status" -eq 2 ] && grep -q "$2" "$tmp/err"; then
        echo "ok   $1"
    else
        echo "FAIL $1 (status $status: $(cat "$tmp/err"))"
        fails=$((fails + 1))
    fi
}
expect_fail "a missing run directory" "^lenet-omp: $tmp/nope/metrics.csv: cannot open" \
    plot -o "$tmp/x.svg" "$tmp/runs/seed3" "$tmp/nope"
check "a failed plot writes nothing" test ! -e "$tmp/x.svg"
mkdir "$tmp/broken"
printf 'epoch,lr,cost,train_errors,test_errors,seconds\n1,0.1,5,zz,1,1\n' \
    > "$tmp/broken/metrics.csv"
expect_fail "a malformed metrics.csv" "broken/metrics.csv:2: train_errors" plot "$tmp/broken"
expect_fail "plot without a run" "RUN_DIR" plot
expect_fail "an unwritable output" "$tmp/no/dir/x.svg" plot -o "$tmp/no/dir/x.svg" \
    "$tmp/runs/seed3"

echo "$fails failed"
[ "$fails" -eq 0 ]
