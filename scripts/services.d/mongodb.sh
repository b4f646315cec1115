# scripts/services.d/mongodb.sh — sourced by scripts/services.
#
#   mongodb  FerretDB (MongoDB wire protocol) with its SQLite handler, built once from the Go
#            module into .services/cache/go-bin/ferretdb-<version>/. Data (one SQLite file per
#            database) in .services/mongodb/data, state in .services/mongodb/state, log
#            .services/mongodb/mongodb.log; 127.0.0.1 only. Authentication is enforced
#            (--test-enable-new-auth, SCRAM): a fixed test user is created in the database
#            earth_memory on first start, so bad-credential tests are real.
#            env: MONGODB_URL (mongodb://USER:PASSWORD@127.0.0.1:PORT/earth_memory)
#                 MONGODB_USERNAME MONGODB_PASSWORD
#   Settings: EARTHMEM_MONGODB_PORT (default 17017)
#
# Build: the module proxy lists no FerretDB versions, so `go install …@v1.24.2` is refused (it
# asks for the version list to check deprecation), and a build from inside another module panics
# at start: FerretDB embeds build/version/version.txt, which the published module lacks. So the
# exact module version is downloaded, copied, given that file, and built in its own module.
# The debug HTTP listener (default 127.0.0.1:8088, InfluxDB's RPC port) is switched off.

ALL_SERVICES+=(mongodb)

MONGODB_VERSION="v1.24.2"
MONGODB_PORT="${EARTHMEM_MONGODB_PORT:-17017}"
MONGODB_DB="earth_memory"
MONGODB_USER="earthmem"
MONGODB_PASSWORD="earthmem-mongo-test-5b1e"
MONGODB_DIR="$SVC/mongodb"
MONGODB_DATA="$MONGODB_DIR/data"
MONGODB_STATE="$MONGODB_DIR/state"
MONGODB_LOG="$MONGODB_DIR/mongodb.log"
MONGODB_PIDFILE="$MONGODB_DIR/mongodb.pid"
MONGODB_PORTFILE="$MONGODB_DIR/port"
MONGODB_BIN_DIR="$CACHE/go-bin/ferretdb-$MONGODB_VERSION"
MONGODB_BIN="$MONGODB_BIN_DIR/ferretdb"

mongodb_pid() { recorded_pid "$MONGODB_PIDFILE" "$MONGODB_DATA"; }

mongodb_port_now() { recorded_port mongodb_pid "$MONGODB_PORTFILE" "$MONGODB_PORT"; }

mongodb_install() {
  [[ -x $MONGODB_BIN ]] && return 0
  command -v go >/dev/null 2>&1 || die "mongodb: the Go toolchain is needed to build FerretDB (go not on PATH)"
  local t0; t0=$(date +%s)
  local build="$CACHE/build-ferretdb-$MONGODB_VERSION" build_log="$MONGODB_DIR/go-build.log"
  mkdir -p "$MONGODB_DIR"
  : >"$build_log"
  log "mongodb: building FerretDB $MONGODB_VERSION (once; cached in $MONGODB_BIN_DIR; takes minutes)"
  rm -rf "$build" "$MONGODB_BIN_DIR.tmp"; mkdir -p "$build/empty"
  local moddir
  moddir=$(cd "$build/empty" && GOWORK=off GOFLAGS=-mod=mod go mod download -json "github.com/FerretDB/FerretDB@$MONGODB_VERSION" 2>>"$build_log" </dev/null 9>&- \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p') || true
  [[ -n $moddir && -f $moddir/go.mod ]] || fail mongodb "go mod download github.com/FerretDB/FerretDB@$MONGODB_VERSION failed" "$build_log"
  cp -r "$moddir" "$build/src" && chmod -R u+w "$build/src"
  echo "$MONGODB_VERSION" >"$build/src/build/version/version.txt"
  (cd "$build/src" && GOWORK=off go build -trimpath -o "$MONGODB_BIN_DIR.tmp/ferretdb" ./cmd/ferretdb) >>"$build_log" 2>&1 </dev/null 9>&- \
    || fail mongodb "go build ./cmd/ferretdb failed" "$build_log"
  "$MONGODB_BIN_DIR.tmp/ferretdb" --version >>"$build_log" 2>&1 || fail mongodb "the built ferretdb does not start" "$build_log"
  rm -rf "$MONGODB_BIN_DIR"; mv "$MONGODB_BIN_DIR.tmp" "$MONGODB_BIN_DIR"
  rm -rf "$build"
  log "mongodb: built in $(elapsed_since "$t0") s"
}

mongodb_ping() { # an authenticated ping as the test user
  FERRETDB_SETUP_PASSWORD=$MONGODB_PASSWORD timeout 10 "$MONGODB_BIN" ping --test-enable-new-auth --listen-addr="127.0.0.1:$1" \
    --setup-database="$MONGODB_DB" --setup-username="$MONGODB_USER" --log-level=error >/dev/null 2>&1 </dev/null 9>&-
}

mongodb_wait_ready() {
  local port; port=$(mongodb_port_now)
  local deadline=$(( $(date +%s) + TIMEOUT ))
  until mongodb_ping "$port"; do
    fail_if_exited mongodb "$MONGODB_PIDFILE" "ferretdb" "$MONGODB_LOG"
    if (( $(date +%s) >= deadline )); then
      mongodb_down >/dev/null 2>&1
      fail mongodb "no authenticated ping answer on 127.0.0.1:$port after ${TIMEOUT}s (server stopped)" "$MONGODB_LOG"
    fi
    sleep 0.3
  done
}

mongodb_up() {
  local t0; t0=$(date +%s)
  if mongodb_pid >/dev/null; then
    mongodb_wait_ready
    log "mongodb: running on 127.0.0.1:$(mongodb_port_now)"
    [[ $(mongodb_port_now) == "$MONGODB_PORT" ]] || log "mongodb: WARNING: running on $(mongodb_port_now), not on EARTHMEM_MONGODB_PORT=$MONGODB_PORT (run: scripts/services restart mongodb)"
    return 0
  fi
  mongodb_install
  if port_open "$MONGODB_PORT"; then
    fail mongodb "port 127.0.0.1:$MONGODB_PORT is already in use by another process: $(port_owner "$MONGODB_PORT") (set EARTHMEM_MONGODB_PORT)"
  fi
  mkdir -p "$MONGODB_DATA" "$MONGODB_STATE"
  log "mongodb: starting FerretDB $MONGODB_VERSION (sqlite) on 127.0.0.1:$MONGODB_PORT"
  printf '\n===== %s start =====\n' "$(date -Is)" >>"$MONGODB_LOG"
  mark_logs "$MONGODB_LOG"
  # The user is created only when the setup database does not exist yet (first start).
  # setsid: own session, so a test runner's process-group signal does not take the server down.
  ( export FERRETDB_SETUP_PASSWORD=$MONGODB_PASSWORD
    exec setsid nohup "$MONGODB_BIN" --handler=sqlite --sqlite-url="file:$MONGODB_DATA/" \
      --state-dir="$MONGODB_STATE" --listen-addr="127.0.0.1:$MONGODB_PORT" --debug-addr=- \
      --telemetry=disable --test-enable-new-auth \
      --setup-database="$MONGODB_DB" --setup-username="$MONGODB_USER" \
      --log-level=warn --log-format=text ) </dev/null >>"$MONGODB_LOG" 2>&1 9>&- &
  echo $! >"$MONGODB_PIDFILE"
  echo "$MONGODB_PORT" >"$MONGODB_PORTFILE"
  mongodb_wait_ready
  log "mongodb: ready on 127.0.0.1:$MONGODB_PORT in $(elapsed_since "$t0") s (pid $(cat "$MONGODB_PIDFILE"))"
}

mongodb_down() { stop_service mongodb "$MONGODB_PIDFILE"; }

mongodb_status() {
  local st=stopped; mongodb_pid >/dev/null && st=running
  echo "mongodb $st mongodb://127.0.0.1:$(mongodb_port_now)/$MONGODB_DB"
}

mongodb_env() {
  kv MONGODB_URL "mongodb://$MONGODB_USER:$MONGODB_PASSWORD@127.0.0.1:$(mongodb_port_now)/$MONGODB_DB"
  kv MONGODB_USERNAME "$MONGODB_USER"
  kv MONGODB_PASSWORD "$MONGODB_PASSWORD"
}

mongodb_logs() { echo "$MONGODB_LOG"; }
