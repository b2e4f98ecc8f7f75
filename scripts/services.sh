#!/usr/bin/env bash
# scripts/services.sh — real backing services for Stockade's integration tests,
# without Docker: MariaDB, Redis, Apache Kafka (single-node KRaft) and FerretDB v1
# (MongoDB wire protocol, SQLite backend).
#
#   scripts/services.sh up     [mariadb|redis|kafka|ferretdb ...]   install + start + wait until ready
#   scripts/services.sh down   [service ...]                        stop exactly the recorded PIDs
#   scripts/services.sh status [service ...]                        exit 1 if any is not ready
#
# Everything binds to 127.0.0.1 and lives under <repo>/.services/ (git-ignored; or SERVICES_DIR):
#   .services/<name>.pid     PID of the process this script started
#   .services/<name>/        data + logs of that service
#   .services/bin/ferretdb   FerretDB binary built from the Go module proxy
#   .services/env            `export STOCKADE_*_URL=...` lines (source it)
# Kafka jars are fetched by Maven into scripts/kafka/lib/ (git-ignored).
#
# A private set of instances (the reliability tests use one): SERVICES_DIR=DIR holds their
# data, PIDs and env instead of .services/, on the ports SERVICES_MARIADB_PORT,
# SERVICES_REDIS_PORT, SERVICES_KAFKA_PORT (+ SERVICES_KAFKA_CONTROLLER_PORT) and
# SERVICES_FERRETDB_PORT (defaults 3306, 6379, 9092 + 9093, 27017). The FerretDB binary is
# still built once, in .services/bin/.
#
# Works from any cwd, with no stdin (CI=true). Needs root only to apt-get install
# missing Debian packages. Never kills anything but the PIDs recorded in .services/.
set -euo pipefail

SCRIPT_DIR="$(cd -P "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
ROOT="$(cd -P "$SCRIPT_DIR/.." && pwd -P)"
# Built artifacts (the FerretDB binary and its source) always live in the checkout's .services/;
# the running services in $SERVICES_DIR if set (a private set of instances, on the ports below:
# the reliability tests stop and kill theirs without touching the shared ones).
BUILD="$ROOT/.services"
SVC="$BUILD"
if [[ -n ${SERVICES_DIR:-} ]]; then
  # Absolute and without symlinks: a service is recognised by its cwd as /proc shows it.
  SVC="$(mkdir -p "$SERVICES_DIR" && cd -P "$SERVICES_DIR" && pwd -P)"
fi
KAFKA_DIR="$SCRIPT_DIR/kafka"
KAFKA_LIB="$KAFKA_DIR/lib"

ALL_SERVICES=(mariadb redis kafka ferretdb)

MARIADB_PORT="${SERVICES_MARIADB_PORT:-3306}"
REDIS_PORT="${SERVICES_REDIS_PORT:-6379}"
KAFKA_PORT="${SERVICES_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${SERVICES_KAFKA_CONTROLLER_PORT:-9093}"
FERRETDB_PORT="${SERVICES_FERRETDB_PORT:-27017}"

FERRETDB_MODULE=github.com/FerretDB/FerretDB
FERRETDB_VERSION=v1.24.2
FERRETDB_BIN="$BUILD/bin/ferretdb"
# Go toolchain fetched (as a Go module, like GOTOOLCHAIN does) only when the local go is missing/too old.
GO_BOOTSTRAP_TOOLCHAIN=go1.24.3

# Bounded waits (seconds); override through the environment if a machine is slow.
MARIADB_TIMEOUT="${SERVICES_MARIADB_TIMEOUT:-90}"
REDIS_TIMEOUT="${SERVICES_REDIS_TIMEOUT:-30}"
KAFKA_TIMEOUT="${SERVICES_KAFKA_TIMEOUT:-90}"
FERRETDB_TIMEOUT="${SERVICES_FERRETDB_TIMEOUT:-60}"
STOP_TIMEOUT="${SERVICES_STOP_TIMEOUT:-45}"

export DEBIAN_FRONTEND=noninteractive

# ---------------------------------------------------------------------------------------------
# small helpers

now_ms() { date +%s%3N; }
since() { # since START_MS -> "12.3s"
  local d=$(($(now_ms) - $1))
  printf '%d.%01ds' $((d / 1000)) $(((d % 1000) / 100))
}
say() { printf '[services] %s\n' "$*"; }
warn() { printf '[services] WARNING: %s\n' "$*" >&2; }
die() {
  printf '[services] ERROR: %s\n' "$*" >&2
  exit 1
}
show_log() { # show_log FILE [LINES]: tail of a log file, to stderr
  local f=$1 n=${2:-40}
  if [[ -s $f ]]; then
    printf -- '----- last %s lines of %s -----\n' "$n" "$f" >&2
    tail -n "$n" "$f" >&2 || true
    printf -- '----- end of %s -----\n' "$f" >&2
  else
    printf -- '(log %s is empty or missing)\n' "$f" >&2
  fi
}
fail_with_logs() { # fail_with_logs MESSAGE LOGFILE...
  local msg=$1
  shift
  local f
  for f in "$@"; do show_log "$f"; done
  die "$msg"
}

port_open() { # port_open PORT: true if something accepts TCP connections on 127.0.0.1:PORT
  timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}
port_owner() { # best-effort description of who listens on a port
  if command -v ss >/dev/null 2>&1; then
    ss -ltnpH "sport = :$1" 2>/dev/null | head -n 3 || true
  fi
}

pidfile() { printf '%s/%s.pid' "$SVC" "$1"; }
svc_logdir() { printf '%s/%s' "$SVC" "$1"; }

# Is any thread of PID still running (not a zombie)? Used while waiting for a stop, after the
# identity was checked: a dead process's cwd/cmdline vanish before it is fully gone.
proc_running() {
  local st
  kill -0 "$1" 2>/dev/null || return 1
  for st in /proc/"$1"/task/*/status; do
    [[ -r $st ]] || continue
    case $(awk '/^State:/ {print $2}' "$st" 2>/dev/null) in Z | X | '') ;; *) return 0 ;; esac
  done
  return 1
}

# Is PID a live (non-zombie) process that this script started for service NAME?
# Every service is started with its cwd inside .services/<name>/, and mariadbd/redis chdir
# into their data dir there too, so cwd + command name identify our process even if the
# PID was recycled by some unrelated program.
is_ours() {
  local name=$1 pid=$2 cwd cmd
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  proc_running "$pid" || return 1
  cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null) || return 1
  [[ $cwd == "$SVC/$name" || $cwd == "$SVC/$name/"* ]] || return 1
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  case $name in
    mariadb) [[ $cmd == *mariadbd* || $cmd == *mysqld* ]] ;;
    redis) [[ $cmd == *redis-server* ]] ;;
    kafka) [[ $cmd == *kafka.Kafka* ]] ;;
    ferretdb) [[ $cmd == *ferretdb* ]] ;;
    *) return 1 ;;
  esac
}

# Prints the recorded PID if that process is alive and ours; otherwise prints nothing, fails.
live_pid() {
  local name=$1 f pid
  f=$(pidfile "$name")
  [[ -f $f ]] || return 1
  pid=$(tr -dc '0-9' <"$f")
  [[ -n $pid ]] || return 1
  is_ours "$name" "$pid" || return 1
  printf '%s' "$pid"
}

# spawn NAME LOGFILE CMD...: start CMD in the background, detached from this shell's session
# (so Ctrl-C / the end of a CI step does not take it down), cwd = .services/NAME, stdin from
# /dev/null, stdout+stderr appended to LOGFILE, and record its PID in .services/NAME.pid.
# `setsid` without -f does not fork here (a background child of a non-interactive shell is not
# a process-group leader), so $! is the service's own PID.
spawn() {
  local name=$1 log=$2
  shift 2
  mkdir -p "$SVC/$name"
  printf '\n===== %s starting: %s\n' "$(date -u +%FT%TZ)" "$*" >>"$log"
  (cd "$SVC/$name" && exec setsid "$@") >>"$log" 2>&1 </dev/null &
  local pid=$! i
  printf '%s\n' "$pid" >"$(pidfile "$name")"
  SPAWNED_PID=$pid
  # until the subshell has exec'ed, /proc/PID still shows this script: give it a moment (up to
  # 20 s: on a loaded 2-core machine, fork + exec of a JVM has been seen to take seconds)
  for ((i = 0; i < 200; i++)); do
    if is_ours "$name" "$pid" || ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
}

# wait_ready NAME PID TIMEOUT CHECK_FN LOGFILE...: poll CHECK_FN until it succeeds; fail early
# (with the log tails) if the process dies, fail after TIMEOUT seconds.
wait_ready() {
  local name=$1 pid=$2 timeout=$3 check=$4
  shift 4
  local deadline=$((SECONDS + timeout))
  while true; do
    # Gone only if it stays gone: one failed look (/proc read mid-exec, a loaded machine) is
    # checked again a second later before the start is called failed.
    if [[ -n $pid ]] && ! is_ours "$name" "$pid" && { sleep 1; ! is_ours "$name" "$pid"; }; then
      rm -f "$(pidfile "$name")"
      fail_with_logs "$name: process $pid exited before becoming ready" "$@"
    fi
    if "$check"; then return 0; fi
    if ((SECONDS >= deadline)); then
      fail_with_logs "$name: not ready after ${timeout}s (pid ${pid:-?} still running; left running so you can inspect it, run '$0 down $name' to stop it)" "$@"
    fi
    sleep 1
  done
}

# stop NAME: SIGTERM the recorded PID, wait (bounded), SIGKILL if needed, remove the pid file.
stop_service() {
  local name=$1 f pid t0
  f=$(pidfile "$name")
  if [[ ! -f $f ]]; then
    say "$name: not running (no pid file)"
    return 0
  fi
  pid=$(tr -dc '0-9' <"$f")
  if [[ -z $pid ]] || ! is_ours "$name" "$pid"; then
    say "$name: stale pid file (pid ${pid:-none} is gone or not ours), removing it"
    rm -f "$f"
    return 0
  fi
  t0=$(now_ms)
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while proc_running "$pid" && ((SECONDS < deadline)); do sleep 0.25; done
  if proc_running "$pid"; then
    warn "$name: pid $pid did not exit ${STOP_TIMEOUT}s after SIGTERM, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 10))
    while proc_running "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
    if proc_running "$pid"; then die "$name: pid $pid survived SIGKILL"; fi
  fi
  rm -f "$f"
  say "$name: stopped pid $pid in $(since "$t0")"
}

ensure_port_free() { # ensure_port_free NAME PORT
  if port_open "$2"; then
    local who
    who=$(port_owner "$2")
    die "$1: port 127.0.0.1:$2 is already in use by a process this script did not start${who:+:
$who}
Stop it (or free the port) and retry; this script never kills processes it did not start."
  fi
}

# ---------------------------------------------------------------------------------------------
# installation (Debian packages, Maven jars, Go build)

pkg_installed() { [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]; }

# apt_install PKG...: installs the missing ones in one apt-get call. Services are started by
# this script only, so maintainer scripts must not start the system mariadb/redis: a
# policy-rc.d that says "no" is put in place for the duration of the install if none exists.
apt_install() {
  local missing=() p
  for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
  ((${#missing[@]})) || return 0
  if [[ $EUID -ne 0 ]]; then
    die "missing Debian packages: ${missing[*]} — run this script as root or: sudo apt-get install -y ${missing[*]}"
  fi
  command -v apt-get >/dev/null 2>&1 || die "missing packages ${missing[*]} and no apt-get (this script targets Debian 12)"
  local t0 log="$SVC/apt.log" policy=/usr/sbin/policy-rc.d made_policy=0 rc=0
  t0=$(now_ms)
  say "apt: installing ${missing[*]} ..."
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# temporary, created by stockade scripts/services.sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    made_policy=1
  fi
  {
    apt-get update -q &&
      apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}"
  } >>"$log" 2>&1 </dev/null || rc=$?
  if ((made_policy)); then rm -f "$policy"; fi
  ((rc == 0)) || fail_with_logs "apt-get install ${missing[*]} failed (exit $rc)" "$log"
  # The packages enable their own system services at boot; ours run from $SVC on the same
  # ports, so the system copies this install brought in must not start after a reboot.
  local svc
  for p in "${missing[@]}"; do
    case $p in
      mariadb-server) svc=mariadb ;;
      redis-server) svc=redis-server ;;
      *) continue ;;
    esac
    if command -v systemctl >/dev/null 2>&1; then systemctl disable "$svc" >>"$log" 2>&1 || true; fi
    if command -v update-rc.d >/dev/null 2>&1; then update-rc.d "$svc" disable >>"$log" 2>&1 || true; fi
  done
  say "apt: installed ${missing[*]} in $(since "$t0")"
}

# The Debian packages each selected service needs (plus toolchains only if missing).
packages_for() {
  local s pkgs=()
  for s in "$@"; do
    case $s in
      mariadb) pkgs+=(mariadb-server mariadb-client) ;;
      redis) pkgs+=(redis-server redis-tools) ;;
      kafka)
        command -v java >/dev/null 2>&1 || pkgs+=(openjdk-17-jre-headless)
        command -v mvn >/dev/null 2>&1 || pkgs+=(maven)
        ;;
      ferretdb)
        command -v go >/dev/null 2>&1 || pkgs+=(golang-go)
        [[ -e /etc/ssl/certs/ca-certificates.crt ]] || pkgs+=(ca-certificates)
        ;;
    esac
  done
  printf '%s\n' "${pkgs[@]}"
}

# --- Kafka: jars from Maven Central into scripts/kafka/lib (skipped when up to date) ---
kafka_fetch_jars() {
  local stamp="$KAFKA_LIB/.pom.sha256" want tmp log="$SVC/kafka/maven.log"
  want=$(sha256sum "$KAFKA_DIR/pom.xml" | cut -d' ' -f1)
  if [[ -f $stamp && "$(cat "$stamp")" == "$want" ]] && compgen -G "$KAFKA_LIB/kafka_2.13-*.jar" >/dev/null; then
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "kafka: mvn not found"
  local t0
  t0=$(now_ms)
  echo "kafka: fetching broker jars with Maven into $KAFKA_LIB ..."
  tmp="$KAFKA_DIR/target/lib.tmp"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  if ! mvn -B -q -f "$KAFKA_DIR/pom.xml" dependency:copy-dependencies \
    -Dkafka.lib.dir="$tmp" >"$log" 2>&1 </dev/null; then
    fail_with_logs "kafka: 'mvn dependency:copy-dependencies' failed" "$log"
  fi
  compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null || fail_with_logs "kafka: Maven ran but no kafka_2.13 jar was copied" "$log"
  printf '%s\n' "$want" >"$tmp/.pom.sha256"
  rm -rf "$KAFKA_LIB"
  mv "$tmp" "$KAFKA_LIB"
  echo "kafka: $(find "$KAFKA_LIB" -name '*.jar' | wc -l) jars in $KAFKA_LIB ($(since "$t0"))"
}

# --- FerretDB: built from the Go module proxy ---
# Why not `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2`: it cannot work for
# this module. (1) `go install pkg@version` looks up the module's deprecation via
# <proxy>/github.com/!ferret!d!b/!ferret!d!b/@v/list, which the proxy reachable here answers
# with "403 This module version is not available" (the .info/.mod/.zip of v1.24.2 are served
# fine). (2) Even when it does install, the binary panics at start-up: FerretDB v1 requires
# build/version/version.txt (generated by its Taskfile, not part of the module zip) whenever
# the main module is FerretDB itself. So: `go mod download` the exact version, copy the source
# to .services/src, write version.txt/commit.txt, and `go build ./cmd/ferretdb`.
go_cmd() { # prints the path of a go (>= 1.21, so GOTOOLCHAIN can fetch what go.mod asks for)
  local go minor
  go=$(command -v go || true)
  if [[ -z $go && -x /usr/local/go/bin/go ]]; then go=/usr/local/go/bin/go; fi
  [[ -n $go ]] || die "ferretdb: no 'go' command found"
  minor=$("$go" env GOVERSION 2>/dev/null | sed -n 's/^go1\.\([0-9]*\).*/\1/p')
  if [[ -n $minor ]] && ((minor >= 21)); then
    printf '%s' "$go"
    return 0
  fi
  # Debian 12's golang-go is 1.19: fetch a newer toolchain the way GOTOOLCHAIN does, as the
  # golang.org/toolchain module from the Go module proxy.
  local arch dir
  arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
  mkdir -p "$BUILD"
  dir=$(cd "$BUILD" && GOFLAGS=-modcacherw GO111MODULE=on "$go" mod download -json \
    "golang.org/toolchain@v0.0.1-$GO_BOOTSTRAP_TOOLCHAIN.linux-$arch" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  [[ -n $dir && -f $dir/bin/go ]] || die "ferretdb: $go is too old (need go >= 1.21) and fetching $GO_BOOTSTRAP_TOOLCHAIN failed"
  # module zips carry no file modes: set the exec bits the way `go` does when it switches toolchains
  chmod +x "$dir"/bin/* "$dir"/pkg/tool/*/* 2>/dev/null || true
  "$dir/bin/go" version >&2 || die "ferretdb: the fetched $GO_BOOTSTRAP_TOOLCHAIN does not run"
  printf '%s' "$dir/bin/go"
}

# (no `cmd | grep -q` under pipefail: grep exiting early makes the writer die of SIGPIPE)
ferretdb_version_ok() {
  local out
  out=$("$FERRETDB_BIN" --version 2>&1) || return 1
  [[ $'\n'"$out"$'\n' == *$'\n'"version: $FERRETDB_VERSION"$'\n'* ]]
}

ferretdb_build() {
  if [[ -x $FERRETDB_BIN ]] && ferretdb_version_ok; then
    return 0
  fi
  local t0 go json dir hash src log="$SVC/ferretdb/build.log"
  t0=$(now_ms)
  echo "ferretdb: building $FERRETDB_MODULE/cmd/ferretdb@$FERRETDB_VERSION ..."
  go=$(go_cmd)
  : >"$log"
  mkdir -p "$BUILD"
  if ! json=$(cd "$BUILD" && GOWORK=off GO111MODULE=on "$go" mod download -json "$FERRETDB_MODULE@$FERRETDB_VERSION" 2>>"$log" </dev/null); then
    printf '%s\n' "$json" >>"$log"
    fail_with_logs "ferretdb: 'go mod download $FERRETDB_MODULE@$FERRETDB_VERSION' failed" "$log"
  fi
  dir=$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  hash=$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Hash": "\([0-9a-f]*\)",\{0,1\}$/\1/p')
  [[ -n $dir && -d $dir/cmd/ferretdb ]] || {
    printf '%s\n' "$json" >>"$log"
    fail_with_logs "ferretdb: module source not found after go mod download" "$log"
  }
  src="$BUILD/src/ferretdb-$FERRETDB_VERSION"
  rm -rf "$src"
  mkdir -p "$BUILD/src"
  cp -R "$dir" "$src"
  chmod -R u+w "$src"
  printf '%s\n' "$FERRETDB_VERSION" >"$src/build/version/version.txt"
  if [[ -n $hash ]]; then printf '%s\n' "$hash" >"$src/build/version/commit.txt"; fi
  mkdir -p "$BUILD/bin"
  if ! (cd "$src" && GOWORK=off GOFLAGS=-buildvcs=false CGO_ENABLED=0 \
    "$go" build -trimpath -o "$FERRETDB_BIN.tmp" ./cmd/ferretdb) >>"$log" 2>&1 </dev/null; then
    fail_with_logs "ferretdb: go build failed" "$log"
  fi
  mv -f "$FERRETDB_BIN.tmp" "$FERRETDB_BIN"
  ferretdb_version_ok ||
    fail_with_logs "ferretdb: built binary does not report version $FERRETDB_VERSION" "$log"
  echo "ferretdb: built $FERRETDB_BIN ($("$go" env GOVERSION), $(since "$t0"))"
}

# ---------------------------------------------------------------------------------------------
# MariaDB

MARIADB_DATA="$SVC/mariadb/data"
MARIADB_LOG="$SVC/mariadb/mariadb.log"
mariadb_socket() {
  local s="$SVC/mariadb/mariadb.sock"
  # sun_path is 108 bytes; fall back to a per-checkout path in /tmp for deep checkouts.
  if ((${#s} > 100)); then s="/tmp/stockade-mariadb-$(printf '%s' "$SVC" | sha256sum | cut -c1-12).sock"; fi
  printf '%s' "$s"
}
mariadb_admin_user() { if [[ $EUID -eq 0 ]]; then echo root; else id -un; fi; }
# shellcheck disable=SC2120
mariadb_root() { # SQL as the admin user over the private socket (unix_socket auth)
  mariadb --no-defaults --protocol=socket --socket="$(mariadb_socket)" -u"$(mariadb_admin_user)" "$@"
}
mariadb_alive() {
  mariadb-admin --no-defaults --protocol=socket --socket="$(mariadb_socket)" -u"$(mariadb_admin_user)" \
    --connect-timeout=2 ping >/dev/null 2>&1
}
mariadb_app_ok() {
  mariadb --no-defaults --protocol=tcp -h127.0.0.1 -P"$MARIADB_PORT" -ustockade -pstockade \
    --connect-timeout=3 stockade -N -e 'SELECT 1' >/dev/null 2>&1
}

mariadb_init() {
  [[ -d $MARIADB_DATA/mysql ]] && return 0
  local t0 log="$SVC/mariadb/install-db.log" userarg=()
  t0=$(now_ms)
  rm -rf "$MARIADB_DATA"
  mkdir -p "$MARIADB_DATA"
  if [[ $EUID -eq 0 ]]; then userarg=(--user=root); fi
  if ! mariadb-install-db --no-defaults --basedir=/usr --datadir="$MARIADB_DATA" "${userarg[@]}" \
    --auth-root-authentication-method=socket --skip-test-db \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci >"$log" 2>&1 </dev/null; then
    rm -rf "$MARIADB_DATA"
    fail_with_logs "mariadb: mariadb-install-db failed" "$log"
  fi
  say "mariadb: initialized data dir $MARIADB_DATA ($(since "$t0"))"
}

mariadb_start() {
  local userarg=()
  ensure_port_free mariadb "$MARIADB_PORT"
  if [[ $EUID -eq 0 ]]; then userarg=(--user=root); fi
  spawn mariadb "$SVC/mariadb/mariadbd.out" mariadbd --no-defaults --basedir=/usr \
    --datadir="$MARIADB_DATA" --socket="$(mariadb_socket)" --port="$MARIADB_PORT" \
    --bind-address=127.0.0.1 --pid-file="$SVC/mariadb/mariadbd.pid" --log-error="$MARIADB_LOG" \
    "${userarg[@]}" --skip-name-resolve \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
    --innodb-flush-log-at-trx-commit=2 --max-connections=300
}

mariadb_provision() {
  # shellcheck disable=SC2119
  mariadb_root <<'SQL' >>"$SVC/mariadb/provision.log" 2>&1
CREATE DATABASE IF NOT EXISTS stockade CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS 'stockade'@'127.0.0.1' IDENTIFIED BY 'stockade';
CREATE USER IF NOT EXISTS 'stockade'@'localhost' IDENTIFIED BY 'stockade';
GRANT ALL PRIVILEGES ON stockade.* TO 'stockade'@'127.0.0.1';
GRANT ALL PRIVILEGES ON stockade.* TO 'stockade'@'localhost';
-- Tests create and drop their own databases stockade_t_<pid>_<n> (the backslash keeps `_` literal).
GRANT ALL PRIVILEGES ON `stockade\_%`.* TO 'stockade'@'127.0.0.1';
GRANT ALL PRIVILEGES ON `stockade\_%`.* TO 'stockade'@'localhost';
FLUSH PRIVILEGES;
SQL
}

# ---------------------------------------------------------------------------------------------
# Redis

redis_ok() { [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; }
redis_start() {
  ensure_port_free redis "$REDIS_PORT"
  spawn redis "$SVC/redis/redis.out" redis-server --bind 127.0.0.1 --port "$REDIS_PORT" \
    --dir "$SVC/redis" --daemonize no --supervised no --protected-mode yes \
    --logfile "$SVC/redis/redis.log"
}

# ---------------------------------------------------------------------------------------------
# Kafka

KAFKA_CONF="$SVC/kafka/server.properties"
KAFKA_DATA="$SVC/kafka/data"
KAFKA_LOG="$SVC/kafka/server.log"

kafka_java_tool() { # run a Kafka CLI class from lib/ with a quiet logger and a small heap
  java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$SVC/kafka/tools-log4j.properties" \
    -cp "$KAFKA_LIB/*" "$@"
}

kafka_write_config() {
  mkdir -p "$KAFKA_DATA"
  cat >"$KAFKA_CONF" <<EOF
# Generated by scripts/services.sh — single-node KRaft (combined broker + controller).
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DATA
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
min.insync.replicas=1
auto.create.topics.enable=true
delete.topic.enable=true
group.initial.rebalance.delay.ms=0
# fewer internal partitions than the default 50: faster first consumer group / transaction
offsets.topic.num.partitions=10
transaction.state.log.num.partitions=10
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=24
log.segment.bytes=104857600
EOF
  cat >"$SVC/kafka/tools-log4j.properties" <<'EOF'
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
  cat >"$SVC/kafka/client.properties" <<'EOF'
request.timeout.ms=5000
default.api.timeout.ms=10000
EOF
}

kafka_format() {
  [[ -f $KAFKA_DATA/meta.properties ]] && return 0
  local idf="$SVC/kafka/cluster-id" log="$SVC/kafka/format.log" id
  if [[ ! -s $idf ]]; then
    kafka_java_tool kafka.tools.StorageTool random-uuid >"$idf.tmp" 2>"$log" </dev/null ||
      fail_with_logs "kafka: StorageTool random-uuid failed" "$log"
    tr -d '[:space:]' <"$idf.tmp" >"$idf"
    rm -f "$idf.tmp"
  fi
  id=$(cat "$idf")
  kafka_java_tool kafka.tools.StorageTool format -t "$id" -c "$KAFKA_CONF" --ignore-formatted \
    >>"$log" 2>&1 </dev/null || fail_with_logs "kafka: StorageTool format failed" "$log"
  say "kafka: formatted $KAFKA_DATA (cluster id $id)"
}

kafka_ok() {
  port_open "$KAFKA_PORT" || return 1
  timeout 40 java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dlog4j.configuration="file:$SVC/kafka/tools-log4j.properties" -cp "$KAFKA_LIB/*" \
    org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
    --command-config "$SVC/kafka/client.properties" --list >/dev/null 2>>"$SVC/kafka/readiness.log" </dev/null
}

kafka_start() {
  ensure_port_free kafka "$KAFKA_PORT"
  ensure_port_free kafka "$KAFKA_CONTROLLER_PORT"
  spawn kafka "$SVC/kafka/kafka.out" java -Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true -Dkafka.logs.dir="$SVC/kafka" \
    -Dlog4j.configuration="file:$KAFKA_DIR/log4j.properties" \
    -cp "$KAFKA_LIB/*" kafka.Kafka "$KAFKA_CONF"
}

# ---------------------------------------------------------------------------------------------
# FerretDB

FERRETDB_LOG="$SVC/ferretdb/ferretdb.log"

# Real MongoDB wire-protocol `ping` (OP_MSG {ping: 1, $db: "admin"}) with only the Python
# standard library; falls back to a TCP probe when python3 is not available.
ferretdb_ok() {
  port_open "$FERRETDB_PORT" || return 1
  command -v python3 >/dev/null 2>&1 || return 0
  timeout 10 python3 - "$FERRETDB_PORT" <<'PY' 2>>"$SVC/ferretdb/readiness.log"
import socket, struct, sys
port = int(sys.argv[1])
def cstr(s): return s.encode() + b"\x00"
body = b"\x10" + cstr("ping") + struct.pack("<i", 1)
body += b"\x02" + cstr("$db") + struct.pack("<i", 6) + cstr("admin")
doc = struct.pack("<i", len(body) + 5) + body + b"\x00"
payload = struct.pack("<I", 0) + b"\x00" + doc
msg = struct.pack("<iiii", 16 + len(payload), 1, 0, 2013) + payload
s = socket.create_connection(("127.0.0.1", port), timeout=5)
s.sendall(msg)
def recv(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c: raise SystemExit("connection closed")
        b += c
    return b
length, _, _, opcode = struct.unpack("<iiii", recv(16))
rest = recv(length - 16)
if opcode != 2013: raise SystemExit("unexpected opcode %d" % opcode)
reply = rest[5:]
i = reply.find(b"ok\x00")
if i < 1: raise SystemExit("no ok field in reply")
t = reply[i - 1]
v = reply[i + 3:]
ok = struct.unpack("<d", v[:8])[0] if t == 1 else struct.unpack("<i", v[:4])[0] if t == 16 else 0
sys.exit(0 if ok == 1 else 1)
PY
}

ferretdb_start() {
  ensure_port_free ferretdb "$FERRETDB_PORT"
  mkdir -p "$SVC/ferretdb/data" "$SVC/ferretdb/state"
  spawn ferretdb "$FERRETDB_LOG" "$FERRETDB_BIN" --handler=sqlite \
    --sqlite-url="file:$SVC/ferretdb/data/" --listen-addr="127.0.0.1:$FERRETDB_PORT" \
    --state-dir="$SVC/ferretdb/state" --debug-addr=- --telemetry=disable \
    --log-level=INFO --log-format=text
}

# ---------------------------------------------------------------------------------------------
# per-service glue

service_ok() {
  case $1 in
    mariadb) mariadb_alive && mariadb_app_ok ;;
    redis) redis_ok ;;
    kafka) kafka_ok ;;
    ferretdb) ferretdb_ok ;;
  esac
}

service_logs() {
  case $1 in
    mariadb) echo "$MARIADB_LOG" "$SVC/mariadb/mariadbd.out" ;;
    redis) echo "$SVC/redis/redis.log" "$SVC/redis/redis.out" ;;
    kafka) echo "$KAFKA_LOG" "$SVC/kafka/kafka.out" ;;
    ferretdb) echo "$FERRETDB_LOG" ;;
  esac
}

service_url() {
  case $1 in
    mariadb) echo "mysql://stockade:stockade@127.0.0.1:$MARIADB_PORT/stockade" ;;
    redis) echo "redis://127.0.0.1:$REDIS_PORT" ;;
    kafka) echo "127.0.0.1:$KAFKA_PORT" ;;
    ferretdb) echo "mongodb://127.0.0.1:$FERRETDB_PORT/stockade" ;;
  esac
}

service_timeout() {
  case $1 in
    mariadb) echo "$MARIADB_TIMEOUT" ;;
    redis) echo "$REDIS_TIMEOUT" ;;
    kafka) echo "$KAFKA_TIMEOUT" ;;
    ferretdb) echo "$FERRETDB_TIMEOUT" ;;
  esac
}

mariadb_ready_check() { mariadb_alive; }

# up_one NAME: start NAME unless its recorded PID is alive, then wait until it is ready.
up_one() {
  local name=$1 t0 pid logs action
  t0=$(now_ms)
  mkdir -p "$SVC/$name"
  # shellcheck disable=SC2207
  logs=($(service_logs "$name"))
  if pid=$(live_pid "$name"); then
    action="already running"
  else
    if [[ -f $(pidfile "$name") ]]; then
      say "$name: removing stale pid file (pid $(tr -dc '0-9' <"$(pidfile "$name")") is gone)"
      rm -f "$(pidfile "$name")"
    fi
    # (separate statements, not `a && b`: set -e must stay in force inside these functions)
    case $name in
      mariadb)
        mariadb_init
        mariadb_start
        ;;
      redis) redis_start ;;
      kafka)
        kafka_write_config
        kafka_format
        kafka_start
        ;;
      ferretdb) ferretdb_start ;;
    esac
    pid=$SPAWNED_PID
    action="started"
  fi
  if [[ $name == mariadb ]]; then
    wait_ready mariadb "$pid" "$MARIADB_TIMEOUT" mariadb_ready_check "${logs[@]}"
    mariadb_provision || fail_with_logs "mariadb: creating database/user failed" "$SVC/mariadb/provision.log" "${logs[@]}"
    mariadb_app_ok || fail_with_logs "mariadb: stockade user cannot log in over TCP" "$SVC/mariadb/provision.log" "${logs[@]}"
  else
    wait_ready "$name" "$pid" "$(service_timeout "$name")" "${name}_ok" "${logs[@]}"
  fi
  say "$name: $action, pid $pid, ready in $(since "$t0") — $(service_url "$name")"
}

write_env() {
  cat >"$SVC/env.tmp" <<EOF
# Generated by scripts/services.sh — source it: . .services/env
export STOCKADE_MYSQL_URL=mysql://stockade:stockade@127.0.0.1:$MARIADB_PORT/stockade
export STOCKADE_REDIS_URL=redis://127.0.0.1:$REDIS_PORT
export STOCKADE_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
export STOCKADE_MONGO_URL=mongodb://127.0.0.1:$FERRETDB_PORT/stockade
EOF
  mv -f "$SVC/env.tmp" "$SVC/env"
}

# ---------------------------------------------------------------------------------------------
# commands

BG_JOBS=()
kill_tree() { # kill_tree PID: SIGTERM PID and its descendants (found through /proc, by PID only)
  local p=$1 c
  # shellcheck disable=SC2013
  for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do kill_tree "$c"; done
  kill -TERM "$p" 2>/dev/null || true
}
forget_bg_job() { # a reaped job's PID may be reused: never signal it again
  local p keep=()
  for p in "${BG_JOBS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  BG_JOBS=("${keep[@]}")
}
cleanup_bg_jobs() { # on any exit: stop the background install jobs this run started
  local p
  for p in "${BG_JOBS[@]}"; do kill_tree "$p"; done
}

cmd_up() {
  local services=("$@") t_all s
  t_all=$(now_ms)
  mkdir -p "$SVC"
  for s in "${services[@]}"; do mkdir -p "$SVC/$s"; done

  # 1. Debian packages for services that are not running yet (one apt-get call).
  local to_start=()
  for s in "${services[@]}"; do live_pid "$s" >/dev/null || to_start+=("$s"); done
  if ((${#to_start[@]})); then
    # shellcheck disable=SC2207
    local pkgs=($(packages_for "${to_start[@]}"))
    ((${#pkgs[@]} == 0)) || apt_install "${pkgs[@]}"
  fi

  # 2. Slow artifact preparation (Maven download, Go build) in the background, in parallel with
  #    starting the services that do not need it.
  local kafka_job='' ferret_job=''
  trap cleanup_bg_jobs EXIT
  if [[ " ${to_start[*]} " == *" kafka "* ]]; then
    kafka_fetch_jars >"$SVC/kafka/prepare.log" 2>&1 </dev/null &
    kafka_job=$!
    BG_JOBS+=("$kafka_job")
  fi
  if [[ " ${to_start[*]} " == *" ferretdb "* ]]; then
    ferretdb_build >"$SVC/ferretdb/prepare.log" 2>&1 </dev/null &
    ferret_job=$!
    BG_JOBS+=("$ferret_job")
  fi

  # 3. Start / check each service, in order; wait for a background job right before its service.
  for s in "${services[@]}"; do
    if [[ $s == kafka && -n $kafka_job ]]; then
      if ! wait "$kafka_job"; then fail_with_logs "kafka: preparing the broker jars failed" "$SVC/kafka/prepare.log"; fi
      forget_bg_job "$kafka_job"
      sed 's/^/[services] /' "$SVC/kafka/prepare.log"
    fi
    if [[ $s == ferretdb && -n $ferret_job ]]; then
      if ! wait "$ferret_job"; then fail_with_logs "ferretdb: building FerretDB failed" "$SVC/ferretdb/prepare.log"; fi
      forget_bg_job "$ferret_job"
      sed 's/^/[services] /' "$SVC/ferretdb/prepare.log"
    fi
    up_one "$s"
  done
  trap - EXIT

  write_env
  say "all requested services ready in $(since "$t_all"): ${services[*]}"
  echo
  for s in "${services[@]}"; do
    case $s in
      mariadb) echo "  STOCKADE_MYSQL_URL=$(service_url mariadb)" ;;
      redis) echo "  STOCKADE_REDIS_URL=$(service_url redis)" ;;
      kafka) echo "  STOCKADE_KAFKA_BROKERS=$(service_url kafka)" ;;
      ferretdb) echo "  STOCKADE_MONGO_URL=$(service_url ferretdb)   (FerretDB $FERRETDB_VERSION, SQLite backend)" ;;
    esac
  done
  echo "  (all four as shell exports: . $SVC/env)"
}

cmd_down() {
  local services=("$@") i
  for ((i = ${#services[@]} - 1; i >= 0; i--)); do stop_service "${services[i]}"; done
}

cmd_status() {
  local services=("$@") s pid bad=0 state
  printf '%-9s %-8s %-10s %s\n' SERVICE PID STATE URL
  for s in "${services[@]}"; do
    if pid=$(live_pid "$s"); then
      if (mkdir -p "$SVC/$s" && service_ok "$s"); then
        state=ready
      else
        state=NOT-READY
        bad=1
      fi
    else
      if [[ -f $(pidfile "$s") ]]; then state=DEAD; else state=down; fi
      pid=-
      bad=1
    fi
    printf '%-9s %-8s %-10s %s\n' "$s" "$pid" "$state" "$(service_url "$s")"
  done
  return $bad
}

usage() {
  sed -n '2,/^set -euo/{/^#/p}' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

main() {
  local cmd=${1:-}
  [[ -n $cmd ]] || {
    usage
    exit 2
  }
  shift
  local selected=() s a
  for a in "$@"; do
    case $a in
      mongo | mongodb) a=ferretdb ;;
      mysql) a=mariadb ;;
    esac
    [[ " ${ALL_SERVICES[*]} " == *" $a "* ]] || die "unknown service '$a' (known: ${ALL_SERVICES[*]})"
  done
  # keep the canonical order (mariadb redis kafka ferretdb) whatever order was given
  for s in "${ALL_SERVICES[@]}"; do
    if (($# == 0)); then
      selected+=("$s")
      continue
    fi
    for a in "$@"; do
      case $a in mongo | mongodb) a=ferretdb ;; mysql) a=mariadb ;; esac
      if [[ $a == "$s" ]]; then
        selected+=("$s")
        break
      fi
    done
  done
  case $cmd in
    up | start) cmd_up "${selected[@]}" ;;
    down | stop) cmd_down "${selected[@]}" ;;
    status) cmd_status "${selected[@]}" ;;
    -h | --help | help) usage ;;
    *)
      usage >&2
      die "unknown command '$cmd'"
      ;;
  esac
}

main "$@"
