#!/usr/bin/env bash
# An agent's loop over the zart CLI: schedule, wait, inspect, approve, wait for the result.
# It relies on nothing but exit codes, the documented lines and `--json`. Usage: agent_loop.sh ID DATA
set -euo pipefail

id="$1"
data="$2"

zart schedule t.event --data "$data" --id "$id"
zart schedule t.event --data "$data" --id "$id" > /dev/null  # a retried step of the agent: harmless

# The workflow parks on its "approval" event: a short wait times out (exit 2) until it is parked.
for _ in $(seq 1 60); do
    code=0
    zart wait "$id" --timeout 1 --json > waited.json || code=$?
    if [ "$code" -ne 2 ]; then
        echo "wait exited $code before the approval" >&2
        exit 1
    fi
    if grep -q '"status":"waiting"' waited.json; then
        break
    fi
done

zart status "$id" > status.txt
grep -qx "waiting_for: event approval" status.txt

zart event "$id" approval --data '{"approved": true, "reviewer": "agent"}'
zart wait "$id" --timeout 60 > result.json
zart status "$id" --json > final.json
echo "agent done"
