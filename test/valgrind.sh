#!/usr/bin/env bash
# test/valgrind.sh BINDIR — memcheck on short runs of BINDIR/train (every
# attention kind, a resume, an evaluation, a rejected input) and BINDIR/sample.
# Any invalid read or write, use of uninitialised memory, or definite or
# indirect leak fails (exit 1). `make valgrind` builds BINDIR without OpenMP.
set -u
bin=${1:-build/vg}
command -v valgrind >/dev/null || { echo "valgrind: not installed"; exit 1; }
dir=$(mktemp -d /tmp/hh_valgrind_XXXXXX)
trap 'rm -rf "$dir"' EXIT

le32() { local v=$1; printf "$(printf '\\%03o\\%03o\\%03o\\%03o' $((v & 255)) $((v >> 8 & 255)) $((v >> 16 & 255)) $((v >> 24 & 255)))"; }
# A byte-level shard of the first 3000 bytes of some text (or a fixed pattern).
text=../shared/data/tinyshakespeare/input.txt
[ -f "$text" ] || { yes 'the hedgehog attends to every token, softly.' | head -c 3000 > "$dir/text"; text=$dir/text; }
{
    le32 20240520; le32 1; le32 3000; head -c 1012 /dev/zero
    for b in $(head -c 3000 "$text" | od -An -v -tx1); do printf "\\x$b\\x00"; done
} > "$dir/tok.bin"

VG=(valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect
    --errors-for-leak-kinds=definite,indirect --track-origins=yes)
ARGS="vocab_size=256 n_layer=1 n_head=2 n_embd=16 seq_len=16 batch_size=2 chunk_size=4 eval_batches=1 log_every=1
      eval_every=0 tokenizer=byte train_data=$dir/tok.bin val_data=$dir/tok.bin"
fail=0
check() {  # check EXPECTED_STATUS NAME CMD...
    local want=$1 name=$2; shift 2
    "${VG[@]}" "$@" > "$dir/$name.log" 2>&1
    local rc=$?
    if [ $rc -ne "$want" ]; then
        echo "!! valgrind $name: exit $rc (want $want)"; tail -n 40 "$dir/$name.log"; fail=1
    else
        echo "ok: $name"
    fi
}
for kind in softmax taylor elu performer hedgehog; do
    check 0 "train_$kind" "$bin/train" $ARGS attention=$kind max_steps=2 out_dir="$dir/$kind"
done
check 0 train_resume "$bin/train" $ARGS max_steps=4 resume=1 out_dir="$dir/softmax"
check 0 train_eval "$bin/train" $ARGS max_steps=0 init_from="$dir/softmax/model.ckpt" out_dir="$dir/eval"
check 0 train_distill "$bin/train" $ARGS attention=hedgehog distill_weight=0.5 max_steps=2 out_dir="$dir/distill"
check 1 train_rejects "$bin/train" $ARGS n_layer=2 max_steps=2 init_from="$dir/softmax/model.ckpt" out_dir="$dir/bad"
# SIGINT mid-run: the step finishes, the checkpoint is saved, exit 130, nothing leaked.
"${VG[@]}" "$bin/train" $ARGS max_steps=100000 out_dir="$dir/signal" > "$dir/train_signal.log" 2>&1 &
pid=$!
for _ in $(seq 600); do
    [ "$(grep -c '^[0-9]' "$dir/signal/metrics.csv" 2>/dev/null)" -ge 3 ] 2>/dev/null && break
    sleep 0.1
done
kill -INT $pid
wait $pid
rc=$?
if [ $rc -ne 130 ]; then echo "!! valgrind train_signal: exit $rc (want 130)"; tail -n 40 "$dir/train_signal.log"; fail=1
else echo "ok: train_signal"; fi
check 0 sample_ids "$bin/sample" "$dir/softmax/model.ckpt" -n 12 -i 1
check 0 sample_text "$bin/sample" "$dir/hedgehog/model.ckpt" -n 12
check 1 sample_rejects "$bin/sample" "$dir/tok.bin"
[ $fail -eq 0 ] && echo "valgrind: no errors, no leaks"
exit $fail
