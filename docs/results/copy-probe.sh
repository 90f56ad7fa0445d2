#!/bin/sh
# docs/results/copy-probe.sh — does a small language model copy? (docs/results.md §3)
# Each 256-byte window of the probe is a 128-byte span of Brown's validation
# text followed by the same span again. Two loss masks score the same bytes
# twice: "first" the span's bytes 1–127 in the first copy, "copy" the same
# bytes in the second copy, where the first copy is in the context. A model
# that copies (an induction head) has a much lower "copy" loss; one that does
# not has about the same loss on both. 512 windows, every one scored.
# Models: softmax, 1+ELU, Hedgehog (± distillation) of configs/small-seeds.sweep
# and configs/scale-2x.sweep; writes docs/results/copy-probe.csv.
#   docs/results/copy-probe.sh      (from the repository root, after the sweeps)
set -eu
here=docs/results
P=out/copy-probe
mkdir -p $P
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
# The probe's shards (llm.c's format, docs/data.md): python3's standard library.
[ -f $P/probe.bin ] || python3 - data/brown/byte_val_000000.bin $P <<'PY'
import struct, sys
T, H, W = 256, 128, 512          # window, span, windows
raw = open(sys.argv[1], 'rb').read()
n = struct.unpack('<256i', raw[:1024])[2]
text = struct.unpack('<%dH' % n, raw[1024:1024 + 2 * n])
data, first, copy = [], [], []
for w in range(W):
    span = list(text[w * H:(w + 1) * H])
    data += span + span
    first += [1 if 1 <= o < H else 0 for o in range(T)]
    copy += [1 if H + 1 <= o < T else 0 for o in range(T)]
data.append(text[W * H]); first.append(0); copy.append(0)   # the last target
def shard(path, tokens):
    head = [20240520, 1, len(tokens)] + [0] * 253
    open(path, 'wb').write(struct.pack('<256i', *head) + struct.pack('<%dH' % len(tokens), *tokens))
shard(sys.argv[2] + '/probe.bin', data)
shard(sys.argv[2] + '/first.mask', first)
shard(sys.argv[2] + '/copy.mask', copy)
PY
loss() { sed -n 's/^val_loss=\([^ ]*\).*/\1/p' "$1"; }   # the masked loss a ./train log ends with
{
    echo "run,width,variant,seed,loss_first,loss_copy"
    for d in out/sweeps/small-seeds/attention-softmax_seed-*/ out/sweeps/small-seeds/attention-elu_seed-*/ \
             out/sweeps/small-seeds/attention-hedgehog_seed-*/ out/sweeps/small-seeds/attention-hedgehog_distill_weight-1_seed-*/ \
             out/sweeps/scale-2x/*/; do
        [ -f $d/done ] || continue
        sweep=$(basename $(dirname $d)); run=$(basename $d)
        width=1x; [ $sweep = scale-2x ] && width=2x
        for m in first copy; do
            f=$P/$sweep-$run-$m.log
            grep -qs '^val_loss=' $f || ./train $d/config.txt init_from=$d/model.ckpt max_steps=0 resume=0 val_data=$P/probe.bin \
                val_mask=$P/$m.mask eval_batches=64 out_dir=$P/run > $f 2>&1 ||
                { echo "copy-probe.sh: evaluating $d failed, see $f" >&2; exit 1; }
        done
        v=${run%_seed-*}; s=${run##*_seed-}
        echo "$sweep/$run,$width,$v,$s,$(loss $P/$sweep-$run-first.log),$(loss $P/$sweep-$run-copy.log)"
    done
} > $here/copy-probe.csv.new      # a failed evaluation leaves the last table whole
mv $here/copy-probe.csv.new $here/copy-probe.csv
echo "wrote $here/copy-probe.csv"
