#!/bin/sh
# nightly.sh DIR — a nightly job, started by cron on one host or on several
# hosts sharing DIR (over NFS, SMB, sshfs), that uses dotlock where a script
# would use flock(1):
#
#   1. Only one run at a time. A run that finds another still going skips
#      itself (flock -n's job; dotlock's lock also works across hosts, and
#      if the run holding it is killed, it is reclaimed: at once on this
#      host, after the lease on others).
#   2. Publishing the report takes several commands, under a second lock
#      held across them with `dotlock --lock --pid $$` ... `dotlock -u`.
#      Readers take that lock shared and never see the report half replaced:
#          dotlock -s DIR/report.lock cat DIR/report/summary.txt
#
# crontab, for example:
#   15 2 * * *  /opt/jobs/nightly.sh /shared/nightly
#
# DIR holds input/ (the data), work/, report/ and the locks. dotlock must be
# on PATH (CGO_ENABLED=0 go install ./cmd/dotlock), or named by $DOTLOCK.

set -eu
DOTLOCK=${DOTLOCK:-dotlock}
DIR=${1:?usage: nightly.sh DIR}

# --- 1. One run at a time ---------------------------------------------------
#
# flock's man page idiom, with dotlock: run this same script again, under the
# lock DIR/nightly.lock. dotlock puts DOTLOCK_PATH (the lock) and
# DOTLOCK_TOKEN (this hold's fencing token) in the command's environment, so
# the second time through we know we hold it.
#   -n      do not wait if another run holds the lock ...
#   -E 3    ... and exit 3 then (not 1, which could be this script's own failure).
if [ -z "${DOTLOCK_PATH:-}" ]; then
	status=0
	"$DOTLOCK" -n -E 3 "$DIR/nightly.lock" "$0" "$@" || status=$?
	if [ "$status" -eq 3 ]; then
		echo "nightly: skipped: another run holds $DIR/nightly.lock:"
		"$DOTLOCK" --status "$DIR/nightly.lock" || true # who, since when, alive or not
		exit 0
	fi
	exit "$status"
fi
echo "nightly[$$]: running under $DOTLOCK_PATH, token $DOTLOCK_TOKEN"

# --- 2. The work: needs only the run lock -----------------------------------
mkdir -p "$DIR/work" "$DIR/report"
sort "$DIR"/input/* >"$DIR/work/all.txt"
wc -l <"$DIR/work/all.txt" | tr -d ' ' >"$DIR/work/count.txt"
echo "nightly[$$]: sorted $(cat "$DIR/work/count.txt") lines"

# --- 3. Publish: several commands under the report lock ---------------------
#
# `dotlock --lock --pid $$` takes the lock for this shell (process $$) and
# returns at once; it stays held across the commands that follow, until
# `dotlock -u`, or until this shell exits: if the script fails here
# (set -e) or is killed, its lock is reclaimed at once on this host, and by
# other hosts after the lease (30 s) — never left behind.
#   -w 600  wait at most 10 minutes for readers to finish (exit 1 after that).
"$DOTLOCK" --lock --pid $$ -w 600 "$DIR/report.lock"
"$DOTLOCK" --status "$DIR/report.lock" # held by pid $$: this shell
cp "$DIR/work/all.txt" "$DIR/report/all.txt"
cp "$DIR/work/count.txt" "$DIR/report/count.txt"
echo "$(cat "$DIR/work/count.txt") lines, run token $DOTLOCK_TOKEN" >"$DIR/report/summary.txt"
"$DOTLOCK" -u "$DIR/report.lock" # release what `dotlock --lock` took for this shell
echo "nightly[$$]: published $DIR/report"
