#!/usr/bin/env bash
# The method comparison of the docs, from scratch: `tokenclean compare`'s grid (params.yaml, `compare`) run as
# DVC experiments, JOBS at a time, then the tables written into results/ and the docs.
#
#   bash bench/compare.sh [JOBS]        # in a scratch copy of the repository: it commits and queues there
#
# Every experiment runs in its own DVC temporary workspace; the shared stages (generate, base, check, prepare,
# split) run once first, so the experiments restore them from DVC's run cache instead of each pretraining the
# base. `dvc exp show --json` is kept as results/experiments.json: `tokenclean compare --from-json
# results/experiments.json --docs README.md docs/evaluation.md` rebuilds every table from it.
set -euo pipefail
JOBS=${1:-2}
export DO_NOT_TRACK=1 DVC_NO_ANALYTICS=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
export GIT_AUTHOR_NAME=${GIT_AUTHOR_NAME:-tokenclean} GIT_AUTHOR_EMAIL=${GIT_AUTHOR_EMAIL:-tokenclean@localhost}
export GIT_COMMITTER_NAME=$GIT_AUTHOR_NAME GIT_COMMITTER_EMAIL=$GIT_AUTHOR_EMAIL
git rev-parse --is-inside-work-tree >/dev/null 2>&1 || git init -q
[ -d .dvc ] || python -m dvc init -q
git add -A && git commit -qm "compare: the baseline" || true   # experiments start from a commit
t0=$(date +%s)
python -m dvc repro split                     # shared by every experiment: into the run cache once
OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} python -m tokenclean.cli compare --queue --run --jobs "$JOBS"
python -m dvc exp show --json > results/experiments.json
python -m tokenclean.cli compare --from-json results/experiments.json --docs README.md docs/evaluation.md
echo "compare: $(( $(date +%s) - t0 )) s for $(grep -c '"name"' results/experiments.json) entries with $JOBS jobs"
