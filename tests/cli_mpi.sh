#!/usr/bin/env bash
# Training shared among MPI processes (docs/distributed.md) on this machine's loopback, on a
# small synthetic set (tests/make_idx.c): `mpirun -np 2` (and 3, with 2 threads each) writes
# the same checkpoints, byte for byte, as one process; Ctrl-C (SIGINT to the job) stops every
# rank after the same batch and rank 0 saves interrupted.safetensors; `resume` with another process count
# ends with the same checkpoints as the run never stopped; `test` under mpirun counts and
# costs as one process; a rank killed with SIGKILL ends the job within 10 s and the newest
# checkpoint loads; a rank with another config or other data is refused (exit 2, naming it),
# so is a rank that fails alone, and a command that runs in one process. The same bytes also
# with every toolkit layer (batchnorm, dropout, augmentation, validation, AdamW).
# Usage: cli_mpi.sh LENET_OMP MAKE_IDX TESTS_DIR MPIRUN_LOCAL LAUNCHER
# (exit 77, skipped, when lenet-omp was built without MPI: LAUNCHER is then "none")
set -euo pipefail
bin=$(realpath "$1") make_idx=$(realpath "$2") mpirun_local=$(realpath "$4") launcher=$5
[ "$launcher" != none ] || { echo "lenet-omp was built without MPI: skipped"; exit 77; }
source "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1
mpi() { "$mpirun_local" --launcher "$launcher" "$@"; } # mpi NP COMMAND...
quiet() { "$@" > /dev/null 2>&1; }
# The pid of rank $2 among the descendants of pid $1 (the launcher's processes of lenet-omp).
descendants() { local c; for c in $(pgrep -P "$1" || true); do echo "$c"; descendants "$c"; done; }
rank_pid() {
    local p
    for p in $(descendants "$1"); do
        [ "$(readlink "/proc/$p/exe" 2> /dev/null)" = "$bin" ] || continue
        tr '\0' '\n' < "/proc/$p/environ" 2> /dev/null |
            grep -q -x -E "(OMPI_COMM_WORLD_RANK|PMI_RANK|PMIX_RANK)=$2" && echo "$p" && return 0
    done
    return 1
}

"$make_idx" "$tmp" 12000 300 7
small_config "$tmp/small.cfg" small 3 '{ epochs = 3; batch_size = 8; momentum = 0.9;
          schedule = ( { epochs = 2; lr = 0.01; }, { epochs = 1; lr = 0.002; } ); }'
run=$tmp/run # every run uses this --output, so the stored config texts are the same

# The reference: one process, no MPI.
"$bin" --output "$run" "$tmp/small.cfg" > "$tmp/ref.out"
mv "$run" "$tmp/ref"

# Two processes, then three with two threads each (8 samples: shares of 2, 3, 3).
mpi 2 "$bin" --output "$run" "$tmp/small.cfg" > "$tmp/np2.out" 2> "$tmp/np2.err"
check "mpirun -np 2: every checkpoint identical to one process's" same_run "$tmp/ref" "$run"
check "mpirun -np 2: the same metrics.csv (but timings) and best link" \
    test "$(results "$run")" = "$(results "$tmp/ref")" -a \
         "$(readlink "$run/best.safetensors")" = "$(readlink "$tmp/ref/best.safetensors")"
check "mpirun -np 2: the same total costs in the log" \
    test "$(grep 'total cost' "$tmp/np2.out")" = "$(grep 'total cost' "$tmp/ref.out")"
check "mpirun -np 2: the header names the processes" \
    grep -q '^processes: 2 (MPI), each with 4 of every batch of 8' "$tmp/np2.out"
check "mpirun -np 2: one log, written once" \
    test "$(grep -c '^---------- epoch 1 begin' "$run/train.log")" -eq 1
rm -rf "$run"
OMP_NUM_THREADS=2 mpi 3 "$bin" --output "$run" "$tmp/small.cfg" > /dev/null
check "mpirun -np 3, 2 threads each: every checkpoint identical to one process's" \
    same_run "$tmp/ref" "$run"

# Every toolkit layer with its batch shared (batch 13: shares of 6-7, then 4-5): batchnorm's
# batch statistics, dropout's masks, the distortions, the validation split, AdamW.
arun=$tmp/arun # this section's --output, the same for every run
toolkit_config "$tmp/all.cfg" all 5 '{ epochs = 1; lr = 0.0002; end_lr = 0.003; curve = "linear"; },
                       { epochs = 2; lr = 0.003; end_lr = 0.00001; curve = "cosine"; }'
"$bin" --output "$arun" "$tmp/all.cfg" > /dev/null
mv "$arun" "$tmp/all-ref"
mpi 2 "$bin" --output "$arun" "$tmp/all.cfg" > /dev/null
check "toolkit layers, mpirun -np 2: every checkpoint identical to one process's" \
    same_run "$tmp/all-ref" "$arun"
check "toolkit layers, mpirun -np 2: the same validation errors and best link" \
    test "$(results "$arun")" = "$(results "$tmp/all-ref")" -a \
         "$(readlink "$arun/best.safetensors")" = "$(readlink "$tmp/all-ref/best.safetensors")"
rm -rf "$arun"
OMP_NUM_THREADS=2 mpi 3 "$bin" --output "$arun" "$tmp/all.cfg" > /dev/null
check "toolkit layers, mpirun -np 3, 2 threads each: every checkpoint identical" \
    same_run "$tmp/all-ref" "$arun"

# test: the same count and cost as one process.
"$bin" test "$run/epoch-03.safetensors" > "$tmp/test1.out"
mpi 2 "$bin" test "$run/epoch-03.safetensors" > "$tmp/test2.out"
check "mpirun -np 2 test: the same errors and mean cost as one process" \
    test "$(grep -E '^(0/1|error rate|mean cost)' "$tmp/test2.out")" = \
         "$(grep -E '^(0/1|error rate|mean cost)' "$tmp/test1.out")"
check "mpirun -np 2 test: says how it ran" grep -q 'in each of 2 processes' "$tmp/test2.out"

# Ctrl-C in the middle of an epoch (retried if it lands at an epoch's end), then `resume` with
# three processes. As a terminal does, SIGINT goes to the job's process group: mpirun and its
# ranks on this machine (mpirun alone would pass SIGTERM on to them only after
# odls_base_sigkill_timeout seconds, when this short run may be over); the ranks agree to stop
# after the same batch. setsid gives mpirun a process group of its own.
small_config "$tmp/long.cfg" long 5 '{ epochs = 16; batch_size = 8; momentum = 0.9;
          schedule = ( { epochs = 2; lr = 0.01; }, { epochs = 14; lr = 0.002; } ); }'
rm -rf "$run"
"$bin" --output "$run" "$tmp/long.cfg" > /dev/null
mv "$run" "$tmp/ref_long"
for attempt in 1 2 3 4 5; do
    rm -rf "$run"
    setsid "$mpirun_local" --launcher "$launcher" 2 "$bin" --output "$run" "$tmp/long.cfg" \
        > "$tmp/int.out" 2>&1 &
    pid=$!
    wait_for "$run/epoch-01.safetensors"
    sleep 0.0$((RANDOM % 5 + 1))
    kill -INT -- -$pid || true
    status=0
    wait $pid || status=$?
    grep -q -a -E '^lenet-omp: SIG(INT|TERM): stopped in epoch' "$tmp/int.out" && break
    echo "     (attempt $attempt): no mid-epoch stop; the job said:"
    tail -n 3 "$tmp/int.out" | sed 's/^/       /'
done
# (Open MPI's mpirun exits 1; MPICH's mpiexec passes the ranks' 130 on, or not)
"$launcher" --version 2>&1 | grep -q 'Open MPI' &&
    check "Ctrl-C to the job: exit status non-zero ($status)" test "$status" -ne 0
check "Ctrl-C to the job: rank 0 stopped mid-epoch and saved interrupted.safetensors" \
    grep -q -a -E "^lenet-omp: SIG(INT|TERM): stopped in epoch [0-9]* after batch [0-9]* of \
1500, saved $run/interrupted.safetensors" "$tmp/int.out"
check "Ctrl-C to the job: the message is printed once" \
    test "$(grep -c -a 'stopped in epoch' "$tmp/int.out")" -eq 1
check "Ctrl-C to the job: no temporary files" test -z "$(find "$run" -name '*.tmp.*')"
mpi 3 "$bin" resume "$run" > "$tmp/resume.out"
check "resume with 3 processes starts from the mid-epoch checkpoint" \
    grep -q "^resume: from $run/interrupted.safetensors (epoch [0-9]*, after batch" \
        "$tmp/resume.out"
check "SIGINT (2 processes) + resume (3): every checkpoint identical to one process's" \
    same_run "$tmp/ref_long" "$run"
check "SIGINT + resume: the same metrics.csv (but timings)" \
    test "$(results "$run")" = "$(results "$tmp/ref_long")"

# A rank killed with SIGKILL mid-epoch: the job ends within 10 s, non-zero; the newest
# checkpoint loads; resumed, the run ends as it would have.
rm -rf "$run"
# (the script execs the launcher: $! is mpirun's pid)
"$mpirun_local" --launcher "$launcher" 2 "$bin" --output "$run" "$tmp/long.cfg" \
    > "$tmp/kill.out" 2>&1 &
pid=$!
wait_for "$run/epoch-01.safetensors"
sleep 0.2
victim=$(rank_pid $pid 1 || true)
check "found rank 1's process" test -n "$victim"
started=$(date +%s%N)
[ -n "$victim" ] && kill -9 "$victim"
status=0
# (a hang would stop here: the test's timeout ends it, failing)
wait $pid || status=$?
elapsed=$((($(date +%s%N) - started) / 1000000))
echo "     (mpirun ended ${elapsed} ms after the kill, status $status)"
check "kill -9 of rank 1: mpirun exits non-zero" test "$status" -ne 0
check "kill -9 of rank 1: within 10 s" test "$elapsed" -lt 10000
newest=$(ls "$run"/epoch-*.safetensors | sort | tail -n 1)
check "kill -9 of rank 1: the newest checkpoint loads ($(basename "$newest"))" \
    quiet "$bin" test "$newest"
mpi 2 "$bin" resume "$run" > /dev/null
check "kill -9 + resume: every checkpoint identical to one process's" \
    same_run "$tmp/ref_long" "$run"

# Mismatches: rank 1 with another config, or other data; rank 1 failing alone.
cat > "$tmp/rank1.sh" << EOF
#!/usr/bin/env bash
rank=\${OMPI_COMM_WORLD_RANK:-\${PMI_RANK:-\${PMIX_RANK:-0}}}
[ "\$rank" = 1 ] && [ -n "\${RANK1_DIR:-}" ] && cd "\$RANK1_DIR"
[ "\$rank" = 1 ] && [ -n "\${RANK1_SET:-}" ] && exec "$bin" "\$@" --set "\$RANK1_SET"
exec "$bin" "\$@"
EOF
chmod +x "$tmp/rank1.sh"
rm -rf "$run"
status=0
RANK1_SET=seed=4 mpi 2 "$tmp/rank1.sh" --output "$run" "$tmp/small.cfg" > /dev/null \
    2> "$tmp/config.err" || status=$?
check "another config on rank 1: exit status 2 ($status)" test "$status" -eq 2
check "another config on rank 1: the message names the rank and the config" \
    grep -q "^lenet-omp: rank 1 (on .*) differs from rank 0 (on .*) in its config" "$tmp/config.err"
check "another config on rank 1: printed once, nothing written" \
    test "$(grep -c 'differs from rank 0' "$tmp/config.err")" -eq 1 -a ! -e "$run"
mkdir -p "$tmp/a/data" "$tmp/b/data" "$tmp/c"
cp "$tmp"/*.idx "$tmp/a/data/"
"$make_idx" "$tmp/b/data" 12000 300 8 # other images, the same names and sizes
sed "s|$tmp/|data/|g" "$tmp/small.cfg" > "$tmp/a/rel.cfg"
cp "$tmp/a/rel.cfg" "$tmp/b/rel.cfg"
cp "$tmp/a/rel.cfg" "$tmp/c/rel.cfg"
status=0
(cd "$tmp/a" && RANK1_DIR=$tmp/b mpi 2 "$tmp/rank1.sh" --output "$run" rel.cfg > /dev/null \
    2> "$tmp/data.err") || status=$?
check "other data on rank 1: exit status 2 ($status)" test "$status" -eq 2
check "other data on rank 1: the message names the rank and the training set" \
    grep -q "^lenet-omp: rank 1 (on .*) differs from rank 0 (on .*) in its training set: \
rank 0 has 'data/train-images.idx: 12000 images of 28x28, crc32 [0-9a-f]*', rank 1 has" \
        "$tmp/data.err"
status=0
(cd "$tmp/a" && RANK1_DIR=$tmp/c mpi 2 "$tmp/rank1.sh" --output "$run" rel.cfg > /dev/null \
    2> "$tmp/alone.err") || status=$?
check "rank 1 failing alone (no data): exit status 2 ($status)" test "$status" -eq 2
check "rank 1 failing alone: its own message, and rank 0's naming it" \
    grep -q "data/train-images.idx" "$tmp/alone.err" &&
    grep -q "^lenet-omp: rank 1 of 2 failed (its message is above): every rank stops" \
        "$tmp/alone.err"
status=0
mpi 2 "$bin" check "$tmp/small.cfg" > /dev/null 2> "$tmp/check.err" || status=$?
check "check under mpirun -np 2: refused (exit 2) with a message" \
    test "$status" -eq 2 -a "$(grep -c 'check runs in one process' "$tmp/check.err")" -eq 1

echo "$fails failed"
[ "$fails" -eq 0 ]
