#!/usr/bin/env bash
# The experimenter's toolkit end to end, on a small synthetic set (tests/make_idx.c), with a
# config that uses all of it: batchnorm (after a conv and after a dense layer, a relu fused),
# dropout, leaky_relu, label smoothing, AdamW, a linear warm-up row and a cosine row, a
# validation split with patience, and augmentation with every distortion. The checkpoints are
# the same bytes at 1 and 4 threads; a run stopped by SIGINT in the middle of an epoch (2
# threads) and resumed (3 threads) ends with the same bytes as the run left alone; the log,
# metrics.csv and the best link follow the validation set; patience stops a run that stops
# improving, and resuming it has nothing to do; `lenet-omp augment` writes its sheet; and,
# when Debian's PyTorch is installed, docs/interop/pytorch_eval.py counts the same test errors
# from a checkpoint with batchnorm.
# Usage: cli_toolkit.sh LENET_OMP MAKE_IDX TESTS_DIR
set -euo pipefail
bin=$(realpath "$1") make_idx=$(realpath "$2") tests_dir=$(realpath "$3")
source "$(dirname "$0")/lib.sh"
quiet() { "$@" > /dev/null; }

"$make_idx" "$tmp" 4000 300 11 > /dev/null
toolkit_config "$tmp/all.cfg" all 5 '{ epochs = 1; lr = 0.0002; end_lr = 0.003; curve = "linear"; },
                       { epochs = 2; lr = 0.003; end_lr = 0.00001; curve = "cosine"; }'
run=$tmp/run # every run uses this --output, so the stored config texts are the same

OMP_NUM_THREADS=1 "$bin" --output "$run" "$tmp/all.cfg" > "$tmp/ref.out"
mv "$run" "$tmp/ref"
OMP_NUM_THREADS=4 "$bin" --output "$run" "$tmp/all.cfg" > "$tmp/four.out"
mv "$run" "$tmp/four"
check "1 and 4 threads: identical checkpoints" same_run "$tmp/ref" "$tmp/four"
check "the log shows the validation set" \
    grep -q '^0/1 error(s) of validation set: [0-9]* / 700$' "$tmp/ref.out"
check "the log shows the warm-up's rate range" \
    grep -q '^learning rate: 0.0002 -> 0.0029' "$tmp/ref.out"
check "metrics.csv has the validation columns" \
    grep -q '^epoch,lr,cost,train_errors,test_errors,seconds,train_count,test_count,val_errors,val_count$' \
    "$tmp/ref/metrics.csv"
check "the training set is what the validation set left (3300)" \
    grep -q '^1,0.0002,[0-9.]*,[0-9]*,[0-9]*,[0-9.]*,3300,300,[0-9]*,700$' "$tmp/ref/metrics.csv"
best=$(awk -F, 'NR > 1 && (b == "" || $9 < v) { b = $1; v = $9 } END { printf "epoch-%02d.safetensors", b }' \
       "$tmp/ref/metrics.csv")
check "best.safetensors is the epoch with the fewest validation errors ($best)" \
    test "$(readlink "$tmp/ref/best.safetensors")" = "$best"
check "info shows the validation errors" \
    grep -q '^0/1 error(s) of validation set: ' <("$bin" info "$tmp/ref/epoch-03.safetensors")
check "test on a checkpoint with batchnorm: the errors training counted" \
    test "$(grep '^0/1 error(s) of testing set:' "$tmp/ref.out" | tail -n 1)" = \
         "$("$bin" test "$tmp/ref/epoch-03.safetensors" | grep '^0/1 error(s) of testing set:')"

# SIGINT in the middle of epoch 2 at 2 threads (retried if it lands at an epoch's end), then
# resumed at 3 threads: the same bytes as the run left alone.
for attempt in 1 2 3 4 5; do
    rm -rf "$run"
    OMP_NUM_THREADS=2 "$bin" --output "$run" "$tmp/all.cfg" > "$tmp/int.out" 2>&1 &
    pid=$!
    wait_for "$run/epoch-01.safetensors"
    sleep 0.$((RANDOM % 3 + 1))
    kill -INT $pid || true
    status=0
    wait $pid || status=$?
    grep -q '^lenet-omp: SIGINT: stopped in epoch' "$tmp/int.out" && break
done
check "SIGINT stopped mid-epoch (status $status)" test "$status" -eq 130
OMP_NUM_THREADS=3 "$bin" resume "$run" > "$tmp/resume.out"
check "resumed from the mid-epoch checkpoint" grep -q "^resume: from $run/interrupted.safetensors" \
    "$tmp/resume.out"
check "SIGINT at 2 threads + resume at 3: identical checkpoints" same_run "$tmp/ref" "$run"
check "SIGINT + resume: the same metrics.csv (but timings)" \
    test "$(results "$run")" = "$(results "$tmp/ref")"
check "SIGINT + resume: the same best link" \
    test "$(readlink "$run/best.safetensors")" = "$(readlink "$tmp/ref/best.safetensors")"

# The same with SGD and Nesterov momentum (its velocity travels in the checkpoint): stopped
# at 1 thread, resumed at 4, against the run left alone at 2.
toolkit_config "$tmp/nesterov.cfg" nesterov 5 '{ epochs = 1; lr = 0.001; end_lr = 0.02; curve = "linear"; },
                       { epochs = 2; lr = 0.02; end_lr = 0.0; curve = "cosine"; }' \
    'optimizer = "sgd"; momentum = 0.9; nesterov = true; weight_decay = 0.0005;'
rm -rf "$run"
OMP_NUM_THREADS=2 "$bin" --output "$run" "$tmp/nesterov.cfg" > /dev/null
mv "$run" "$tmp/nref"
for attempt in 1 2 3 4 5; do
    rm -rf "$run"
    OMP_NUM_THREADS=1 "$bin" --output "$run" "$tmp/nesterov.cfg" > "$tmp/nint.out" 2>&1 &
    pid=$!
    wait_for "$run/epoch-01.safetensors"
    sleep 0.$((RANDOM % 3 + 1))
    kill -INT $pid || true
    wait $pid || true
    grep -q '^lenet-omp: SIGINT: stopped in epoch' "$tmp/nint.out" && break
done
OMP_NUM_THREADS=4 "$bin" resume "$run" > /dev/null
check "Nesterov SGD: SIGINT at 1 thread + resume at 4: identical checkpoints" \
    same_run "$tmp/nref" "$run"
check "... with the velocity in them" \
    grep -q '__optimizer__.C1.weight.velocity' "$tmp/nref/epoch-03.safetensors"

# Patience: a rate too small to change any weight and running statistics that do not move
# (batchnorm momentum 0) give no better validation error after epoch 1, so patience 1 stops
# after epoch 2 of 4; resuming has nothing to train.
toolkit_config "$tmp/stall.cfg" stall 1 '{ epochs = 4; lr = 1e-30; }'
sed -i 's/{ type = "batchnorm"; name = "\(BN[0-9]\)"[^}]*}/{ type = "batchnorm"; name = "\1"; momentum = 0.0; }/; s/epochs = 3; batch/epochs = 4; batch/' \
    "$tmp/stall.cfg"
rm -rf "$run"
"$bin" --output "$run" "$tmp/stall.cfg" > "$tmp/stall.out"
check "patience stops the run" grep -q '^early stop: no better validation error in 1 epochs (best: epoch 1' \
    "$tmp/stall.out"
check "... after epoch 2" test -e "$run/epoch-02.safetensors" -a ! -e "$run/epoch-03.safetensors"
check "... and best is epoch 1" test "$(readlink "$run/best.safetensors")" = epoch-01.safetensors
"$bin" resume "$run" > "$tmp/stall-resume.out"
check "resuming an early-stopped run has nothing to do" \
    grep -q 'stopped early after epoch 2 (patience 1): nothing to train' "$tmp/stall-resume.out"
check "... and writes no epoch" test ! -e "$run/epoch-03.safetensors"

# The augmentation sheet.
"$bin" augment -o "$tmp/sheet" "$tmp/all.cfg" > "$tmp/augment.out"
check "augment writes DIR/augment.png" test -s "$tmp/sheet/augment.png"
check "... a PNG" test "$(head -c 8 "$tmp/sheet/augment.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a
check "... and says what it shows" grep -q "augment.png: the first 64 training images" "$tmp/augment.out"
status=0
"$bin" augment -o "$tmp/sheet2" "$tests_dir/configs/bad_augment_shift.cfg" > /dev/null 2>&1 || status=$?
check "augment refuses a bad config (status 2)" test "$status" -eq 2

# PyTorch counts the same test errors from a checkpoint with batchnorm (when installed).
if /usr/bin/python3 -c 'import torch' 2> /dev/null; then
    root=$(dirname "$tests_dir")
    /usr/bin/python3 "$root/docs/interop/pytorch_eval.py" "$tmp/ref/epoch-03.safetensors" \
        > "$tmp/torch.out"
    want=$(sed -n 's/^lenet-omp recorded: \([0-9]*\) \/ 300$/\1/p' "$tmp/torch.out")
    check "PyTorch counts the same test errors ($want)" \
        grep -q "^PyTorch [^:]*: $want / 300 test errors" "$tmp/torch.out"
    # a kind the script does not know stops it with a message, never dropped silently
    /usr/bin/python3 - "$tmp/ref/epoch-03.safetensors" "$tmp/swish.safetensors" <<'PY'
import json, struct, sys
blob = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", blob[:8])[0]
head = json.loads(blob[8:8 + n])
head["__metadata__"]["config"] = head["__metadata__"]["config"].replace('"leaky_relu"', '"swish"')
text = json.dumps(head).encode()
text += b" " * (-len(text) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(text)) + text + blob[8 + n:])
PY
    status=0
    /usr/bin/python3 "$root/docs/interop/pytorch_eval.py" "$tmp/swish.safetensors" \
        > /dev/null 2> "$tmp/swish.err" || status=$?
    check "PyTorch: an unknown kind stops the script (status $status)" test "$status" -ne 0
    check "... naming the layer and the kind" \
        grep -q "layer 7 'swish7' is of kind 'swish', which this script does not know" \
        "$tmp/swish.err"
else
    echo "skip PyTorch: /usr/bin/python3 has no torch"
fi

echo "$fails failed"
[ "$fails" -eq 0 ]
