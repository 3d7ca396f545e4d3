#!/usr/bin/env bash
# valgrind memcheck of a short training run on a small synthetic set (tests/make_idx.c, 300
# training and 100 test images), then `test` and `info` on its checkpoint: no invalid reads
# or writes, no uninitialised values, no definite or indirect leaks. libgomp's thread stacks
# show as "possibly lost" and do not count. Needs a build without -march=native (valgrind
# cannot run AVX-512 code): meson setup build-valgrind -Dnative=false.
# Usage: valgrind_train.sh VALGRIND LENET_OMP MAKE_IDX
set -euo pipefail
valgrind=$1 bin=$(realpath "$2") make_idx=$(realpath "$3")
source "$(dirname "$0")/lib.sh"

"$make_idx" "$tmp" 300 100 5
small_config "$tmp/small.cfg" small 3 '{ epochs = 2; batch_size = 7; momentum = 0.5;
          schedule = ( { epochs = 1; lr = 0.05; }, { epochs = 1; lr = 0.01; } ); }'

# Two threads, so the parallel regions run; passive waiting, since valgrind runs one thread
# at a time and spinning threads would only burn its time.
export OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive
# Each command under memcheck must exit with the expected status (2: refused input); the
# error exit code 99 marks memcheck's own findings.
memcheck() { # memcheck NAME EXPECTED_STATUS ARGS...
    local rc=0
    "$valgrind" -q --error-exitcode=99 --leak-check=full --show-possibly-lost=no \
        --errors-for-leak-kinds=definite,indirect --track-origins=yes --trace-children=yes \
        --log-file="$tmp/$1.vg" "$bin" "${@:3}" > "$tmp/$1.out" 2>&1 || rc=$?
    if [ "$rc" -eq "$2" ] && ! grep -q 'ERROR SUMMARY: [1-9]' "$tmp/$1.vg"; then
        echo "ok   $1 is clean under memcheck"
    else
        echo "FAIL $1 (exit $rc, expected $2):"
        cat "$tmp/$1.vg" "$tmp/$1.out"
        fails=$((fails + 1))
    fi
}
memcheck train 0 --output "$tmp/run" "$tmp/small.cfg"
memcheck test 0 test "$tmp/run/best.safetensors"
memcheck info 0 info "$tmp/run/epoch-02.safetensors"
memcheck bad-checkpoint 2 test "$tmp/small.cfg"
memcheck bad-config 2 check "$tmp/train-labels.idx"
echo "$fails failed"
[ "$fails" -eq 0 ]
