# lib.sh - shared by the command-line test scripts (sourced): a temporary directory removed on
# exit, a `check` helper that counts failures, comparisons of run directories, and the configs
# of a small network and of one with every toolkit layer on the synthetic digits
# tests/make_idx.c writes.

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

# same_run DIR_A DIR_B: every epoch checkpoint of the two run directories is identical, byte
# for byte, and they hold as many.
same_run() {
    local f ok=0
    for f in "$1"/epoch-*.safetensors; do
        cmp -s "$f" "$2/$(basename "$f")" || { echo "  differs: $(basename "$f")"; ok=1; }
    done
    [ "$(ls "$1"/epoch-*.safetensors | wc -l)" -eq "$(ls "$2"/epoch-*.safetensors | wc -l)" ] &&
        return $ok
}
# results DIR: metrics.csv without the seconds column (timings differ).
results() { cut -d, -f1-5,7- "$1/metrics.csv"; }
# wait_for FILE: waits (up to 60 s) until FILE exists.
wait_for() { for _ in $(seq 600); do [ -e "$1" ] && return 0; sleep 0.1; done; return 1; }

# toolkit_config FILE NAME PATIENCE SCHEDULE [OPTIMIZER]: a config for make_idx's data with
# batchnorm (after convs and a dense layer), dropout, leaky_relu, label smoothing, a validation
# set of 700, every distortion, and OPTIMIZER (default AdamW) on the rows of SCHEDULE.
toolkit_config() {
    local opt=${5:-'optimizer = "adamw"; weight_decay = 0.01; beta1 = 0.85;'}
    cat > "$1" <<CFG
name = "$2";
seed = 5;
data = { train_images = "$tmp/train-images.idx"; train_labels = "$tmp/train-labels.idx";
         test_images = "$tmp/test-images.idx"; test_labels = "$tmp/test-labels.idx";
         validation = 700;
         augment = { shift = 2; rotate = 10; scale = 0.1; elastic_alpha = 20; elastic_sigma = 3; }; };
layers = ( { type = "conv"; name = "C1"; filters = 6; kernel = 5; stride = 2; },
           { type = "batchnorm"; name = "BN1"; },
           { type = "relu"; },
           { type = "maxpool"; size = 2; },
           { type = "conv"; name = "C2"; filters = 8; kernel = 3; pad = 1; },
           { type = "batchnorm"; name = "BN2"; momentum = 0.2; },
           { type = "leaky_relu"; slope = 0.05; },
           { type = "dropout"; rate = 0.2; },
           { type = "dense"; name = "F"; units = 24; },
           { type = "batchnorm"; name = "BN3"; },
           { type = "relu"; },
           { type = "dropout"; rate = 0.3; },
           { type = "dense"; name = "OUT"; units = 10; },
           { type = "softmax_xent"; label_smoothing = 0.1; } );
train = { epochs = 3; batch_size = 13; $opt patience = $3;
          schedule = ( $4 ); };
CFG
}
