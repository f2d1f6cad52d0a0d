#!/usr/bin/env bash
# A local Parley cluster on this machine: the development Cassandra plus N nodes (default 3),
# node i on 127.0.0.(i+1) with the same ports on every address (Linux routes all of 127/8 to
# loopback; on macOS add the aliases first: sudo ifconfig lo0 alias 127.0.0.3 up, …).
#
#   deploy/local-cluster.sh [N]
#
# Node i serves clients on http://127.0.0.(i+1):8080 and Pekko Management (/ready, /alive,
# /cluster/members, /metrics, /shard-distribution) on :8558. Logs and Cassandra's data are in
# var/local-cluster/. Ctrl-C (or SIGTERM) stops the nodes gracefully, then Cassandra.
#
# The first three nodes are the seed nodes. Ports and the Cassandra port can be moved with
# PARLEY_HTTP_PORT, PARLEY_MANAGEMENT_PORT, PARLEY_REMOTE_PORT and PARLEY_CASSANDRA_PORT.
set -euo pipefail
cd "$(dirname "$0")/.."

nodes="${1:-3}"
if ! [[ $nodes =~ ^[0-9]+$ ]] || ((nodes < 1 || nodes > 200)); then
  echo "usage: deploy/local-cluster.sh [number of nodes, 1-200]" >&2
  exit 2
fi
http_port="${PARLEY_HTTP_PORT:-8080}"
management_port="${PARLEY_MANAGEMENT_PORT:-8558}"
remote_port="${PARLEY_REMOTE_PORT:-25520}"
cassandra_port="${PARLEY_CASSANDRA_PORT:-9042}"
state=var/local-cluster
mkdir -p "$state"

jar=target/parley.jar
if [[ ! -f $jar || ! -f target/cassandra.classpath || ! -d target/lib ]] \
  || [[ -n "$(find src/main conf persistence-schema pom.xml -newer "$jar" -type f -print -quit)" ]]; then
  echo "local-cluster: building the node (mvn package)..." >&2
  mvn --batch-mode --quiet -DskipTests package
fi
classpath="$jar:target/lib/*"

pids=()
cassandra_pid=""
stop_all() {
  trap - INT TERM EXIT
  if ((${#pids[@]})); then
    echo "local-cluster: stopping ${#pids[@]} node(s)..." >&2
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
  if [[ -n $cassandra_pid ]]; then
    echo "local-cluster: stopping Cassandra..." >&2
    kill -TERM "$cassandra_pid" 2>/dev/null || true
    wait "$cassandra_pid" 2>/dev/null || true
  fi
}
trap stop_all INT TERM EXIT

accepts() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

if accepts 127.0.0.1 "$cassandra_port"; then
  echo "local-cluster: something already listens on 127.0.0.1:$cassandra_port; stop it or set PARLEY_CASSANDRA_PORT" >&2
  exit 1
fi
# In a session of its own, so Ctrl-C in the terminal reaches the nodes only: Cassandra must
# outlive them while they hand their shards off, and is stopped last.
detach=()
if command -v setsid >/dev/null; then
  detach=(setsid)
fi
PARLEY_PROFILE=dev PARLEY_CASSANDRA_DATA_DIR="$state/cassandra" PARLEY_CASSANDRA_PORT="$cassandra_port" \
  PARLEY_CASSANDRA_STORAGE_PORT="${PARLEY_CASSANDRA_STORAGE_PORT:-7000}" \
  "${detach[@]}" java -cp "$classpath" parley.ops.LocalCassandra >"$state/cassandra.log" 2>&1 &
cassandra_pid=$!
echo "local-cluster: starting Cassandra on 127.0.0.1:$cassandra_port (log $state/cassandra.log)..." >&2
until grep -q "Cassandra for a local cluster" "$state/cassandra.log" 2>/dev/null; do
  if ! kill -0 "$cassandra_pid" 2>/dev/null; then
    echo "local-cluster: Cassandra did not start:" >&2
    tail -5 "$state/cassandra.log" >&2
    exit 1
  fi
  sleep 1
done

seeds=""
for ((i = 1; i <= nodes && i <= 3; i++)); do
  seeds+="${seeds:+,}pekko://Parley@127.0.0.$((i + 1)):$remote_port"
done

for ((i = 1; i <= nodes; i++)); do
  host="127.0.0.$((i + 1))"
  PARLEY_PROFILE=dev \
    PARLEY_HOST="$host" PARLEY_REMOTE_PORT="$remote_port" \
    PARLEY_HTTP_INTERFACE="$host" PARLEY_HTTP_PORT="$http_port" \
    PARLEY_MANAGEMENT_HOST="$host" PARLEY_MANAGEMENT_PORT="$management_port" \
    PARLEY_SEED_NODES="$seeds" \
    PARLEY_CASSANDRA_CONTACT_POINTS="127.0.0.1:$cassandra_port" \
    PARLEY_APPLY_SCHEMA_ON_START=false \
    java ${PARLEY_JAVA_OPTS:--Xmx512m} -cp "$classpath" parley.app.Main run >"$state/node-$host.log" 2>&1 &
  pids+=($!)
done

for ((i = 1; i <= nodes; i++)); do
  host="127.0.0.$((i + 1))"
  until curl -fs "http://$host:$management_port/ready" >/dev/null; do
    if ! kill -0 "${pids[$((i - 1))]}" 2>/dev/null; then
      echo "local-cluster: node $host exited:" >&2
      tail -5 "$state/node-$host.log" >&2
      exit 1
    fi
    sleep 1
  done
  echo "node $host ready: client API http://$host:$http_port  management http://$host:$management_port  log $state/node-$host.log"
done
echo "local-cluster: $nodes node(s) up; Ctrl-C stops them all."
wait "${pids[@]}"
