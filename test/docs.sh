#!/usr/bin/env bash
# test/docs.sh — the documentation names no path of one particular machine
# (an absolute path into /work, /home, /root or /Users; /tmp is
# every machine's scratch): every reader
# has the repository, nobody has the author's disk. Checks README.md,
# docs/, configs/ and test/reference/README.md.
set -u
cd "$(dirname "$0")/.."
hits=$(grep -nE '(^|[^A-Za-z0-9_.])/(work|home|root|Users)[A-Za-z0-9_./-]*' README.md docs/*.md configs/* \
       test/reference/README.md 2>/dev/null | grep -vE 'https?://')
if [ -n "$hits" ]; then
    echo "FAIL: absolute machine paths in the documentation:"
    echo "$hits"
    echo "test_docs: 0 passed, 1 failed, 0 skipped"
    exit 1
fi
echo "test_docs: 1 passed, 0 failed, 0 skipped"
