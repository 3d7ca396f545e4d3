#!/usr/bin/env bash
# `lenet-omp check` validates without training and reports exactly what training would;
# `lenet-omp info` shows what a checkpoint holds.
# Usage: cli_check_info.sh LENET_OMP MAKE_IDX TESTS_DIR
set -euo pipefail
bin=$(realpath "$1") make_idx=$(realpath "$2") tests=$(realpath "$3")
source "$(dirname "$0")/lib.sh"

"$make_idx" "$tmp" 300 100 5
data="data = { train_images = \"$tmp/train-images.idx\"; train_labels = \"$tmp/train-labels.idx\";
               test_images = \"$tmp/test-images.idx\"; test_labels = \"$tmp/test-labels.idx\"; };"
cat > "$tmp/small.cfg" <<CFG
name = "small";
$data
output_dir = "$tmp/run";
layers = ( { type = "conv"; name = "C1"; filters = 4; kernel = 5; stride = 2; },
           { type = "relu"; }, { type = "dense"; name = "F"; units = 10; },
           { type = "softmax_xent"; } );
train = { epochs = 5; batch_size = 10; momentum = 0.5;
          schedule = ( { epochs = 2; lr = 0.05; }, { epochs = 3; lr = 0.01; } ); };
CFG

"$bin" check "$tmp/small.cfg" > "$tmp/check.out"
check "check says ok" grep -q "^$tmp/small.cfg: ok (run 'small'" "$tmp/check.out"
check "check prints the shape table" grep -q '^1 *C1 *conv *4x14x14 *104$' "$tmp/check.out"
check "check prints the parameter count" grep -q '^total parameters: 7954 ' "$tmp/check.out"
check "check prints the memory" grep -q '^memory: [0-9.]* MiB (arenas' "$tmp/check.out"
check "check prints the schedule" grep -q '^  epochs   3-5  *lr 0.01$' "$tmp/check.out"
check "check trains nothing" test ! -e "$tmp/run"
"$bin" check --set train.epochs=1 "$tmp/small.cfg" > "$tmp/check1.out"
check "check applies overrides" grep -q '^learning-rate table (1 epochs' "$tmp/check1.out"

# On bad input, check fails with the same message and status as training.
for bad in "$tests"/configs/bad_unknown_kind.cfg "$tests"/configs/bad_kernel_too_big.cfg; do
    set +e
    "$bin" check "$bad" > /dev/null 2> "$tmp/check.err"; s1=$?
    "$bin" --output "$tmp/never" "$bad" > /dev/null 2> "$tmp/train.err"; s2=$?
    set -e
    check "check on $(basename "$bad") exits 2" test "$s1" -eq 2
    check "check on $(basename "$bad") says what training says" cmp -s "$tmp/check.err" "$tmp/train.err"
done
set +e
"$bin" check --set data.test_labels=\"/nonexistent\" "$tmp/small.cfg" 2> "$tmp/data.err"; s=$?
set -e
check "check reads the data files too" test "$s" -eq 2
check "check names the missing data file" grep -q '/nonexistent' "$tmp/data.err"

"$bin" --epochs 2 "$tmp/small.cfg" > /dev/null
"$bin" info "$tmp/run/epoch-02.safetensors" > "$tmp/info.out"
errors=$(awk -F, '$1 == 2 { print $5 }' "$tmp/run/metrics.csv")
check "info prints the run and epoch" grep -q '^epoch: 2 of 2, learning rate 0.05$' "$tmp/info.out"
check "info prints the test errors of metrics.csv" \
    grep -q "^0/1 error(s) of testing set: $errors / 100 " "$tmp/info.out"
check "info prints the stored config" grep -q 'momentum = 0.5' "$tmp/info.out"
set +e
"$bin" info "$tmp/small.cfg" > /dev/null 2>&1; s=$?
set -e
check "info on a config file exits 2" test "$s" -eq 2

echo "$fails failed"
[ "$fails" -eq 0 ]
