#!/usr/bin/env bash
# A local Parley cluster on this machine: the development Cassandra plus nodes, node i on
# 127.0.0.(i+1) with the same ports on every address (Linux routes all of 127/8 to loopback;
# on macOS add the aliases first: sudo ifconfig lo0 alias 127.0.0.3 up, ...).
#
#   deploy/local-cluster.sh start [N]       Cassandra (if not running) and nodes 1..N (default 3)
#                                           in the background; returns once each is ready
#   deploy/local-cluster.sh run [N]         the same in the foreground: reports nodes that exit,
#                                           and Ctrl-C stops the whole cluster (also: `... N`)
#   deploy/local-cluster.sh status          each node (ready, not ready, stopped, died) and the
#                                           members node by node; exit 1 if a node is not ready
#   deploy/local-cluster.sh stop            every node gracefully, then Cassandra
#   deploy/local-cluster.sh stop-node I     node I gracefully (SIGTERM: it hands its shards off)
#   deploy/local-cluster.sh kill-node I     node I with SIGKILL, as a crash
#   deploy/local-cluster.sh restart-node I  stop node I if it runs, start it again, wait until ready
#   deploy/local-cluster.sh add-node I      start node I (any I; it joins through the seeds)
#   deploy/local-cluster.sh logs I          follow node I's log (tail -f)
#
# Node i serves clients on http://127.0.0.(i+1):8080 and Pekko Management (/ready, /alive,
# /cluster/members, /metrics, /shard-distribution) on :8558. The first three nodes are the
# seed nodes. State is in var/local-cluster/ (PARLEY_LOCAL_CLUSTER_DIR): Cassandra's data,
# run/ (pid files), events.log (every node start and exit, with its exit code) and logs/, one
# folder per cluster start, node-I.log appended to across restarts (logs/current points to it).
# Cassandra is stopped only by `stop`, or when `run` ends.
#
# Settings, read by `start`/`run` and kept in run/cluster.env for the node commands:
#   PARLEY_HTTP_PORT (8080), PARLEY_MANAGEMENT_PORT (8558), PARLEY_REMOTE_PORT (25520),
#   PARLEY_CASSANDRA_PORT (9042), PARLEY_CASSANDRA_STORAGE_PORT (7000),
#   PARLEY_LOCAL_CLUSTER_FIRST_HOST (2: node 1 on 127.0.0.2), PARLEY_JAVA_OPTS (-Xmx512m);
#   PARLEY_CASSANDRA_CONTACT_POINTS: use that Cassandra (schema applied) and start none.
set -euo pipefail
cd "$(dirname "$0")/.."

state="${PARLEY_LOCAL_CLUSTER_DIR:-var/local-cluster}"
run_dir="$state/run"
env_file="$run_dir/cluster.env"
events="$state/events.log"

say() { echo "local-cluster: $*" >&2; }
die() { say "$*"; exit 1; }
now() { date -u +%Y-%m-%dT%H:%M:%SZ; }
alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
accepts() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
# A session of its own, so Ctrl-C in the terminal reaches neither Cassandra nor the nodes.
detach=()
command -v setsid >/dev/null && detach=(setsid)

usage() {
  sed -n '2,29p' "$0" >&2
  exit 2
}

node_number() {
  [[ ${1:-} =~ ^[0-9]+$ ]] && ((10#$1 >= 1 && 10#$1 <= 200)) || die "a node number (1-200) is needed, got '${1:-}'"
}

build_if_needed() {
  local jar=target/parley.jar
  if [[ ! -f $jar || ! -f target/cassandra.classpath || ! -d target/lib ]] \
    || [[ -n "$(find src/main conf persistence-schema pom.xml -newer "$jar" -type f -print -quit)" ]]; then
    say "building the node (mvn package)..."
    mvn --batch-mode --quiet -DskipTests package
  fi
}

# The cluster's settings, fixed when it starts so that a node restarted later gets the same.
write_settings() {
  local count=$1 first="${PARLEY_LOCAL_CLUSTER_FIRST_HOST:-2}" seeds="" i
  local remote="${PARLEY_REMOTE_PORT:-25520}"
  for ((i = 0; i < count && i < 3; i++)); do
    seeds+="${seeds:+,}pekko://Parley@127.0.0.$((first + i)):$remote"
  done
  mkdir -p "$run_dir" "$state/logs"
  local logs="$state/logs/$(date -u +%Y%m%dT%H%M%SZ)"
  mkdir -p "$logs"
  ln -sfn "$(basename "$logs")" "$state/logs/current"
  {
    echo "first_host=$first"
    echo "http_port=${PARLEY_HTTP_PORT:-8080}"
    echo "management_port=${PARLEY_MANAGEMENT_PORT:-8558}"
    echo "remote_port=$remote"
    echo "cassandra_port=${PARLEY_CASSANDRA_PORT:-9042}"
    echo "cassandra_storage_port=${PARLEY_CASSANDRA_STORAGE_PORT:-7000}"
    echo "external_cassandra=${PARLEY_CASSANDRA_CONTACT_POINTS:-}"
    echo "seeds=$seeds"
    echo "java_opts='${PARLEY_JAVA_OPTS:--Xmx512m}'"
    echo "logs=$logs"
  } >"$env_file"
}

read_settings() {
  [[ -f $env_file ]] || die "no cluster here ($env_file is missing): start one with 'deploy/local-cluster.sh start'"
  # shellcheck disable=SC1090
  source "$env_file"
}

host_of() { echo "127.0.0.$((first_host + $1 - 1))"; }

contact_points() {
  if [[ -n $external_cassandra ]]; then echo "$external_cassandra"; else echo "127.0.0.1:$cassandra_port"; fi
}

start_cassandra() {
  [[ -n $external_cassandra ]] && return 0
  if alive "$run_dir/cassandra.pid"; then
    return 0
  fi
  if accepts 127.0.0.1 "$cassandra_port"; then
    die "something else listens on 127.0.0.1:$cassandra_port; stop it or set PARLEY_CASSANDRA_PORT"
  fi
  local log="$state/cassandra.log"
  say "starting Cassandra on 127.0.0.1:$cassandra_port (log $log)..."
  PARLEY_PROFILE=dev PARLEY_CASSANDRA_DATA_DIR="$state/cassandra" PARLEY_CASSANDRA_PORT="$cassandra_port" \
    PARLEY_CASSANDRA_STORAGE_PORT="$cassandra_storage_port" \
    "${detach[@]}" java -cp "target/parley.jar:target/lib/*" parley.ops.LocalCassandra >"$log" 2>&1 </dev/null &
  echo $! >"$run_dir/cassandra.pid"
  until grep -q "Cassandra for a local cluster" "$log" 2>/dev/null; do
    alive "$run_dir/cassandra.pid" || { tail -5 "$log" >&2; die "Cassandra did not start"; }
    sleep 1
  done
}

# Starts node I detached. A watcher shell waits for it and records its exit in events.log:
# "stopped" when one of these commands stopped it, "died" otherwise, with the exit code.
start_node() {
  local i=$1 host log
  host=$(host_of "$i")
  log="$logs/node-$i.log"
  alive "$run_dir/node-$i.pid" && die "node $i ($host) already runs (pid $(cat "$run_dir/node-$i.pid"))"
  rm -f "$run_dir/node-$i.stopping"
  echo "---- $(now) node $i starting on $host" >>"$log"
  echo "$(now) node $i ($host) started" >>"$events"
  PARLEY_PROFILE=dev \
    PARLEY_HOST="$host" PARLEY_REMOTE_PORT="$remote_port" \
    PARLEY_HTTP_INTERFACE="$host" PARLEY_HTTP_PORT="$http_port" \
    PARLEY_MANAGEMENT_HOST="$host" PARLEY_MANAGEMENT_PORT="$management_port" \
    PARLEY_SEED_NODES="$seeds" \
    PARLEY_CASSANDRA_CONTACT_POINTS="$(contact_points)" \
    PARLEY_APPLY_SCHEMA_ON_START=false \
    NODE=$i HOST="$host" LOG="$log" EVENTS="$events" PID_FILE="$run_dir/node-$i.pid" \
    STOPPING="$run_dir/node-$i.stopping" JAVA_OPTS="$java_opts" \
    "${detach[@]}" bash -c '
      java $JAVA_OPTS -cp "target/parley.jar:target/lib/*" parley.app.Main run >>"$LOG" 2>&1 </dev/null &
      echo $! >"$PID_FILE"
      wait $!
      code=$?
      how=died
      [[ -f $STOPPING ]] && how=stopped
      echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) node $NODE ($HOST) $how, exit code $code" >>"$EVENTS"
      rm -f "$PID_FILE" "$STOPPING"' </dev/null >/dev/null 2>&1 &
  until [[ -s $run_dir/node-$i.pid ]]; do sleep 0.1; done
}

await_ready() {
  local i=$1 host
  host=$(host_of "$i")
  until curl -fs "http://$host:$management_port/ready" >/dev/null; do
    if ! alive "$run_dir/node-$i.pid"; then
      tail -5 "$logs/node-$i.log" >&2
      die "node $i ($host) exited (log $logs/node-$i.log)"
    fi
    sleep 1
  done
  echo "node $i ready: client API http://$host:$http_port  management http://$host:$management_port  log $logs/node-$i.log"
}

stop_node() {
  local i=$1 signal=$2 pid
  alive "$run_dir/node-$i.pid" || { say "node $i is not running"; return 0; }
  pid=$(cat "$run_dir/node-$i.pid")
  [[ $signal == TERM ]] && touch "$run_dir/node-$i.stopping"
  kill "-$signal" "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
  # The watcher writes the exit to events.log and removes the pid file.
  while [[ -f $run_dir/node-$i.pid ]]; do sleep 0.1; done
  say "node $i $([[ $signal == TERM ]] && echo stopped || echo killed)"
}

known_nodes() {
  local f
  for f in "$run_dir"/node-*.pid "$logs"/node-*.log; do
    [[ -e $f ]] || continue
    f=${f##*/node-}
    echo "${f%%.*}"
  done | sort -nu
}

stop_all() {
  local i
  for i in $(known_nodes); do
    alive "$run_dir/node-$i.pid" && touch "$run_dir/node-$i.stopping" && kill -TERM "$(cat "$run_dir/node-$i.pid")"
  done
  for i in $(known_nodes); do
    while alive "$run_dir/node-$i.pid"; do sleep 0.2; done
  done
  if alive "$run_dir/cassandra.pid"; then
    say "stopping Cassandra..."
    local pid
    pid=$(cat "$run_dir/cassandra.pid")
    kill -TERM "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
  fi
  rm -f "$run_dir/cassandra.pid"
  say "cluster stopped (logs in $logs)"
}

status() {
  local i host line bad=0 members
  if [[ -n $external_cassandra ]]; then
    echo "cassandra: external, $external_cassandra"
  elif alive "$run_dir/cassandra.pid"; then
    echo "cassandra: running on 127.0.0.1:$cassandra_port (pid $(cat "$run_dir/cassandra.pid"))"
  else
    echo "cassandra: stopped"
  fi
  for i in $(known_nodes); do
    host=$(host_of "$i")
    if alive "$run_dir/node-$i.pid"; then
      if curl -fs "http://$host:$management_port/ready" >/dev/null; then
        members=$(curl -fs "http://$host:$management_port/cluster/members" | grep -o '"status":"Up"' | wc -l || true)
        echo "node $i ($host): ready, pid $(cat "$run_dir/node-$i.pid"), sees $members member(s) Up"
      else
        echo "node $i ($host): running, not ready, pid $(cat "$run_dir/node-$i.pid")"
        bad=1
      fi
    else
      line=$(grep " node $i ($host) " "$events" 2>/dev/null | tail -1 || true)
      echo "node $i ($host): not running; last: ${line:-never started}"
      bad=1
    fi
  done
  return $bad
}

# Foreground mode: reports every node exit as it happens; Ctrl-C stops the whole cluster.
follow_events() {
  trap 'stop_all; exit 0' INT TERM
  say "cluster up; node exits are reported here; Ctrl-C stops the whole cluster."
  tail -n 0 -F "$events" 2>/dev/null | while read -r line; do
    case "$line" in *" died, "* | *" stopped, "*) say "$line" ;; esac
  done &
  wait
}

command="${1:-start}"
if [[ $command =~ ^[0-9]+$ ]]; then
  set -- run "$command"
  command=run
fi
case "$command" in
  start | run)
    count="${2:-3}"
    [[ $count =~ ^[0-9]+$ ]] && ((count >= 1 && count <= 200)) || die "usage: deploy/local-cluster.sh $command [number of nodes, 1-200]"
    for pid_file in "$run_dir"/*.pid; do
      alive "$pid_file" && die "a cluster already runs here ($pid_file); 'status', 'add-node', or 'stop' it first"
    done
    build_if_needed
    write_settings "$count"
    read_settings
    start_cassandra
    for ((i = 1; i <= count; i++)); do start_node "$i"; done
    for ((i = 1; i <= count; i++)); do await_ready "$i"; done
    say "$count node(s) up"
    if [[ $command == run ]]; then follow_events; fi
    ;;
  status) read_settings; status ;;
  stop) read_settings; stop_all ;;
  stop-node | kill-node | restart-node | add-node | logs)
    node_number "${2:-}"
    i=$((10#$2))
    read_settings
    case "$command" in
      stop-node) stop_node "$i" TERM ;;
      kill-node) stop_node "$i" KILL ;;
      restart-node) stop_node "$i" TERM; start_cassandra; start_node "$i"; await_ready "$i" ;;
      add-node) start_cassandra; start_node "$i"; await_ready "$i" ;;
      logs) exec tail -n 50 -F "$logs/node-$i.log" ;;
    esac
    ;;
  -h | --help | help) usage ;;
  *) usage ;;
esac
