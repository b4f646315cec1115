# scripts/services.d/azurite.sh — Azurite (Azure Blob Storage emulator), blob service only.
# Sourced by scripts/services.
#
#   azurite   Azurite 3.35.0 from node_modules (npm devDependency), 127.0.0.1 only, data in
#             .services/azurite/data, log .services/azurite/azurite.log. The well-known
#             development account devstoreaccount1; container deep-archive created on `up`.
#             env: AZURE_STORAGE_CONNECTION_STRING AZURE_CONNECTION_STRING (same value)
#                  AZURE_ACCOUNT AZURE_STORAGE_KEY AZURE_CONTAINER_GLACIER
#   EARTHMEM_AZURITE_PORT      blob port, default 19100

ALL_SERVICES+=(azurite)

AZURITE_PORT="${EARTHMEM_AZURITE_PORT:-19100}"
AZURITE_DIR="$SVC/azurite"
AZURITE_DATA="$AZURITE_DIR/data"
AZURITE_LOG="$AZURITE_DIR/azurite.log"
AZURITE_PID="$AZURITE_DIR/azurite.pid"
AZURITE_PORTFILE="$AZURITE_DIR/port"
AZURITE_BIN="$ROOT/node_modules/.bin/azurite-blob"
AZURITE_VERSION="3.35.0"
# Azurite's fixed development account (public, documented by Microsoft; not a secret).
AZURITE_ACCOUNT=devstoreaccount1
AZURITE_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
AZURITE_CONTAINER=deep-archive

azurite_pid() { recorded_pid "$AZURITE_PID" "$AZURITE_DATA"; }

azurite_port_now() { recorded_port azurite_pid "$AZURITE_PORTFILE" "$AZURITE_PORT"; }

azurite_connection_string() {
  printf 'DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=http://127.0.0.1:%s/%s;' \
    "$AZURITE_ACCOUNT" "$AZURITE_KEY" "$1" "$AZURITE_ACCOUNT"
}

# creates the glacier container if it is missing (the SDK from node_modules; retries inside)
azurite_create_container() {
  local port=$1
  (cd "$ROOT" && AZ_CONN=$(azurite_connection_string "$port") AZ_CONTAINER=$AZURITE_CONTAINER \
    node --input-type=module -e '
      import { BlobServiceClient } from "@azure/storage-blob";
      const service = BlobServiceClient.fromConnectionString(process.env.AZ_CONN, { retryOptions: { maxTries: 3 } });
      await service.getContainerClient(process.env.AZ_CONTAINER).createIfNotExists();
    ' >>"$AZURITE_LOG" 2>&1 </dev/null 9>&-)
}

azurite_up() {
  local t0; t0=$(date +%s)
  if azurite_pid >/dev/null; then
    local port; port=$(azurite_port_now)
    azurite_wait_ready "$port"
    log "azurite: running on 127.0.0.1:$port"
    [[ $port == "$AZURITE_PORT" ]] || log "azurite: WARNING: running on $port, not on EARTHMEM_AZURITE_PORT=$AZURITE_PORT (run: scripts/services restart azurite)"
    return 0
  fi
  [[ -x $AZURITE_BIN ]] || die "azurite: $AZURITE_BIN not found (run npm install; azurite $AZURITE_VERSION is a devDependency)"
  local have; have=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$ROOT/node_modules/azurite/package.json" 2>/dev/null || true)
  [[ $have == "$AZURITE_VERSION" ]] || log "azurite: WARNING: node_modules has azurite ${have:-?}, expected $AZURITE_VERSION"
  if port_open "$AZURITE_PORT"; then
    fail azurite "port 127.0.0.1:$AZURITE_PORT is already in use by another process: $(port_owner "$AZURITE_PORT") (set EARTHMEM_AZURITE_PORT)"
  fi
  mkdir -p "$AZURITE_DATA"
  log "azurite: starting Azurite $AZURITE_VERSION (blob) on 127.0.0.1:$AZURITE_PORT"
  printf '\n===== %s start =====\n' "$(date -Is)" >>"$AZURITE_LOG"
  mark_logs "$AZURITE_LOG"
  # the node script itself, not npx (whose wrapper would leave the server behind on stop);
  # setsid: a test runner's process-group signal does not take the server down.
  # --silent: no access log (keeps the log small); startup and errors still go to the log.
  ( exec setsid nohup node "$AZURITE_BIN" --blobHost 127.0.0.1 --blobPort "$AZURITE_PORT" \
      --location "$AZURITE_DATA" --disableTelemetry --skipApiVersionCheck --silent ) \
    </dev/null >>"$AZURITE_LOG" 2>&1 9>&- &
  local pid=$!
  echo "$pid" >"$AZURITE_PID"
  echo "$AZURITE_PORT" >"$AZURITE_PORTFILE"
  azurite_wait_ready "$AZURITE_PORT" started
  azurite_create_container "$AZURITE_PORT" \
    || fail azurite "creating container $AZURITE_CONTAINER failed" "$AZURITE_LOG"
  log "azurite: ready on 127.0.0.1:$AZURITE_PORT in $(elapsed_since "$t0") s (pid $pid)"
}

# azurite_wait_ready PORT [started]: with "started", a server that does not get ready is stopped
azurite_wait_ready() {
  local port=$1 started=${2:-} deadline=$(( $(date +%s) + TIMEOUT ))
  until port_open "$port"; do
    fail_if_exited azurite "$AZURITE_PID" "server" "$AZURITE_LOG"
    if (( $(date +%s) >= deadline )); then
      [[ -n $started ]] && azurite_down >/dev/null 2>&1
      fail azurite "127.0.0.1:$port does not answer after ${TIMEOUT}s${started:+ (server stopped)}" "$AZURITE_LOG"
    fi
    sleep 0.2
  done
}

azurite_down() { stop_service azurite "$AZURITE_PID"; }

azurite_status() {
  local st=stopped; azurite_pid >/dev/null && st=running
  echo "azurite $st http://127.0.0.1:$(azurite_port_now)/$AZURITE_ACCOUNT"
}

azurite_env() {
  local conn; conn=$(azurite_connection_string "$(azurite_port_now)")
  kv AZURE_STORAGE_CONNECTION_STRING "$conn"
  kv AZURE_CONNECTION_STRING "$conn"
  kv AZURE_ACCOUNT "$AZURITE_ACCOUNT"
  kv AZURE_STORAGE_KEY "$AZURITE_KEY"
  kv AZURE_CONTAINER_GLACIER "$AZURITE_CONTAINER"
}

azurite_logs() { echo "$AZURITE_LOG"; }
