#!/usr/bin/env bash
# Faults (docs/robustness.md) on a small synthetic set (tests/make_idx.c): kill -9 at random
# moments leaves a loadable newest checkpoint and nothing that passes for a checkpoint but is
# not one, and resuming after each kill ends with the same weights as a run never killed; a
# checkpoint that cannot be written (file-size limit, a directory in the way, an output path
# under a file) is an error naming the file that keeps the previous checkpoint; a diverging
# run stops with exit status 3, naming the epoch and batch, and keeps the last good checkpoint.
# Usage: cli_faults.sh LENET_OMP MAKE_IDX TESTS_DIR
set -euo pipefail
bin=$(realpath "$1") make_idx=$(realpath "$2")
source "$(dirname "$0")/lib.sh"
quiet() { "$@" > /dev/null; } # for check: a command's output, not check's, to /dev/null
# The tensor data of a safetensors file (what follows the 8-byte length and the header), so
# that checkpoints whose stored configs differ (another train.epochs) compare their weights.
data_of() { tail -c +$(($(od -An -tu8 -N8 "$1" | tr -d ' ') + 9)) "$1"; }
same_data() { cmp -s <(data_of "$1") <(data_of "$2"); }

"$make_idx" "$tmp" 6000 100 7
small_config "$tmp/many.cfg" many 5 '{ epochs = 60; batch_size = 5; momentum = 0.5;
          schedule = ( { epochs = 20; lr = 0.02; }, { epochs = 40; lr = 0.005; } ); }'
run=$tmp/run # every run uses this --output, so the stored config texts are the same
"$bin" --output "$run" "$tmp/many.cfg" > /dev/null
mv "$run" "$tmp/ref"

# kill -9 at random moments (20 times, 0.05-0.6 s after each start), resuming each time. The
# run takes long enough (60 short epochs, each writing a checkpoint) for most kills to land.
kills=0 leftovers=0 bad=0 started=$SECONDS
for i in $(seq 20); do
    "$bin" --resume --output "$run" "$tmp/many.cfg" > /dev/null 2>&1 &
    pid=$!
    sleep "0.$(printf '%02d' $((RANDOM % 56 + 5)))"
    if kill -9 $pid 2> /dev/null; then kills=$((kills + 1)); fi
    wait $pid 2> /dev/null || true
    [ -n "$(find "$run" -name '*.tmp.*' 2> /dev/null)" ] && leftovers=$((leftovers + 1))
    # Everything named like a checkpoint is one.
    for f in "$run"/epoch-*.safetensors "$run"/interrupted.safetensors; do
        [ -e "$f" ] || continue
        "$bin" info "$f" > /dev/null 2>&1 || { echo "  not loadable after kill $i: $f"; bad=$((bad + 1)); }
    done
    newest=$(ls "$run"/epoch-*.safetensors 2> /dev/null | sort | tail -n 1 || true)
    if [ -n "$newest" ]; then
        "$bin" test "$newest" > /dev/null 2>&1 || { echo "  newest not testable: $newest"; bad=$((bad + 1)); }
    fi
done
echo "     ($kills kills in $((SECONDS - started)) s; temporary files left by $leftovers of them)"
check "kill -9 x20: at least 10 kills landed while training" test "$kills" -ge 10
check "kill -9 x20: every file named as a checkpoint loads, the newest is testable" \
    test "$bad" -eq 0
"$bin" --resume --output "$run" "$tmp/many.cfg" > "$tmp/final.out"
check "kill -9 x20: the resumed run completes" test -e "$run/epoch-60.safetensors"
check "kill -9 x20: temporary files cleaned up" test -z "$(find "$run" -name '*.tmp.*')"
check "kill -9 x20: metrics.csv lists every epoch" test "$(wc -l < "$run/metrics.csv")" -eq 61
check "kill -9 x20: the same results and best epoch as the run never killed" \
    test "$(cut -d, -f1-5 "$run/metrics.csv")" = "$(cut -d, -f1-5 "$tmp/ref/metrics.csv")" -a \
         "$(readlink "$run/best.safetensors")" = "$(readlink "$tmp/ref/best.safetensors")"
same=0
for f in "$tmp"/ref/epoch-*.safetensors; do
    cmp -s "$f" "$run/$(basename "$f")" || { echo "  differs: $(basename "$f")"; same=1; }
done
check "kill -9 x20: every checkpoint identical to the run never killed" test "$same" -eq 0

# A file-size limit (ulimit -f, KiB): the checkpoint's write fails with EFBIG (SIGXFSZ is
# ignored, so it does not kill the process), the error names the file, the previous
# checkpoint stays as it was.
rm -rf "$run"
"$bin" --epochs 1 --output "$run" "$tmp/many.cfg" > /dev/null
cp "$run/epoch-01.safetensors" "$tmp/epoch-01.copy"
status=0
(ulimit -f 8; exec "$bin" --resume --epochs 2 --output "$run" "$tmp/many.cfg" \
    > /dev/null 2> "$tmp/fsize.err") || status=$?
check "file-size limit: exit status 2 (not killed by SIGXFSZ: $status)" test "$status" -eq 2
check "file-size limit: the error names the checkpoint" \
    grep -q "^lenet-omp: $run/epoch-02.safetensors: cannot write: File too large" "$tmp/fsize.err"
check "file-size limit: the previous checkpoint is intact" \
    cmp -s "$tmp/epoch-01.copy" "$run/epoch-01.safetensors"
check "file-size limit: no partial checkpoint, no temporary file" \
    test ! -e "$run/epoch-02.safetensors" -a -z "$(find "$run" -name '*.tmp.*')"
check "file-size limit: the previous checkpoint still loads" \
    quiet "$bin" info "$run/epoch-01.safetensors"

# A directory where the checkpoint goes: the rename fails, the error names the file.
mkdir "$run/epoch-02.safetensors"
status=0
"$bin" --resume --epochs 2 --output "$run" "$tmp/many.cfg" > /dev/null 2> "$tmp/dir.err" ||
    status=$?
check "cannot rename: exit status 2" test "$status" -eq 2
check "cannot rename: the error names the checkpoint" \
    grep -q "^lenet-omp: $run/epoch-02.safetensors: cannot write: " "$tmp/dir.err"
check "cannot rename: the previous checkpoint is intact" \
    cmp -s "$tmp/epoch-01.copy" "$run/epoch-01.safetensors"
rmdir "$run/epoch-02.safetensors"
"$bin" --resume --epochs 2 --output "$run" "$tmp/many.cfg" > /dev/null
check "after the failures, resuming works (the same weights as the run never stopped)" \
    same_data "$tmp/ref/epoch-02.safetensors" "$run/epoch-02.safetensors"

# An output directory that cannot be created (its parent is a file; root ignores modes).
touch "$tmp/plain"
status=0
"$bin" --output "$tmp/plain/run" "$tmp/many.cfg" > /dev/null 2> "$tmp/create.err" || status=$?
check "cannot create the run directory: exit status 2" test "$status" -eq 2
check "cannot create the run directory: the error names it" \
    grep -q "^lenet-omp: $tmp/plain/run: cannot create directory: Not a directory" "$tmp/create.err"

# Divergence: a learning rate of 1e6 from epoch 2 on.
sed 's/schedule = .*/schedule = ( { epochs = 1; lr = 0.02; }, { epochs = 59; lr = 1e6; } ); };/' \
    "$tmp/many.cfg" > "$tmp/diverge.cfg"
rm -rf "$run"
status=0
"$bin" --output "$run" "$tmp/diverge.cfg" > /dev/null 2> "$tmp/diverge.err" || status=$?
check "divergence: exit status 3" test "$status" -eq 3
check "divergence: the message names the epoch and batch and suggests a lower rate" \
    grep -q "^lenet-omp: training diverged in epoch 2 at batch [0-9]* of 1200: the loss is .*try a lower one" \
    "$tmp/diverge.err"
check "divergence: the message names the last good checkpoint" \
    grep -q "The last good checkpoint is $run/epoch-01.safetensors" "$tmp/diverge.err"
check "divergence: train.log has the message too" grep -q 'training diverged' "$run/train.log"
check "divergence: nothing saved after the last good checkpoint" \
    test "$(ls "$run" | grep -c safetensors)" -eq 2 -a ! -e "$run/epoch-02.safetensors"
check "divergence: the last good checkpoint is epoch 1's" \
    same_data "$tmp/ref/epoch-01.safetensors" "$run/epoch-01.safetensors"

echo "$fails failed"
[ "$fails" -eq 0 ]
