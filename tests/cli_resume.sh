#!/usr/bin/env bash
# Stopping and resuming (docs/robustness.md) on a small synthetic set (tests/make_idx.c): a run
# stopped by SIGINT in the middle of an epoch and resumed ends with the same checkpoints, byte
# for byte, as the run left alone (with momentum, so the optimiser state must travel too); the
# same for SIGTERM and `--resume CONFIG`; a second signal ends the process at once without
# writing; a different config, a corrupt checkpoint and a finished run are handled; temporary
# files of killed runs are cleaned up; a shorter run extended with a larger train.epochs.
# Usage: cli_resume.sh LENET_OMP MAKE_IDX TESTS_DIR
set -euo pipefail
bin=$(realpath "$1") make_idx=$(realpath "$2")
source "$(dirname "$0")/lib.sh"
quiet() { "$@" > /dev/null; } # for check: a command's output, not check's, to /dev/null

"$make_idx" "$tmp" 48000 200 7
small_config "$tmp/small.cfg" small 3 '{ epochs = 3; batch_size = 7; momentum = 0.9;
          schedule = ( { epochs = 2; lr = 0.01; }, { epochs = 1; lr = 0.002; } ); }'
run=$tmp/run # every run uses this --output, so the stored config texts are the same

# The reference: the run left alone (1 thread; the stopped runs use 2).
OMP_NUM_THREADS=1 "$bin" --output "$run" "$tmp/small.cfg" > "$tmp/ref.out"
mv "$run" "$tmp/ref"

# SIGINT in the middle of epoch 2 (retried if it lands at an epoch's end), then `resume`.
for attempt in 1 2 3 4 5; do
    rm -rf "$run"
    OMP_NUM_THREADS=2 "$bin" --output "$run" "$tmp/small.cfg" > "$tmp/int.out" 2>&1 &
    pid=$!
    wait_for "$run/epoch-01.safetensors"
    sleep 0.$((RANDOM % 3 + 1))
    kill -INT $pid || true # (ended already: a failed attempt)
    status=0
    wait $pid || status=$?
    grep -q '^lenet-omp: SIGINT: stopped in epoch' "$tmp/int.out" && break
done
check "SIGINT exits with status 130" test "$status" -eq 130
check "SIGINT stopped mid-epoch and saved interrupted.safetensors" \
    grep -q "^lenet-omp: SIGINT: stopped in epoch [0-9]* after batch [0-9]* of 6858, saved $run/interrupted.safetensors" "$tmp/int.out"
check "the message says how to resume" grep -q "^resume with: lenet-omp resume $run\$" \
    "$tmp/int.out"
check "no temporary files after SIGINT" test -z "$(find "$run" -name '*.tmp.*')"
check "lenet-omp info reads the mid-epoch checkpoint" \
    quiet "$bin" info "$run/interrupted.safetensors"
check "lenet-omp test reads the mid-epoch checkpoint" \
    quiet "$bin" test "$run/interrupted.safetensors"
stopped_at=$(sed -n 's/^lenet-omp: SIGINT: stopped in epoch \([0-9]*\) after.*/\1/p' "$tmp/int.out")
OMP_NUM_THREADS=2 "$bin" resume "$run" > "$tmp/resume.out"
check "resume starts from the mid-epoch checkpoint" \
    grep -q "^resume: from $run/interrupted.safetensors (epoch $stopped_at, after batch" \
    "$tmp/resume.out"
check "SIGINT + resume: every checkpoint identical to the run left alone" same_run "$tmp/ref" "$run"
check "SIGINT + resume: the same total cost of the stopped epoch" \
    test "$(grep "total cost of epoch $stopped_at:" "$tmp/resume.out")" = \
         "$(grep "total cost of epoch $stopped_at:" "$tmp/ref.out")"
check "SIGINT + resume: the same metrics.csv (but timings)" \
    test "$(results "$run")" = "$(results "$tmp/ref")"
check "SIGINT + resume: the same best link" \
    test "$(readlink "$run/best.safetensors")" = "$(readlink "$tmp/ref/best.safetensors")"
check "the mid-epoch checkpoint is gone once superseded" test ! -e "$run/interrupted.safetensors"
check "train.log holds both parts" test "$(grep -c '^output: ' "$run/train.log")" -eq 2

# SIGTERM, then `--resume CONFIG`; `--resume` in a finished run has nothing to do.
rm -rf "$run"
"$bin" --output "$run" "$tmp/small.cfg" > "$tmp/term.out" 2>&1 &
pid=$!
wait_for "$run/epoch-01.safetensors"
sleep 0.2
kill -TERM $pid || true
status=0
wait $pid || status=$?
check "SIGTERM exits with status 143" test "$status" -eq 143
check "SIGTERM says where it stopped" grep -q '^lenet-omp: SIGTERM: stopped' "$tmp/term.out"
"$bin" --resume --output "$run" "$tmp/small.cfg" > /dev/null
check "SIGTERM + --resume CONFIG: identical checkpoints" same_run "$tmp/ref" "$run"
"$bin" --resume --output "$run" "$tmp/small.cfg" > "$tmp/done.out"
check "--resume of a finished run says so and exits 0" \
    grep -q "the run is complete (3 epochs)" "$tmp/done.out"
check "... and rewrites nothing" same_run "$tmp/ref" "$run"

# A second signal ends the process at once. Deterministic: the process is stopped while both
# arrive, so the second is delivered right after the first's handler (one thread).
rm -rf "$run"
OMP_NUM_THREADS=1 "$bin" --output "$run" "$tmp/small.cfg" > "$tmp/two.out" 2>&1 &
pid=$!
wait_for "$run/epoch-01.safetensors"
sleep 0.2
cp "$run/epoch-01.safetensors" "$tmp/epoch-01.copy"
kill -STOP $pid || true
kill -INT $pid || true
kill -TERM $pid || true
kill -CONT $pid || true
status=0
wait $pid || status=$?
check "a second signal kills at once (status $status)" \
    test "$status" -eq 130 -o "$status" -eq 143
check "... without saving" bash -c "! grep -q 'saved' '$tmp/two.out'"
check "... or touching the checkpoints" cmp -s "$tmp/epoch-01.copy" "$run/epoch-01.safetensors"
check "... and no mid-epoch checkpoint" test ! -e "$run/interrupted.safetensors"

# Leftovers of killed runs: temporary files are removed and never taken for checkpoints.
printf 'garbage' > "$run/epoch-09.safetensors.tmp.12345"
printf 'garbage' > "$run/interrupted.safetensors.tmp.999"
"$bin" resume "$run" > "$tmp/after.out"
check "temporary files of killed runs are cleaned up" \
    test -z "$(find "$run" -name '*.tmp.*')"
check "resume after the second signal: identical checkpoints" same_run "$tmp/ref" "$run"

# Another config is refused (exit 2, naming the checkpoint and the setting), touching nothing.
cp "$run/config.cfg" "$tmp/config.copy"
status=0
"$bin" --resume --output "$run" --set train.batch_size=5 "$tmp/small.cfg" \
    > /dev/null 2> "$tmp/mismatch.err" || status=$?
check "another config: exit status 2" test "$status" -eq 2
check "another config: the message names the checkpoint and the setting" \
    grep -q "$run/epoch-03.safetensors: the run was trained with another config: .*batch_size = 5" \
    "$tmp/mismatch.err"
check "another config: config.cfg untouched" cmp -s "$tmp/config.copy" "$run/config.cfg"
check "another thread count is not another config" \
    quiet "$bin" --resume --threads 1 --output "$run" "$tmp/small.cfg"

# A corrupt newest checkpoint is bad input (exit 2, naming it).
head -c 1000 "$tmp/ref/epoch-03.safetensors" > "$run/epoch-03.safetensors"
status=0
"$bin" resume "$run" > /dev/null 2> "$tmp/corrupt.err" || status=$?
check "corrupt checkpoint: exit status 2" test "$status" -eq 2
check "corrupt checkpoint: the message names it" grep -q "$run/epoch-03.safetensors" \
    "$tmp/corrupt.err"

# A run of 2 epochs, then the config's 3: the same as 3 epochs in one go.
rm -rf "$run"
"$bin" --epochs 2 --output "$run" "$tmp/small.cfg" > /dev/null
"$bin" --resume --output "$run" "$tmp/small.cfg" > /dev/null
check "2 epochs, then resumed to 3: identical checkpoints" \
    cmp -s "$tmp/ref/epoch-03.safetensors" "$run/epoch-03.safetensors"

echo "$fails failed"
[ "$fails" -eq 0 ]
