#!/usr/bin/env bash
# Hostile input (issue 12), one class per run: every case must end with exit status 2 and one
# "lenet-omp: " message naming the file at fault (or succeed where that is the fix), within
# a time limit, and leave good files alone.
#   hangs     a FIFO, a device or /dev/stdin wherever a file is read or appended to
#   runs      runs that would be lost or broken: checkpoint names, run names, non-UTF-8
#             strings, retraining into a run directory, predict -o, NaN weights
#   memory    small files that used to cost gigabytes: gzip IDX, count mismatches,
#             checkpoints declaring huge layers, endless metrics.csv
#   silent    what used to be accepted silently: integer literals, unclosed comments, test
#             images of another size, junk after a gzip stream, NaN weights, changed files
#   messages  messages that named nothing or contradicted the docs: @include, output_dir,
#             epochs, schedule rows, an SVG from a run directory with invalid UTF-8
# Usage: cli_hostile.sh LENET_OMP MAKE_IDX TESTS_DIR CLASS [PEAK_RSS]
set -uo pipefail
bin=$(realpath "$1") make_idx=$(realpath "$2") tests=$(realpath "$3") class=$4
peak_rss=${5:+$(realpath "$5")}
source "$(dirname "$0")/lib.sh"
out=$tmp/stdout err=$tmp/stderr

# expect NAME STATUS [NEEDLE ...] -- COMMAND ...: runs COMMAND (at most 20 s, stdin from
# /dev/null unless redirected by the caller) and checks its exit status, that a status 2
# comes with a "lenet-omp: " line, and that stderr (stdout for status 0; "err:" before a
# needle: stderr) holds every NEEDLE.
expect() {
    local name=$1 want=$2 needle stream
    shift 2
    local needles=()
    while [ "$1" != "--" ]; do needles+=("$1"); shift; done
    shift
    timeout -k 5 20 "$@" > "$out" 2> "$err"
    local rc=$?
    local why=""
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        why="timed out (a hang)"
    elif [ "$rc" -ne "$want" ]; then
        why="exit status $rc, expected $want"
    elif [ "$want" -eq 2 ] && ! grep -q '^lenet-omp: ' "$err"; then
        why="no 'lenet-omp: ' message"
    else
        stream=$err
        [ "$want" -eq 0 ] && stream=$out
        for needle in ${needles[@]+"${needles[@]}"}; do
            [ -n "$needle" ] || continue
            local in=$stream
            case $needle in err:*) in=$err; needle=${needle#err:} ;; esac
            grep -qF -- "$needle" "$in" || { why="output lacks '$needle'"; break; }
        done
    fi
    if [ -z "$why" ]; then
        echo "ok   $name"
    else
        echo "FAIL $name: $why"
        sed 's/^/     stderr: /' "$err" | head -n 5
        fails=$((fails + 1))
    fi
}

# Synthetic data and a small trained run (tests/lib.sh's network), shared by the classes.
mkdir "$tmp/data"
"$make_idx" "$tmp/data" 60 20 7 > /dev/null
data_of() { # data_of DIR: a data group reading DIR's four files
    echo "data = { train_images = \"$1/train-images.idx\"; train_labels = \"$1/train-labels.idx\";
                   test_images = \"$1/test-images.idx\"; test_labels = \"$1/test-labels.idx\"; };"
}
write_config() { # write_config FILE NAME EPOCHS DATA_DIR [MORE...]: the small network
    local file=$1 name=$2 epochs=$3 dir=$4
    shift 4
    cat > "$file" <<CFG
name = "$name";
$(data_of "$dir")
layers = ( { type = "conv"; name = "C1"; filters = 2; kernel = 5; stride = 3; },
           { type = "relu"; }, { type = "dense"; name = "F"; units = 10; },
           { type = "softmax_xent"; } );
train = { epochs = $epochs; batch_size = 10; schedule = ( { epochs = 1000; lr = 0.05; } ); };
$*
CFG
}
write_config "$tmp/small.cfg" small 2 "$tmp/data"
"$bin" --output "$tmp/run" "$tmp/small.cfg" > /dev/null || { echo "FAIL the small run"; exit 1; }
ckpt=$tmp/run/epoch-02.safetensors

hangs() {
    mkfifo "$tmp/fifo"
    local fifo=$tmp/fifo
    expect "a FIFO as training images (train)" 2 "$fifo: not a regular file (a FIFO)" -- \
        "$bin" --output "$tmp/o" --set "data.train_images=\"$fifo\"" "$tmp/small.cfg"
    expect "a FIFO as test labels (check)" 2 "$fifo: not a regular file (a FIFO)" -- \
        "$bin" check --set "data.test_labels=\"$fifo\"" "$tmp/small.cfg"
    expect "/dev/zero as training labels" 2 "/dev/zero: not a regular file (a character device)" -- \
        "$bin" check --set 'data.train_labels="/dev/zero"' "$tmp/small.cfg"
    # /dev/stdin on a FIFO that has a writer (this shell): reading it would wait forever.
    exec 3<> "$fifo"
    expect "/dev/stdin (a pipe) as test images" 2 "/dev/stdin: not a regular file (a FIFO)" -- \
        "$bin" check --set 'data.test_images="/dev/stdin"' "$tmp/small.cfg" <&3
    exec 3<&-
    expect "a FIFO as the config" 2 "$fifo: not a regular file (a FIFO)" -- "$bin" check "$fifo"
    expect "a FIFO as a checkpoint (test)" 2 "$fifo: not a regular file (a FIFO)" -- \
        "$bin" test "$fifo"
    expect "a FIFO as a checkpoint (info)" 2 "$fifo: not a regular file (a FIFO)" -- \
        "$bin" info "$fifo"
    expect "/dev/zero as a checkpoint (predict)" 2 "/dev/zero: not a regular file" -- \
        "$bin" predict /dev/zero "$tmp/x.pgm"
    printf 'P2\n2 2\n255\n0 255 255 0\n' > "$tmp/x.pgm"
    expect "a FIFO as an image (predict)" 2 "$fifo: not a regular file (a FIFO)" -- \
        "$bin" predict "$ckpt" "$tmp/x.pgm" "$fifo"
    expect "a FIFO as --idx" 2 "$fifo: not a regular file (a FIFO)" -- \
        "$bin" predict --idx "$fifo" --labels "$tmp/data/test-labels.idx" "$ckpt"
    expect "a FIFO as --idx without labels" 2 "$fifo: not a regular file (a FIFO)" -- \
        "$bin" predict --idx "$fifo" "$ckpt"
    expect "a FIFO as --labels" 2 "$fifo: not a regular file (a FIFO)" -- \
        "$bin" predict --idx "$tmp/data/test-images.idx" --labels "$fifo" "$ckpt"
    # A data path inside a checkpoint's stored config.
    mkdir "$tmp/moved"
    cp "$tmp/data"/*.idx "$tmp/moved/"
    write_config "$tmp/moved.cfg" moved 1 "$tmp/moved"
    "$bin" --output "$tmp/moved-run" "$tmp/moved.cfg" > /dev/null
    rm "$tmp/moved/test-images.idx"
    mkfifo "$tmp/moved/test-images.idx"
    expect "a FIFO as the test images a checkpoint's config names (test)" 2 \
        "$tmp/moved/test-images.idx: not a regular file (a FIFO)" -- \
        "$bin" test "$tmp/moved-run/epoch-01.safetensors"
    # A run directory's files, one at a time, in copies of the small run.
    local f
    for f in config.cfg metrics.csv train.log interrupted.safetensors .lenet-omp.lock; do
        rm -rf "$tmp/r"
        cp -r "$tmp/run" "$tmp/r"
        rm -f "$tmp/r/$f"
        mkfifo "$tmp/r/$f"
        expect "a FIFO as the run directory's $f (resume -e 3)" 2 \
            "$tmp/r/$f: not a regular file (a FIFO)" -- "$bin" resume -e 3 "$tmp/r"
    done
    rm -rf "$tmp/r"
    cp -r "$tmp/run" "$tmp/r"
    rm "$tmp/r/metrics.csv"
    mkfifo "$tmp/r/metrics.csv"
    expect "a FIFO as metrics.csv (plot)" 2 "$tmp/r/metrics.csv: not a regular file (a FIFO)" -- \
        "$bin" plot "$tmp/r"
    mkdir "$tmp/fresh"
    mkfifo "$tmp/fresh/train.log"
    expect "a FIFO as train.log of a new run" 2 "$tmp/fresh/train.log: not a regular file" -- \
        "$bin" --output "$tmp/fresh" "$tmp/small.cfg"
    # A checkpoint whose stored config starts with an @include of the FIFO (written as by an
    # older lenet-omp, without a checksum): resume compared configs with libconfig straight.
    rm -rf "$tmp/r"
    cp -r "$tmp/run" "$tmp/r"
    without_checksum "$ckpt" "$tmp/plain.safetensors"
    header_of "$tmp/plain.safetensors" | sed "s|\"config\":\"|\"config\":\"@include \\\\\"$fifo\\\\\"\\\\n|" > "$tmp/h.json"
    grep -q '@include' "$tmp/h.json" || { echo "FAIL the @include checkpoint"; exit 1; }
    put_checkpoint "$tmp/r/epoch-02.safetensors" "$tmp/h.json" "$ckpt"
    expect "a checkpoint's stored config with an @include of a FIFO (resume)" 2 \
        "@include is not allowed in a stored config" -- "$bin" resume -e 3 "$tmp/r"
    printf '@include "fifo"\n' > "$tmp/inc-fifo.cfg"
    expect "a FIFO as an @include" 2 "$tmp/inc-fifo.cfg:1: @include \"fifo\": $fifo: not a regular file (a FIFO)" -- \
        "$bin" check "$tmp/inc-fifo.cfg"
    printf 'name = "x";\n@include "/dev/stdin"\n' > "$tmp/inc-stdin.cfg"
    exec 3<> "$fifo"
    expect "/dev/stdin (a pipe) as an @include" 2 "@include \"/dev/stdin\": /dev/stdin: not a regular file" -- \
        "$bin" check "$tmp/inc-stdin.cfg" <&3
    exec 3<&-
}

# Checkpoints taken apart and put together again: the 8-byte little-endian header length,
# the JSON header, the tensor data.
header_len() { od -An -tu8 -N8 "$1" | tr -d ' '; }
header_of() { head -c $((8 + $(header_len "$1"))) "$1" | tail -c +9; }
tensors_of() { tail -c +$((9 + $(header_len "$1"))) "$1"; }
le64() {
    local i out=""
    for i in 0 8 16 24 32 40 48 56; do out+=$(printf '\\x%02x' $(($1 >> i & 255))); done
    printf "$out"
}
# put_checkpoint OUT HEADER_FILE DATA_FROM: a checkpoint of that header and DATA_FROM's data.
put_checkpoint() {
    { le64 "$(stat -c %s "$2")"; cat "$2"; tensors_of "$3"; } > "$1"
}
# without_checksum IN OUT: IN with its checksum metadata blanked out (as an older lenet-omp
# wrote it), the rest unchanged.
without_checksum() {
    header_of "$1" | sed 's/,"checksum":"crc32:[0-9a-f]\{8\}"/                            /' > "$tmp/h.json"
    put_checkpoint "$2" "$tmp/h.json" "$1"
}
# with_nan FILE: the last float of FILE's data (the last tensor's last value) set to NaN.
with_nan() {
    printf '\x00\x00\xc0\x7f' | dd of="$1" bs=1 seek=$(($(stat -c %s "$1") - 4)) conv=notrunc 2> /dev/null
}

# be32 N: N as 4 big-endian bytes (IDX headers).
be32() {
    printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) \
        $(($1 >> 8 & 255)) $(($1 & 255)))"
}

# expect_small NAME KIB STATUS [NEEDLE...] -- COMMAND...: expect, and the command's peak
# resident memory stays below KIB (measured by tests/peak_rss.c).
expect_small() {
    local name=$1 kib=$2
    shift 2
    expect "$name" "$@"
    shift $(($(printf '%s\n' "$@" | grep -n -x -- '--' | head -n 1 | cut -d: -f1)))
    "$peak_rss" "$tmp/rss" "$@" > /dev/null 2>&1
    local rss
    rss=$(cat "$tmp/rss")
    if [ "$rss" -lt "$kib" ]; then
        echo "ok   $name: peak memory $((rss / 1024)) MiB, below $((kib / 1024)) MiB"
    else
        echo "FAIL $name: peak memory $((rss / 1024)) MiB, not below $((kib / 1024)) MiB"
        fails=$((fails + 1))
    fi
}

memory() {
    [ -x "$peak_rss" ] || { echo "FAIL memory: no PEAK_RSS program given"; exit 1; }
    # What the small check itself takes (the sanitizer builds take more), plus 48 MiB: every
    # case below took 190 MiB or more before the fix.
    "$peak_rss" "$tmp/rss" "$bin" check "$tmp/small.cfg" > /dev/null
    local limit=$(($(cat "$tmp/rss") + 48 * 1024)) n=250000
    # A gzip IDX of 1 MB that promises 250,000 images of 28x28 (196 MB) and expands 50 MB
    # further: refused before anything is allocated for its data.
    { printf '\x00\x00\x08\x03'; be32 $n; be32 28; be32 28; head -c $((n * 784 + 50000000)) /dev/zero; } |
        gzip -1 > "$tmp/over.gz"
    { printf '\x00\x00\x08\x01'; be32 $n; head -c $n /dev/zero; } > "$tmp/labels-n.idx"
    expect_small "a gzip IDX expanding past its header's promise" "$limit" 2 \
        "$tmp/over.gz: trailing data after $n images" -- \
        "$bin" check --set "data.train_images=\"$tmp/over.gz\"" \
        --set "data.train_labels=\"$tmp/labels-n.idx\"" "$tmp/small.cfg"
    # A complete gzip IDX of 250,000 images against 60 labels: the counts are compared first.
    { printf '\x00\x00\x08\x03'; be32 $n; be32 28; be32 28; head -c $((n * 784)) /dev/zero; } |
        gzip -1 > "$tmp/images-n.gz"
    expect_small "a gzip IDX whose image count disagrees with its labels" "$limit" 2 \
        "$tmp/data/train-labels.idx: holds 60 labels but the image file $tmp/images-n.gz holds $n images" -- \
        "$bin" check --set "data.train_images=\"$tmp/images-n.gz\"" "$tmp/small.cfg"
    # A 1 KB checkpoint whose stored config gives C1 50,000 filters (its tensors are the small
    # run's): info and test allocated and zeroed 400 MiB or more before checking the tensors.
    header_of "$ckpt" | sed 's/filters = 2\\n/filters = 50000\\n/' > "$tmp/h.json"
    grep -q 'filters = 50000' "$tmp/h.json" || { echo "FAIL the huge-layer checkpoint"; exit 1; }
    put_checkpoint "$tmp/huge.safetensors" "$tmp/h.json" "$ckpt"
    expect_small "info on a checkpoint whose config declares a huge layer" "$limit" 2 \
        "$tmp/huge.safetensors: tensor 'C1.weight' has a shape other than the network's" -- \
        "$bin" info "$tmp/huge.safetensors"
    expect_small "test on a checkpoint whose config declares a huge layer" "$limit" 2 \
        "$tmp/huge.safetensors: tensor 'C1.weight' has a shape other than the network's" -- \
        "$bin" test "$tmp/huge.safetensors"
    # An endless metrics.csv (sparse: 300 MB of NUL bytes after its header): plot's getline
    # took the whole line; refused before reading. A long line within the size limit too.
    rm -rf "$tmp/endless"
    cp -r "$tmp/run" "$tmp/endless"
    truncate -s 300M "$tmp/endless/metrics.csv"
    expect_small "plot on an endless metrics.csv" "$limit" 2 \
        "$tmp/endless/metrics.csv: too large (314572800 bytes" -- "$bin" plot "$tmp/endless"
    expect_small "resume with an endless metrics.csv" "$limit" 2 \
        "$tmp/endless/metrics.csv: too large (314572800 bytes" -- "$bin" resume -e 3 "$tmp/endless"
    cp "$tmp/run/metrics.csv" "$tmp/endless/metrics.csv"
    head -c 100000000 /dev/zero | tr '\0' 1 >> "$tmp/endless/metrics.csv"
    expect_small "plot on a metrics.csv with a line of 100 MB" "$limit" 2 \
        "$tmp/endless/metrics.csv:4: the line is longer than 1022 bytes" -- "$bin" plot "$tmp/endless"
}

runs() {
    # A checkpoint with a NaN weight (as one written by an older lenet-omp, without a
    # checksum): resuming trained an epoch and called it "the last good checkpoint".
    rm -rf "$tmp/r"
    cp -r "$tmp/run" "$tmp/r"
    without_checksum "$ckpt" "$tmp/r/epoch-02.safetensors"
    with_nan "$tmp/r/epoch-02.safetensors"
    expect "resume from a checkpoint with a NaN weight" 2 \
        "$tmp/r/epoch-02.safetensors: tensor 'F.bias' holds NaN or Inf values" -- \
        "$bin" resume -e 3 "$tmp/r"

    # Checkpoint names take their padding from the run, not from the train.epochs of the
    # moment: a 2-epoch run (epoch-01, epoch-02) extended to 100 epochs linked
    # best.safetensors to epoch-001 or -002, which do not exist, and exited 2. (The learning
    # rate after epoch 2 is too small to change anything, so the best epoch stays 1 or 2.)
    write_config "$tmp/long.cfg" long 100 "$tmp/data"
    sed -i 's/schedule = .*/schedule = ( { epochs = 2; lr = 0.05; }, { epochs = 98; lr = 1e-30; } ); };/' \
        "$tmp/long.cfg"
    "$bin" -e 2 --output "$tmp/long" "$tmp/long.cfg" > /dev/null
    expect "a 2-epoch run extended to 100 epochs" 0 "Testing on $tmp/long/best.safetensors" -- \
        "$bin" resume -e 100 "$tmp/long"
    local best
    best=$(readlink "$tmp/long/best.safetensors")
    expect "  ... keeps its names (epoch-03, epoch-100) and links the best, $best" 0 -- \
        test -e "$tmp/long/epoch-03.safetensors" -a -e "$tmp/long/epoch-100.safetensors" \
        -a -e "$tmp/long/best.safetensors" -a \( "$best" = epoch-01.safetensors -o \
        "$best" = epoch-02.safetensors \)
    expect "  ... and is complete when resumed again" 0 "the run is complete (100 epochs)" -- \
        "$bin" resume -e 100 "$tmp/long"
    expect "  ... and shrunk to 50 epochs, has nothing to train" 0 "is past epoch 50" -- \
        "$bin" resume -e 50 "$tmp/long"
    expect "  ... its best link still valid" 0 -- test -e "$tmp/long/best.safetensors"

    # name = "." or "..": runs/. is runs/ itself, runs/.. the working directory.
    expect "name = \"..\"" 2 "'name' must not be '..'" -- \
        "$bin" check --set 'name=".."' "$tmp/small.cfg"
    mkdir -p "$tmp/cwd"
    expect "name = \".\" (train)" 2 "'name' must not be '.'" -- \
        bash -c "cd '$tmp/cwd' && exec '$bin' --set 'name=\".\"' '$tmp/small.cfg'"
    expect "  ... writes nothing" 0 -- test -z "$(ls -A "$tmp/cwd")"

    # A byte that is not UTF-8 in a run name, a layer name, a data path: the run would write
    # only checkpoints that do not load.
    expect "a run name that is not UTF-8" 2 "'name' is not valid UTF-8 (byte 0xff at offset 1)" -- \
        "$bin" check --set "name=\"x$(printf '\xff')\"" "$tmp/small.cfg"
    sed "s/name = \"F\"/name = \"F$(printf '\xe9')\"/" "$tmp/small.cfg" > "$tmp/latin1.cfg"
    expect "a layer name that is not UTF-8" 2 "$tmp/latin1.cfg:5: 'name' is not valid UTF-8" -- \
        "$bin" --output "$tmp/latin1" "$tmp/latin1.cfg"
    cp "$tmp/data/test-labels.idx" "$tmp/labels-$(printf '\xfe').idx"
    expect "a data path that is not UTF-8" 2 "'test_labels' is not valid UTF-8" -- \
        "$bin" check --set "data.test_labels=\"$tmp/labels-$(printf '\xfe').idx\"" "$tmp/small.cfg"

    # Training into a run directory that holds a run's checkpoints left the old run's later
    # epochs behind (and resume took them for this run's): refused, the old run intact.
    "$bin" --output "$tmp/again" "$tmp/small.cfg" > /dev/null
    cp "$tmp/again/epoch-01.safetensors" "$tmp/again-01.copy"
    expect "training into a directory holding a run's checkpoints" 2 \
        "$tmp/again already holds the checkpoints of a run (the newest: $tmp/again/epoch-02.safetensors)" -- \
        "$bin" -e 1 --output "$tmp/again" "$tmp/small.cfg"
    expect "  ... leaves the old run as it was" 0 -- \
        cmp -s "$tmp/again/epoch-01.safetensors" "$tmp/again-01.copy"
    expect "  ... and check says so" 0 "note: $tmp/again already holds the checkpoints of a run" -- \
        "$bin" check --set "output_dir=\"$tmp/again\"" "$tmp/small.cfg"

    # A failed write of predict -o deleted the previous file.
    printf 'P2\n3 3\n255\n0 0 0 0 255 0 0 0 0\n' > "$tmp/dot.pgm"
    mkdir -p "$tmp/fitted"
    "$bin" predict -o "$tmp/fitted" "$ckpt" "$tmp/dot.pgm" > /dev/null
    cp "$tmp/fitted/001.png" "$tmp/fitted.copy"
    # (the limit on the command alone: its message goes through a pipe, which has none)
    expect "predict -o that cannot write (ulimit -f 0)" 2 "$tmp/fitted/001.png: cannot write" -- \
        bash -c "set -o pipefail; (ulimit -f 0; exec '$bin' predict -o '$tmp/fitted' '$ckpt' \
                 '$tmp/dot.pgm') 2>&1 > /dev/null | cat >&2"
    expect "  ... keeps the previous file" 0 -- cmp -s "$tmp/fitted/001.png" "$tmp/fitted.copy"
}

silent() {
    # libconfig 1.5 ignores the rest of a file after an unclosed /*, wraps integer literals
    # without L to 32 bits and clamps those with L to 64 bits.
    cp "$tmp/small.cfg" "$tmp/comment.cfg"
    printf 'seed = 5;\n/* train = { epochs = 1000; };\n' >> "$tmp/comment.cfg"
    local n=$(wc -l < "$tmp/comment.cfg")
    expect "an unclosed /* comment" 2 "$tmp/comment.cfg:$n: a /* comment opened here is not closed" -- \
        "$bin" check "$tmp/comment.cfg"
    cp "$tmp/small.cfg" "$tmp/seed.cfg"
    echo 'seed = 18446744073709551621L;' >> "$tmp/seed.cfg"
    n=$(wc -l < "$tmp/seed.cfg")
    expect "a seed beyond 64 bits" 2 "$tmp/seed.cfg:$n: integer 18446744073709551621L is beyond the 64-bit range" -- \
        "$bin" check "$tmp/seed.cfg"
    cp "$tmp/small.cfg" "$tmp/seed32.cfg"
    echo 'seed = 4294967297;' >> "$tmp/seed32.cfg"
    expect "a seed beyond 32 bits without L" 2 "$tmp/seed32.cfg:$n: integer 4294967297 is beyond" -- \
        "$bin" check "$tmp/seed32.cfg"
    # zlib's gzread skipped whatever follows a gzip stream.
    gzip -c "$tmp/data/test-images.idx" > "$tmp/junk.gz"
    printf 'junk' >> "$tmp/junk.gz"
    expect "junk after a gzip stream" 2 "$tmp/junk.gz: 4 bytes of junk after the end of the gzip stream" -- \
        "$bin" check --set "data.test_images=\"$tmp/junk.gz\"" "$tmp/small.cfg"
    # NaN weights in test and predict; a checkpoint changed after it was written.
    without_checksum "$ckpt" "$tmp/nan.safetensors"
    with_nan "$tmp/nan.safetensors"
    expect "test on a checkpoint with a NaN weight" 2 \
        "$tmp/nan.safetensors: tensor 'F.bias' holds NaN or Inf values (the first at index 9): not a usable checkpoint" -- \
        "$bin" test "$tmp/nan.safetensors"
    printf 'P2\n2 2\n255\n0 255 255 0\n' > "$tmp/x.pgm"
    expect "predict with a checkpoint with a NaN weight" 2 \
        "$tmp/nan.safetensors: tensor 'F.bias' holds NaN or Inf values" -- \
        "$bin" predict "$tmp/nan.safetensors" "$tmp/x.pgm"
    cp "$ckpt" "$tmp/changed.safetensors"
    printf '\x01' | dd of="$tmp/changed.safetensors" bs=1 seek=$(($(stat -c %s "$ckpt") - 8)) conv=notrunc 2> /dev/null
    expect "test on a checkpoint changed after it was written" 2 \
        "$tmp/changed.safetensors: the checksum does not match the contents" -- \
        "$bin" test "$tmp/changed.safetensors"
    without_checksum "$ckpt" "$tmp/old.safetensors"
    expect "an older checkpoint without a checksum: info says so" 0 \
        "checksum: none (written by an older lenet-omp" -- "$bin" info "$tmp/old.safetensors"
    expect "an older checkpoint without a checksum: test reads it, with a note" 0 \
        "err:lenet-omp: note: $tmp/old.safetensors has no checksum" -- \
        "$bin" test "$tmp/old.safetensors"
    # check accepted test images of another size than the training images (train refused).
    mkdir -p "$tmp/small20"
    { printf '\x00\x00\x08\x03'; be32 3; be32 20; be32 20; head -c 1200 /dev/zero; } > "$tmp/small20/images.idx"
    { printf '\x00\x00\x08\x01'; be32 3; printf '\x01\x02\x03'; } > "$tmp/small20/labels.idx"
    expect "check: test images of another size" 2 \
        "$tmp/small20/images.idx: images are 20x20 but the training images are 28x28" -- \
        "$bin" check --set "data.test_images=\"$tmp/small20/images.idx\"" \
        --set "data.test_labels=\"$tmp/small20/labels.idx\"" "$tmp/small.cfg"
    expect "a seed override beyond 64 bits" 2 "override 'seed=18446744073709551621': the integer is beyond the 64-bit range" -- \
        "$bin" check --set seed=18446744073709551621 "$tmp/small.cfg"
}

messages() {
    # @include: a directory is named with the directive's file and line; nested includes are
    # relative to their own file; absolute paths work (docs/config.md).
    mkdir -p "$tmp/inc/sub/deeper"
    printf '@include "sub"\n' > "$tmp/inc/dir.cfg"
    expect "a directory as @include" 2 "$tmp/inc/dir.cfg:1: @include \"sub\": $tmp/inc/sub: not a regular file (a directory)" -- \
        "$bin" check "$tmp/inc/dir.cfg"
    grep -v '^train' "$tmp/small.cfg" > "$tmp/inc/top.cfg"
    echo '@include "sub/train.cfg"' >> "$tmp/inc/top.cfg"
    printf 'train = {\n  @include "deeper/schedule.cfg"\n};\n' > "$tmp/inc/sub/train.cfg"
    printf 'epochs = 2; batch_size = 10;\nschedule = ( { epochs = 2; lr = 0.05; } );\n' \
        > "$tmp/inc/sub/deeper/schedule.cfg"
    expect "a nested @include relative to its own file" 0 "ok (run 'small'" -- \
        "$bin" check "$tmp/inc/top.cfg"
    grep -v '^train' "$tmp/small.cfg" > "$tmp/abs.cfg"
    echo "@include \"$tmp/inc/sub/train.cfg\"" >> "$tmp/abs.cfg"
    expect "an absolute @include" 0 "ok (run 'small'" -- "$bin" check "$tmp/abs.cfg"
    printf 'epochs = 2; batch_size = 10;\nschedule = ( { epochs = 2; lr = -1; } );\n' \
        > "$tmp/inc/sub/deeper/schedule.cfg"
    expect "an error in a nested @include names that file and line" 2 \
        "$tmp/inc/sub/deeper/schedule.cfg:2: schedule row 1: 'lr' must be greater than 0" -- \
        "$bin" check "$tmp/inc/top.cfg"

    # A run directory whose name is not UTF-8 (a surrogate, an overlong form, beyond U+10FFFF,
    # U+FFFE): its name went into errors.svg as it was, which xmllint rejected.
    local odd="$tmp/run-$(printf '\xed\xa0\x80\xe0\x80\xaf\xf4\x90\x80\x80\xef\xbf\xbe')"
    cp -r "$tmp/run" "$odd"
    expect "plot of a run directory named with invalid UTF-8" 0 "$odd/errors.svg" -- \
        "$bin" plot "$odd"
    if command -v xmllint > /dev/null; then
        expect "  ... writes an SVG that xmllint accepts" 0 -- xmllint --noout "$odd/errors.svg"
    elif [ -n "${CI:-}" ]; then
        echo "FAIL xmllint is missing (Debian: libxml2-utils); CI needs it"
        fails=$((fails + 1))
    else
        echo "skip xmllint is missing: the SVG is not checked"
    fi
    expect "  ... whose text is UTF-8 (iconv)" 0 -- iconv -f UTF-8 -t UTF-8 -o /dev/null "$odd/errors.svg"

    # output_dir = "": ': cannot create directory' named nothing.
    cp "$tmp/small.cfg" "$tmp/empty-out.cfg"
    echo 'output_dir = "";' >> "$tmp/empty-out.cfg"
    local n=$(wc -l < "$tmp/empty-out.cfg")
    expect "output_dir = \"\"" 2 "$tmp/empty-out.cfg:$n: 'output_dir' must not be empty" -- \
        "$bin" check "$tmp/empty-out.cfg"
    # 2,000,000,000 epochs passed check and then gave only "out of memory"; schedule rows of
    # 2^31-1 epochs overflowed int in check and in the learning-rate lookup.
    expect "2,000,000,000 epochs" 2 "'epochs' must be at most 1000000, got 2000000000" -- \
        "$bin" check --set train.epochs=2000000000 "$tmp/small.cfg"
    sed 's/schedule = .*/schedule = ( { epochs = 2147483647; lr = 0.1; }, { epochs = 2147483647; lr = 0.2; } ); };/' \
        "$tmp/small.cfg" > "$tmp/rows.cfg"
    n=$(grep -n '^train' "$tmp/rows.cfg" | cut -d: -f1)
    expect "schedule rows of 2^31-1 epochs" 2 \
        "$tmp/rows.cfg:$n: schedule row 1: 'epochs' must be at most 1000000, got 2147483647" -- \
        "$bin" check "$tmp/rows.cfg"
}

case $class in
hangs) hangs ;;
runs) runs ;;
memory) memory ;;
silent) silent ;;
messages) messages ;;
*) echo "unknown class '$class'"; exit 1 ;;
esac
echo "$fails failed"
[ "$fails" -eq 0 ]
