#!/bin/sh
# Stands in for an application process: writes a timestamp to $1 every minute.
set -eu
while true; do
    date -u +%Y-%m-%dT%H:%M:%SZ > "$1"
    sleep 60
done
