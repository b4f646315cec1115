# scripts/services.d/gcs.sh — sourced by scripts/services.
#
#   gcs   fake-gcs-server (Google Cloud Storage JSON API emulator), built once with `go install`
#         into .services/cache/go-bin/fake-gcs-server-<version>/; filesystem backend with data in
#         .services/gcs/data, log .services/gcs/gcs.log; plain http on 127.0.0.1 only. The bucket
#         $GCS_BUCKET_COLD is created on `up` when missing. No authentication (any token passes).
#         env: GCS_ENDPOINT GCS_PROJECT GCS_BUCKET_COLD
#   Settings: EARTHMEM_GCS_PORT (default 19443)
#
# -external-url is the endpoint clients use: fake-gcs-server returns it in the Location header
# of resumable uploads, so a different value (e.g. its default 0.0.0.0) breaks them.

ALL_SERVICES+=(gcs)

GCS_VERSION="v1.55.1"
GCS_PORT="${EARTHMEM_GCS_PORT:-19443}"
GCS_PROJECT="earth-memory-test"
GCS_BUCKET="earth-memory-cold"
GCS_DIR="$SVC/gcs"
GCS_DATA="$GCS_DIR/data"
GCS_LOG="$GCS_DIR/gcs.log"
GCS_PIDFILE="$GCS_DIR/gcs.pid"
GCS_PORTFILE="$GCS_DIR/port"
GCS_BIN_DIR="$CACHE/go-bin/fake-gcs-server-$GCS_VERSION"
GCS_BIN="$GCS_BIN_DIR/fake-gcs-server"

gcs_pid() { recorded_pid "$GCS_PIDFILE" "$GCS_DATA"; }

gcs_port_now() { recorded_port gcs_pid "$GCS_PORTFILE" "$GCS_PORT"; }

gcs_install() {
  [[ -x $GCS_BIN ]] || go_install_cached gcs "github.com/fsouza/fake-gcs-server@$GCS_VERSION" "$GCS_BIN_DIR" "$GCS_DIR/go-install.log"
}

gcs_http() { # gcs_http METHOD PATH [JSON]: prints the HTTP status code
  local port body=(); port=$(gcs_port_now)
  [[ -z ${3:-} ]] || body=(-H 'Content-Type: application/json' --data "$3")
  curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X "$1" "${body[@]}" "http://127.0.0.1:$port$2" 2>/dev/null || true
}

gcs_wait_ready() {
  local deadline=$(( $(date +%s) + TIMEOUT ))
  until [[ $(gcs_http GET "/storage/v1/b?project=$GCS_PROJECT") == 200 ]]; do
    fail_if_exited gcs "$GCS_PIDFILE" "fake-gcs-server" "$GCS_LOG"
    if (( $(date +%s) >= deadline )); then
      gcs_down >/dev/null 2>&1
      fail gcs "no answer on 127.0.0.1:$(gcs_port_now) after ${TIMEOUT}s (server stopped)" "$GCS_LOG"
    fi
    sleep 0.2
  done
}

gcs_ensure_bucket() {
  [[ $(gcs_http GET "/storage/v1/b/$GCS_BUCKET") == 200 ]] && return 0
  local status
  status=$(gcs_http POST "/storage/v1/b?project=$GCS_PROJECT" "{\"name\":\"$GCS_BUCKET\"}")
  [[ $status == 200 || $status == 409 ]] || fail gcs "creating bucket $GCS_BUCKET failed (HTTP $status)" "$GCS_LOG"
  log "gcs: bucket $GCS_BUCKET created"
}

gcs_up() {
  local t0; t0=$(date +%s)
  if gcs_pid >/dev/null; then
    gcs_wait_ready
    gcs_ensure_bucket
    log "gcs: running on 127.0.0.1:$(gcs_port_now)"
    [[ $(gcs_port_now) == "$GCS_PORT" ]] || log "gcs: WARNING: running on $(gcs_port_now), not on EARTHMEM_GCS_PORT=$GCS_PORT (run: scripts/services restart gcs)"
    return 0
  fi
  gcs_install
  if port_open "$GCS_PORT"; then
    fail gcs "port 127.0.0.1:$GCS_PORT is already in use by another process: $(port_owner "$GCS_PORT") (set EARTHMEM_GCS_PORT)"
  fi
  mkdir -p "$GCS_DATA"
  log "gcs: starting fake-gcs-server $GCS_VERSION on 127.0.0.1:$GCS_PORT"
  printf '\n===== %s start =====\n' "$(date -Is)" >>"$GCS_LOG"
  mark_logs "$GCS_LOG"
  # setsid: own session, so a test runner's process-group signal does not take the server down
  ( exec setsid nohup "$GCS_BIN" -scheme http -host 127.0.0.1 -port "$GCS_PORT" \
      -external-url "http://127.0.0.1:$GCS_PORT" -backend filesystem -filesystem-root "$GCS_DATA" \
      -log-level warn ) </dev/null >>"$GCS_LOG" 2>&1 9>&- &
  echo $! >"$GCS_PIDFILE"
  echo "$GCS_PORT" >"$GCS_PORTFILE"
  gcs_wait_ready
  gcs_ensure_bucket
  log "gcs: ready on 127.0.0.1:$GCS_PORT in $(elapsed_since "$t0") s (pid $(cat "$GCS_PIDFILE"))"
}

gcs_down() { stop_service gcs "$GCS_PIDFILE"; }

gcs_status() {
  local st=stopped; gcs_pid >/dev/null && st=running
  echo "gcs $st http://127.0.0.1:$(gcs_port_now)"
}

gcs_env() {
  kv GCS_ENDPOINT "http://127.0.0.1:$(gcs_port_now)"
  kv GCS_PROJECT "$GCS_PROJECT"
  kv GCS_BUCKET_COLD "$GCS_BUCKET"
}

gcs_logs() { echo "$GCS_LOG"; }
