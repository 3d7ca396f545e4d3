#!/usr/bin/env bash
# cli_errors.sh - the command line refuses bad input cleanly: exit status 2 (never a crash),
# one "lenet-omp: <file>..." message on stderr naming the file at fault, nothing written.
#
# Usage: bash tests/cli_errors.sh LENET_OMP_BINARY MAKE_IDX_BINARY TESTS_SOURCE_DIR
# Prints one line per case ("ok - ..." or "FAIL - ..."); exits 1 if any case failed.
set -u

if [ $# -ne 3 ]; then
    echo "usage: $0 LENET_OMP_BINARY MAKE_IDX_BINARY TESTS_SOURCE_DIR" >&2
    exit 2
fi
bin=$1
make_idx=$2
tests_dir=$3
configs=$tests_dir/configs
good=$configs/good_minimal.cfg

for f in "$bin" "$make_idx"; do
    if [ ! -x "$f" ]; then
        echo "FAIL - $f is not an executable" >&2
        exit 1
    fi
done
if [ ! -f "$good" ]; then
    echo "FAIL - $good not found (is TESTS_SOURCE_DIR right?)" >&2
    exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/lenet-cli-errors.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

failures=0
cases=0
out=$tmp/stdout
err=$tmp/stderr

pass() { cases=$((cases + 1)); echo "ok - $1"; }
failed() {
    cases=$((cases + 1))
    failures=$((failures + 1))
    echo "FAIL - $1: $2"
    if [ -s "$err" ]; then sed 's/^/    stderr: /' "$err" | head -n 20; fi
}

# expect NAME STATUS [NEEDLE ...] -- COMMAND ...
# Runs COMMAND; passes when it exits with STATUS and its output holds every NEEDLE (stderr
# for STATUS != 0, stdout for STATUS 0; "err:"/"out:" before a needle picks the stream).
# For STATUS 2 the stderr must also have a line starting "lenet-omp: ".
expect() {
    local name=$1 want=$2 needle stream text
    shift 2
    local needles=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do
        needles+=("$1")
        shift
    done
    shift
    timeout 120 "$@" >"$out" 2>"$err" </dev/null
    local rc=$?
    if [ $rc -eq 124 ]; then
        failed "$name" "timed out"
        return
    fi
    if [ $rc -ge 128 ]; then
        failed "$name" "crashed with status $rc (signal $((rc - 128)))"
        return
    fi
    if [ $rc -ne "$want" ]; then
        failed "$name" "exit status $rc, expected $want"
        return
    fi
    if [ "$want" -eq 2 ] && ! grep -q '^lenet-omp: ' "$err"; then
        failed "$name" "no 'lenet-omp: ' message on stderr"
        return
    fi
    for needle in ${needles[@]+"${needles[@]}"}; do
        stream=$err
        [ "$want" -eq 0 ] && stream=$out
        case $needle in
            out:*) stream=$out; needle=${needle#out:} ;;
            err:*) stream=$err; needle=${needle#err:} ;;
        esac
        text=$(cat "$stream")
        if [[ "$text" != *"$needle"* ]]; then
            failed "$name" "output lacks '$needle'"
            return
        fi
    done
    pass "$name"
}

# Small valid data (28x28 synthetic digits), so that configs get past loading their data:
# shape errors and the absurd networks are only found when the network is built on it.
data=$tmp/data
mkdir -p "$data"
if ! "$make_idx" "$data" 40 20 7 >/dev/null; then
    echo "FAIL - $make_idx could not write the synthetic data" >&2
    exit 1
fi
with_data=(--set "data.train_images=\"$data/train-images.idx\""
           --set "data.train_labels=\"$data/train-labels.idx\""
           --set "data.test_images=\"$data/test-images.idx\""
           --set "data.test_labels=\"$data/test-labels.idx\"")

# --- every bad config: status 2, the file named, nothing written ---------------------------
n_bad=0
for cfg in "$configs"/bad_*.cfg; do
    [ -e "$cfg" ] || continue
    n_bad=$((n_bad + 1))
    base=$(basename "$cfg" .cfg)
    run_dir=$tmp/runs/$base
    expect "$base: refused" 2 "lenet-omp: $cfg" -- \
        "$bin" "${with_data[@]}" --output "$run_dir" "$cfg"
    if [ -e "$run_dir" ]; then
        failed "$base: nothing written" "$run_dir was created for a bad config"
    else
        pass "$base: nothing written"
    fi
done
if [ "$n_bad" -lt 20 ]; then
    failed "bad configs found" "only $n_bad files match $configs/bad_*.cfg"
else
    pass "bad configs found ($n_bad)"
fi

# --- usage ---------------------------------------------------------------------------------
expect "no argument" 2 "expected one CONFIG" -- "$bin"
expect "two configs" 2 "expected one CONFIG" -- "$bin" "$good" "$good"
expect "test without a checkpoint" 2 "expected one CHECKPOINT" -- "$bin" test
expect "unknown option" 2 "unknown option '--no-such-option'" "try --help" -- \
    "$bin" --no-such-option "$good"
expect "unknown short option" 2 "unknown option '-Q'" "try --help" -- "$bin" -Q "$good"
expect "--help" 0 "Usage:" "lenet-omp train" "--set" "docs/config.md" -- "$bin" --help
expect "-h" 0 "Usage:" "lenet-omp train" -- "$bin" -h
expect "test --help" 0 "Usage:" "lenet-omp train" -- "$bin" test --help
expect "--version" 0 "lenet-omp " -- "$bin" --version
expect "-V" 0 "lenet-omp " -- "$bin" -V
expect "--epochs 0" 2 "--epochs" "'0'" -- "$bin" --epochs 0 --output "$tmp/o" "$good"
expect "--epochs abc" 2 "--epochs" "'abc'" -- "$bin" --epochs abc --output "$tmp/o" "$good"
expect "--threads -1" 2 "--threads" "'-1'" -- "$bin" --threads -1 --output "$tmp/o" "$good"
expect "--epochs without a value" 2 "missing value for option" "try --help" -- \
    "$bin" "$good" --epochs
expect "--set without '='" 2 "nokey" "key=value" -- "$bin" --set nokey --output "$tmp/o" "$good"
expect "--set on a list" 2 "layers=3" "not a scalar" -- \
    "$bin" --set layers=3 --output "$tmp/o" "$good"
expect "--set with a bad value" 2 "$good:" "'batch_size'" -- \
    "$bin" "${with_data[@]}" --set train.batch_size=0 --output "$tmp/o" "$good"
expect "--set of an unknown key" 2 "$good" "unknown key 'lr'" -- \
    "$bin" "${with_data[@]}" --set train.lr=0.1 --output "$tmp/o" "$good"
expect "--epochs beyond the schedule" 2 "$good:" "covers 3 epochs" -- \
    "$bin" "${with_data[@]}" --epochs 4 --output "$tmp/o" "$good"
if [ -e "$tmp/o" ]; then
    failed "usage errors write nothing" "$tmp/o was created"
else
    pass "usage errors write nothing"
fi

# --- the config file itself ----------------------------------------------------------------
expect "missing config" 2 "$tmp/no-such.cfg" -- "$bin" --output "$tmp/o" "$tmp/no-such.cfg"
expect "config is a directory" 2 "$tmp/data" -- "$bin" --output "$tmp/o" "$tmp/data"
: >"$tmp/empty.cfg"
expect "empty config" 2 "$tmp/empty.cfg" "missing required" -- \
    "$bin" --output "$tmp/o" "$tmp/empty.cfg"
head -c 300 /dev/urandom >"$tmp/random.cfg"
expect "random bytes as config" 2 "$tmp/random.cfg" -- "$bin" --output "$tmp/o" "$tmp/random.cfg"

# --- checkpoints ---------------------------------------------------------------------------
expect "test: missing checkpoint" 2 "$tmp/no-such.safetensors" -- \
    "$bin" test "$tmp/no-such.safetensors"
expect "test: a config file" 2 "$good" "not a safetensors file" -- "$bin" test "$good"
: >"$tmp/empty.safetensors"
expect "test: an empty file" 2 "$tmp/empty.safetensors" -- "$bin" test "$tmp/empty.safetensors"
head -c 4096 /dev/urandom >"$tmp/random.safetensors"
expect "test: random bytes" 2 "$tmp/random.safetensors" -- "$bin" test "$tmp/random.safetensors"
# a valid safetensors header that is not a lenet-omp checkpoint
header='{"__metadata__":{"format":"something else"}}'
# 8-byte little-endian header length (below 256 here), then the JSON header
printf "\\x$(printf %02x "${#header}")\\000\\000\\000\\000\\000\\000\\000%s" "$header" \
    >"$tmp/foreign.safetensors"
expect "test: a foreign safetensors file" 2 "$tmp/foreign.safetensors" -- \
    "$bin" test "$tmp/foreign.safetensors"
expect "test: a directory" 2 "$tmp/data" -- "$bin" test "$tmp/data"

# --- data files ----------------------------------------------------------------------------
expect "missing training images" 2 "/nonexistent/x" -- \
    "$bin" "${with_data[@]}" --set 'data.train_images="/nonexistent/x"' --output "$tmp/o" "$good"
expect "missing test labels" 2 "/nonexistent/y" -- \
    "$bin" "${with_data[@]}" --set 'data.test_labels="/nonexistent/y"' --output "$tmp/o" "$good"
# IDX images must start 00 00 08 03; this one claims to be a label file (08 01)
printf '\x00\x00\x08\x01\x00\x00\x00\x02\x03\x04' >"$tmp/wrong-magic.idx"
expect "images with the wrong magic" 2 "$tmp/wrong-magic.idx" "magic" -- \
    "$bin" "${with_data[@]}" --set "data.train_images=\"$tmp/wrong-magic.idx\"" \
    --output "$tmp/o" "$good"
printf 'P5\n28 28\n255\n' >"$tmp/not-idx.idx"
expect "labels with the wrong magic" 2 "$tmp/not-idx.idx" -- \
    "$bin" "${with_data[@]}" --set "data.test_labels=\"$tmp/not-idx.idx\"" \
    --output "$tmp/o" "$good"
head -c 1000 "$data/train-images.idx" >"$tmp/truncated.idx"
expect "truncated images" 2 "$tmp/truncated.idx" "truncated" -- \
    "$bin" "${with_data[@]}" --set "data.train_images=\"$tmp/truncated.idx\"" \
    --output "$tmp/o" "$good"
: >"$tmp/empty.idx"
expect "empty images file" 2 "$tmp/empty.idx" -- \
    "$bin" "${with_data[@]}" --set "data.train_images=\"$tmp/empty.idx\"" \
    --output "$tmp/o" "$good"
# 40 training images but the 20 test labels
expect "label count differs from image count" 2 "$data/test-labels.idx" -- \
    "$bin" "${with_data[@]}" --set "data.train_labels=\"$data/test-labels.idx\"" \
    --output "$tmp/o" "$good"
if [ -e "$tmp/o" ]; then
    failed "data errors write nothing" "$tmp/o was created"
else
    pass "data errors write nothing"
fi

echo "$((cases - failures)) of $cases cases passed"
[ "$failures" -eq 0 ]
