#!/bin/bash
# The one use the compose file's health check makes of apache/kafka's /opt/kafka/bin/kafka-topics.sh:
# `--bootstrap-server HOST:PORT --list` answers once the broker takes connections. The stand-in's jars are the
# broker's (no tools jar), so this checks the listener only, and refuses every other use loudly.
set -euo pipefail
server=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bootstrap-server) server="$2"; shift 2 ;;
    --list) shift ;;
    *) echo "kafka-topics.sh (diffrelay stand-in) supports only --bootstrap-server HOST:PORT --list, not: $1" >&2; exit 2 ;;
  esac
done
: "${server:?--bootstrap-server HOST:PORT is required}"
exec 3<>"/dev/tcp/${server%:*}/${server##*:}"
