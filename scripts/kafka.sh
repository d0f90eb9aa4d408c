#!/usr/bin/env bash
# A single-node Apache Kafka (KRaft) broker for development and CI, from Apache's own jars on Maven Central.
#   scripts/kafka.sh start    resolve the jars (once), format storage, start on a free loopback port, wait until it serves
#   scripts/kafka.sh stop     stop it cleanly
#   scripts/kafka.sh restart  stop it and start it again on the same port with the same data
#   scripts/kafka.sh status   say whether it runs, and where
#   scripts/kafka.sh env      print KAFKA_BROKERS=host:port of the running broker
# Idempotent: start on a running broker only prints where it is. State lives in .cache/kafka/ (ignored by git).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
home="$root/.cache/kafka"
libs="$home/libs"
# a test may run a private broker of its own in another folder
run="${KAFKA_RUN_DIR:-$home/run}"
mkdir -p "$home"

log() { printf 'kafka: %s\n' "$*" >&2; }

running() { [ -f "$run/pid" ] && kill -0 "$(cat "$run/pid")" 2>/dev/null; }

resolve() {
  if [ -f "$libs/.complete" ]; then return; fi
  log "resolving the broker's jars from Maven Central (once)"
  rm -rf "$libs"
  # Maven talks on stdout: only the KAFKA_BROKERS line may go there
  mvn -q -B -Dstyle.color=never -f "$root/kafka/pom.xml" dependency:copy-dependencies -DoutputDirectory="$libs" -DincludeScope=runtime 1>&2
  touch "$libs/.complete"
}

free_port() { node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }

java_cmd() { java -Xms128m -Xmx512m -Dkafka.logs.dir="$run/logs" -Dlog4j2.configurationFile="$root/kafka/log4j2.yaml" -cp "$libs/*" "$@"; }

wait_serving() {
  local port=$1
  for _ in $(seq 1 120); do
    if ! running; then log "the broker exited; see $run/logs/server.log and $run/stdout.log"; tail -n 30 "$run/stdout.log" >&2 || true; return 1; fi
    if grep -q "Kafka Server started" "$run/logs/server.log" 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.5
  done
  log "the broker did not start within 60 s"; return 1
}

start() {
  if running; then log "already running at 127.0.0.1:$(cat "$run/port")"; echo "KAFKA_BROKERS=127.0.0.1:$(cat "$run/port")"; return; fi
  resolve
  rm -rf "$run"; mkdir -p "$run/logs" "$run/data"
  local port controller cluster
  port=$(free_port); controller=$(free_port)
  while [ "$controller" = "$port" ]; do controller=$(free_port); done
  cat > "$run/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$run/data
num.partitions=3
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
PROPS
  cluster=$(java_cmd kafka.tools.StorageTool random-uuid | tail -n 1)
  java_cmd kafka.tools.StorageTool format -t "$cluster" -c "$run/server.properties" > "$run/format.log" 2>&1
  echo "$port" > "$run/port"
  launch
}

launch() {
  local port; port=$(cat "$run/port")
  : > "$run/logs/server.log"
  nohup java -Xms256m -Xmx768m -Dkafka.logs.dir="$run/logs" -Dlog4j2.configurationFile="$root/kafka/log4j2.yaml" \
    -cp "$libs/*" kafka.Kafka "$run/server.properties" >> "$run/stdout.log" 2>&1 &
  echo $! > "$run/pid"
  wait_serving "$port"
  log "serving at 127.0.0.1:$port (pid $(cat "$run/pid"))"
  echo "KAFKA_BROKERS=127.0.0.1:$port"
}

stop() {
  if ! running; then log "not running"; return; fi
  local pid; pid=$(cat "$run/pid")
  kill -TERM "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || { log "stopped"; rm -f "$run/pid"; return; }; sleep 0.5; done
  log "still running after 30 s: killing"; kill -KILL "$pid" 2>/dev/null || true; rm -f "$run/pid"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) [ -f "$run/server.properties" ] || { log "nothing to restart"; exit 1; }; stop; launch ;;
  status) if running; then echo "running at 127.0.0.1:$(cat "$run/port") (pid $(cat "$run/pid"))"; else echo "not running"; exit 1; fi ;;
  env) running && echo "KAFKA_BROKERS=127.0.0.1:$(cat "$run/port")" ;;
  *) echo "usage: $0 start|stop|restart|status|env" >&2; exit 2 ;;
esac
