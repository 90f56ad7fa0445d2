#!/bin/sh
# docs/results/analysis.sh — the paper's mechanism statistics (entropy,
# monotonicity, distance from softmax on the same q, k) for every small-LM
# model of configs/small-seeds.sweep, three seeds a variant (docs/results.md §6).
# Each model: ./analyze on the first 4 × 256 bytes of Brown's validation set
# into out/analysis/lm-RUN (its per-head analysis.csv and heatmaps); then
#   analysis-small-seeds.csv          a row per model: means over its 16 heads,
#                                     and its least monotone head's Spearman
#   analysis-small-seeds-summary.csv  a row per variant: mean and sample std
#                                     of those over seeds
#   docs/results/analysis.sh        (from the repository root, after the sweep)
set -eu
here=docs/results
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
{
    echo "run,variant,seed,entropy,entropy_softmax,kl_softmax_model,spearman,spearman_min_head"
    for d in out/sweeps/small-seeds/*/; do
        [ -f $d/done ] || continue
        run=$(basename $d)
        A=out/analysis/lm-$run
        if [ ! -f $A/analysis.csv ]; then
            ./analyze $d/model.ckpt data/brown/byte_val_000000.bin --out $A > $A.log 2>&1 ||
                { echo "analysis.sh: ./analyze failed on $d, see $A.log" >&2; exit 1; }
        fi
        awk -F, -v run=$run '
            NR == 1 { next }
            { n++; e += $3; es += $4; kl += $5; sp += $6; if (n == 1 || $6 < lo) lo = $6 }
            END {
                v = run; s = run; sub(/_seed-[0-9]+$/, "", v); sub(/.*_seed-/, "", s)
                printf "%s,%s,%s,%.4f,%.4f,%.4f,%.4f,%.4f\n", run, v, s, e / n, es / n, kl / n, sp / n, lo
            }' $A/analysis.csv
    done
} > $here/analysis-small-seeds.csv
awk -F, '
NR == 1 { for (i = 4; i <= NF; i++) name[i] = $i; nf = NF; next }
{
    v = $2; if (!(v in n)) order[++nv] = v
    n[v]++
    for (i = 4; i <= nf; i++) { sum[v, i] += $i; sq[v, i] += $i * $i }
}
END {
    printf "variant,n"
    for (i = 4; i <= nf; i++) printf ",%s_mean,%s_std", name[i], name[i]
    printf "\n"
    for (k = 1; k <= nv; k++) {
        v = order[k]; printf "%s,%d", v, n[v]
        for (i = 4; i <= nf; i++) {
            m = sum[v, i] / n[v]
            var = n[v] > 1 ? (sq[v, i] - n[v] * m * m) / (n[v] - 1) : 0
            sd = var > 0 ? sqrt(var) : 0   # rounding can take it just below 0
            if (m == m + 1) printf ",inf,nan"   # T2R: KL from rows with exact zeros
            else printf ",%.4f,%.4f", m, sd
        }
        printf "\n"
    }
}' $here/analysis-small-seeds.csv > $here/analysis-small-seeds-summary.csv
