# lib.sh - shared by the command-line test scripts (sourced): a temporary directory removed on
# exit, a `check` helper that counts failures, and the config of a small network on the
# synthetic digits tests/make_idx.c writes.

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

# check DESCRIPTION COMMAND...: runs COMMAND, prints ok/FAIL, counts failures in $fails.
check() {
    if "${@:2}"; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails + 1)); fi
}

# small_config FILE NAME SEED TRAIN: writes a config for make_idx's data in $tmp (conv 4@5x5
# stride 2, relu, maxpool 2, dense 10) with TRAIN as its `train` group.
small_config() {
    cat > "$1" <<CFG
name = "$2";
seed = $3;
data = { train_images = "$tmp/train-images.idx"; train_labels = "$tmp/train-labels.idx";
         test_images = "$tmp/test-images.idx"; test_labels = "$tmp/test-labels.idx"; };
layers = ( { type = "conv"; name = "C1"; filters = 4; kernel = 5; stride = 2; },
           { type = "relu"; },
           { type = "maxpool"; size = 2; },
           { type = "dense"; name = "F"; units = 10; },
           { type = "softmax_xent"; } );
train = $4;
CFG
}
