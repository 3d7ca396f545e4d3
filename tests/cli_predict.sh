#!/usr/bin/env bash
# `lenet-omp predict`: first on a small synthetic set (tests/make_idx.c) and a checkpoint
# trained on it in a second: --idx against `lenet-omp test`, the output formats, and every bad
# input (exit 2, one message naming the file). Then on real MNIST: a one-epoch checkpoint of
# configs/lenet5.cfg (or $LENET_PREDICT_CHECKPOINT, one made that way, to save the training),
# 20 real test digits written out as PNG (tests/idx_to_png.c) are classified plain, inverted
# (black on white, --invert) and inverted at 3x size in a larger picture (refitted to 28x28),
# each at least 18 of 20 right; `--idx t10k-images` gives `lenet-omp test`'s error count.
# The real part skips (77) without the data, except in CI (CI set), where it fails.
# Usage: cli_predict.sh LENET_OMP MAKE_IDX TESTS_DIR IDX_TO_PNG
set -euo pipefail
bin=$(realpath "$1") make_idx=$(realpath "$2") root=$(realpath "$3/..")
idx_to_png=$(realpath "${4:?usage: cli_predict.sh LENET_OMP MAKE_IDX TESTS_DIR IDX_TO_PNG}")
data=${LENET_DATA_DIR:-$root/data/mnist}
source "$(dirname "$0")/lib.sh"
# bad DESCRIPTION TEXT ARGS...: predict ARGS must exit 2 with one stderr line containing TEXT.
bad() {
    local status=0
    "$bin" predict "${@:3}" > "$tmp/bad.out" 2> "$tmp/bad.err" || status=$?
    if [ "$status" -eq 2 ] && [ "$(wc -l < "$tmp/bad.err")" -eq 1 ] \
        && grep -qF -- "$2" "$tmp/bad.err" && [ ! -s "$tmp/bad.out" ]; then
        echo "ok   $1: $(cat "$tmp/bad.err")"
    else
        echo "FAIL $1 (status $status; stderr: $(cat "$tmp/bad.err"))"
        fails=$((fails + 1))
    fi
}
# correct DIR: how many DIR/NNNNN-L.png pictures the last predict output ($tmp/pred.out) got
# right (L: the true label).
correct() {
    sed -n 's|^.*/[0-9]*-\([0-9]\)\.png: \([0-9]\)  (p:.*|\1 \2|p' "$tmp/pred.out" \
        | awk '$1 == $2 { n++ } END { print n + 0 }'
}

# --- synthetic set: formats, agreement with `test`, bad inputs ------------------------------
"$make_idx" "$tmp" 300 100 5
cat > "$tmp/small.cfg" <<CFG
name = "small";
data = { train_images = "$tmp/train-images.idx"; train_labels = "$tmp/train-labels.idx";
         test_images = "$tmp/test-images.idx"; test_labels = "$tmp/test-labels.idx"; };
layers = ( { type = "conv"; name = "C1"; filters = 4; kernel = 5; stride = 2; },
           { type = "relu"; },
           { type = "dense"; name = "F"; units = 10; },
           { type = "softmax_xent"; } );
# Trained only a little, so that it still makes errors for --idx to count.
train = { epochs = 1; batch_size = 10; schedule = ( { epochs = 1; lr = 0.005; } ); };
CFG
"$bin" --output "$tmp/small" "$tmp/small.cfg" > /dev/null
ckpt=$tmp/small/best.safetensors
"$bin" test "$ckpt" > "$tmp/test.out"
wrong=$(sed -n 's|^0/1 error(s) of testing set: \([0-9]*\) / 100$|\1|p' "$tmp/test.out")
"$bin" predict --idx "$tmp/test-images.idx" --labels "$tmp/test-labels.idx" "$ckpt" \
    > "$tmp/idx.out"
check "--idx --labels counts the errors lenet-omp test counts ($wrong)" \
    grep -q "^0/1 error(s): $wrong / 100\$" "$tmp/idx.out"
check "the confusion matrix has 10 rows adding up to 100 images and $wrong errors" \
    test "$(awk '/^ *[0-9] \|/ { n++; t += $(NF - 1); e += $NF } END { print n, t, e }' \
        "$tmp/idx.out")" = "10 100 $wrong"
"$bin" predict --idx "$tmp/test-images.idx" "$ckpt" > "$tmp/hist.out"
check "--idx without labels prints the predictions' histogram of 100 images" \
    test "$(awk '/^ *[0-9]+  +[0-9]+$/ { n++; t += $2 } END { print n, t }' "$tmp/hist.out")" \
        = "10 100"
check "--idx without labels says so" grep -q '^labels: none' "$tmp/hist.out"

mkdir "$tmp/syn"
"$idx_to_png" "$tmp/test-images.idx" "$tmp/test-labels.idx" 0 3 "$tmp/syn"
"$bin" predict "$ckpt" "$tmp"/syn/*.png > "$tmp/pred.out"
check "one line per picture" test "$(wc -l < "$tmp/pred.out")" -eq 3
check "each line: file, digit, 10 probabilities" test "$(grep -cE \
    '^/.*\.png: [0-9]  \(p:( [0-9]:[01]\.[0-9]{3}){10}\)$' "$tmp/pred.out")" -eq 3
check "the probabilities add up to 1" awk -F'[ :)]+' \
    '{ s = 0; for (i = 5; i <= NF; i += 2) s += $i; if (s < 0.99 || s > 1.01) exit 1 }' \
    "$tmp/pred.out"

printf 'GIF89a' > "$tmp/garbage.png"
head -c 60 "$(ls "$tmp"/syn/*.png | head -n 1)" > "$tmp/cut.png"
printf 'P5 4 4 255\n%016d' 0 | tr 0 '\000' > "$tmp/blank.pgm"
printf 'P5 100000 100000 255\n' > "$tmp/absurd.pgm"
png=$(ls "$tmp"/syn/*.png | head -n 1)
bad "a missing checkpoint" "$tmp/none.safetensors" "$tmp/none.safetensors" "$png"
bad "an image as the checkpoint" "$png" "$png" "$png"
bad "a missing picture" "$tmp/none.png" "$ckpt" "$png" "$tmp/none.png"
bad "a garbage picture" "$tmp/garbage.png: not a PNG or PGM image" "$ckpt" "$tmp/garbage.png"
bad "a truncated PNG" "$tmp/cut.png: truncated PNG file" "$ckpt" "$tmp/cut.png"
bad "a blank picture" "$tmp/blank.pgm: no digit found" "$ckpt" "$tmp/blank.pgm"
bad "an absurd PGM" "$tmp/absurd.pgm: PGM image of 100000x100000" "$ckpt" "$tmp/absurd.pgm"
bad "no picture" "CHECKPOINT IMAGE..." "$ckpt"
bad "--idx with a picture" "no IMAGE" --idx "$tmp/test-images.idx" "$ckpt" "$png"
bad "--labels without --idx" "--labels goes with --idx" --labels "$tmp/test-labels.idx" \
    "$ckpt" "$png"
bad "a missing --idx file" "$tmp/none.idx: cannot open" --idx "$tmp/none.idx" "$ckpt"
bad "--idx of a label file" "not an IDX image file" --idx "$tmp/test-labels.idx" "$ckpt"
bad "labels that do not match" "holds 300 labels" --idx "$tmp/test-images.idx" \
    --labels "$tmp/train-labels.idx" "$ckpt"
"$bin" --set data.normalize=scale01 --output "$tmp/s01" "$tmp/small.cfg" > /dev/null
mv "$tmp/test-images.idx" "$tmp/moved.idx"
bad "a checkpoint whose test set is gone" "$tmp/test-images.idx: cannot open" "$ckpt" "$png"
status=0
"$bin" predict "$tmp/s01/best.safetensors" "$png" > /dev/null || status=$?
check "normalize = scale01 needs no test set" test "$status" -eq 0
mv "$tmp/moved.idx" "$tmp/test-images.idx"

# --- real MNIST ----------------------------------------------------------------------------
if [ ! -f "$data/t10k-labels-idx1-ubyte" ] || [ ! -f "$data/train-labels-idx1-ubyte" ]; then
    echo "real MNIST is missing from $data (run scripts/fetch-mnist)"
    [ -n "${CI:-}" ] && exit 1
    [ "$fails" -eq 0 ] || exit 1
    exit 77
fi
test_images=$data/t10k-images-idx3-ubyte test_labels=$data/t10k-labels-idx1-ubyte
if [ -n "${LENET_PREDICT_CHECKPOINT:-}" ]; then
    real=$LENET_PREDICT_CHECKPOINT
else
    "$bin" --epochs 1 --set train.batch_size=64 --output "$tmp/real" \
        --set "data.train_images=$data/train-images-idx3-ubyte" \
        --set "data.train_labels=$data/train-labels-idx1-ubyte" \
        --set "data.test_images=$test_images" --set "data.test_labels=$test_labels" \
        "$root/configs/lenet5.cfg" > "$tmp/real.out"
    real=$tmp/real/best.safetensors
fi

mkdir "$tmp/plain" "$tmp/inv" "$tmp/big"
"$idx_to_png" "$test_images" "$test_labels" 0 20 "$tmp/plain"
"$idx_to_png" --invert "$test_images" "$test_labels" 0 20 "$tmp/inv"
"$idx_to_png" --invert --scale 3 "$test_images" "$test_labels" 0 20 "$tmp/big"
for set in plain inv big; do
    flag=()
    [ "$set" = plain ] || flag=(--invert)
    "$bin" predict "${flag[@]}" "$real" "$tmp/$set"/*.png > "$tmp/pred.out"
    right=$(correct)
    check "real digits as PNG ($set${flag:+, ${flag[*]}}): $right / 20 right, at least 18" \
        test "$right" -ge 18
done
bad "an inverted picture without --invert" "no digit found" "$real" "$tmp/inv/00000-7.png"

"$bin" test "$real" > "$tmp/real-test.out"
wrong=$(sed -n 's|^0/1 error(s) of testing set: \([0-9]*\) / 10000$|\1|p' "$tmp/real-test.out")
"$bin" predict --idx "$test_images" "$real" > "$tmp/real-idx.out"
check "--idx t10k finds its MNIST labels" grep -q "^labels: $test_labels\$" "$tmp/real-idx.out"
check "--idx t10k counts lenet-omp test's errors ($wrong)" \
    grep -q "^0/1 error(s): $wrong / 10000\$" "$tmp/real-idx.out"
check "the confusion matrix adds up to 10000 images and $wrong errors" \
    test "$(awk '/^ *[0-9] \|/ { t += $(NF - 1); e += $NF } END { print t, e }' \
        "$tmp/real-idx.out")" = "10000 $wrong"
sed -n '/^confusion/,$p' "$tmp/real-idx.out"

echo "$fails failed"
[ "$fails" -eq 0 ]
