#!/usr/bin/env bash
# End-to-end training on a small synthetic set (tests/make_idx.c): the run directory's files,
# bitwise-identical checkpoints for 1 and 2 threads, and `lenet-omp test` reproducing the
# trainer's error count for the best checkpoint.
# Usage: cli_train.sh LENET_OMP MAKE_IDX TESTS_DIR
set -euo pipefail
bin=$(realpath "$1") make_idx=$(realpath "$2")
source "$(dirname "$0")/lib.sh"

"$make_idx" "$tmp" 600 200 7
small_config "$tmp/small.cfg" small 3 '{ epochs = 3; batch_size = 7;
          schedule = ( { epochs = 2; lr = 0.05; }, { epochs = 1; lr = 0.01; } ); }'

# The thread count comes from the environment, so both runs save the same config text into
# the same directory name, and their checkpoints must match byte for byte.
OMP_NUM_THREADS=1 "$bin" --output "$tmp/run" "$tmp/small.cfg" > "$tmp/one.out"
mv "$tmp/run" "$tmp/one"
OMP_NUM_THREADS=2 "$bin" --output "$tmp/run" "$tmp/small.cfg" > "$tmp/two.out"
mv "$tmp/run" "$tmp/two"
check "the runs used 1 and 2 threads" grep -q ', 2 threads$' "$tmp/two.out"

for f in config.cfg train.log metrics.csv epoch-01.safetensors epoch-03.safetensors \
         best.safetensors; do
    check "run directory has $f" test -e "$tmp/one/$f"
done
check "no temporary files left" test -z "$(find "$tmp/one" -name '*.tmp.*')"
check "metrics.csv has a header and 3 epochs" test "$(wc -l < "$tmp/one/metrics.csv")" -eq 4
check "log follows the seed's format" grep -q '^0/1 error(s) of testing set: [0-9]* / 200$' \
    "$tmp/one.out"
check "train.log holds the epoch lines" grep -q '^---------- epoch 3 end' "$tmp/one/train.log"
check "no carriage returns when stdout is not a terminal" \
    bash -c "! grep -q \$'\\r' '$tmp/one.out'"
for e in 01 02 03; do
    check "epoch $e identical with 1 and 2 threads" \
        cmp -s "$tmp/one/epoch-$e.safetensors" "$tmp/two/epoch-$e.safetensors"
done
check "the run learned (test errors of the last epoch below 20%)" \
    test "$(tail -n 1 "$tmp/one/metrics.csv" | cut -d, -f5)" -lt 40

# `test` on the best checkpoint reproduces the trainer's count for that epoch.
best=$(readlink "$tmp/one/best.safetensors")
epoch=$((10#$(echo "$best" | sed 's/epoch-0*\([0-9]*\).safetensors/\1/')))
trained=$(awk -F, -v e="$epoch" '$1 == e { print $5 }' "$tmp/one/metrics.csv")
fewest=$(tail -n +2 "$tmp/one/metrics.csv" | cut -d, -f5 | sort -n | head -n 1)
check "best.safetensors points at the epoch with the fewest test errors" \
    test "$trained" -eq "$fewest"
"$bin" test "$tmp/one/best.safetensors" > "$tmp/test.out"
check "lenet-omp test reproduces the trainer's count ($trained)" \
    grep -q "^0/1 error(s) of testing set: $trained / 200\$" "$tmp/test.out"
check "the end-of-run retest agrees" grep -q "^error rate: " "$tmp/one.out"

# Overrides land in the saved, effective config.
"$bin" --epochs 1 --set train.batch_size=5 --output "$tmp/over" "$tmp/small.cfg" > /dev/null
check "--set is saved in the run's config" grep -q 'batch_size = 5' "$tmp/over/config.cfg"
check "--epochs 1 trains one epoch" test "$(wc -l < "$tmp/over/metrics.csv")" -eq 2

echo "$fails failed"
[ "$fails" -eq 0 ]
