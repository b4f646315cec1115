# scripts/services.d/s3.sh — sourced by scripts/services.
#
#   s3    versitygw (S3 gateway) with its posix backend, built once with `go install` into
#         .services/cache/go-bin/versitygw-<version>/. Objects in .services/s3/data (one folder per
#         bucket), earlier versions in .services/s3/versions (outside the data root, as versitygw
#         requires), internal IAM in .services/s3/iam, log .services/s3/s3.log; plain http on
#         127.0.0.1 only. Fixed test root credentials (below). On `up` the bucket $S3_BUCKET_WARM
#         is created when missing, with object lock enabled, and versioning is switched on.
#         env: S3_ENDPOINT AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION S3_BUCKET_WARM
#   Settings: EARTHMEM_S3_PORT (default 19000)
#
# --iam-dir runs versitygw's internal IAM: an unknown access key then gives InvalidAccessKeyId
# (403) as on AWS; in its single-account mode it gives XAdminUserNotFound (404), which a HEAD
# request cannot tell apart from a missing object.

ALL_SERVICES+=(s3)

S3_VERSION="v1.7.0"
S3_PORT="${EARTHMEM_S3_PORT:-19000}"
S3_REGION="us-east-1"
S3_ACCESS_KEY="earthmem-s3-test"
S3_SECRET_KEY="earthmem-s3-test-secret-7d41c9"
S3_BUCKET="earth-memory-warm"
S3_DIR="$SVC/s3"
S3_DATA="$S3_DIR/data"
S3_VERSIONS="$S3_DIR/versions"
S3_IAM="$S3_DIR/iam"
S3_LOG="$S3_DIR/s3.log"
S3_PIDFILE="$S3_DIR/s3.pid"
S3_PORTFILE="$S3_DIR/port"
S3_BIN_DIR="$CACHE/go-bin/versitygw-$S3_VERSION"
S3_BIN="$S3_BIN_DIR/versitygw"
S3_EMPTY_SHA256="e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

s3_pid() { recorded_pid "$S3_PIDFILE" "$S3_DATA"; }

s3_port_now() { recorded_port s3_pid "$S3_PORTFILE" "$S3_PORT"; }

s3_install() {
  [[ -x $S3_BIN ]] || go_install_cached s3 "github.com/versity/versitygw/cmd/versitygw@$S3_VERSION" "$S3_BIN_DIR" "$S3_DIR/go-install.log"
}

# s3_http METHOD PATH [BODY [HEADER…]]: a SigV4-signed request with the root credentials; prints
# the HTTP status code. The query must carry `=` (`?versioning=`): curl signs a bare `?versioning`
# differently from the server.
s3_http() {
  local method=$1 path=$2 body=${3:-} port sha=$S3_EMPTY_SHA256 args=()
  shift; shift; shift || true
  port=$(s3_port_now)
  if [[ -n $body ]]; then
    sha=$(printf '%s' "$body" | sha256sum | cut -d' ' -f1)
    args+=(--data-binary "$body")
  fi
  local h; for h in "$@"; do args+=(-H "$h"); done
  # -I for HEAD: with -X HEAD curl waits for a body that never comes
  if [[ $method == HEAD ]]; then args+=(-I); else args+=(-X "$method"); fi
  curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
    --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
    -H "x-amz-content-sha256: $sha" "${args[@]}" "http://127.0.0.1:$port$path" 2>/dev/null </dev/null || true
}

s3_wait_ready() { # ListBuckets answers 200
  local deadline=$(( $(date +%s) + TIMEOUT ))
  until [[ $(s3_http GET /) == 200 ]]; do
    fail_if_exited s3 "$S3_PIDFILE" "versitygw" "$S3_LOG"
    if (( $(date +%s) >= deadline )); then
      s3_down >/dev/null 2>&1
      fail s3 "no answer on 127.0.0.1:$(s3_port_now) after ${TIMEOUT}s (server stopped)" "$S3_LOG"
    fi
    sleep 0.2
  done
}

s3_ensure_bucket() {
  local status
  status=$(s3_http HEAD "/$S3_BUCKET")
  if [[ $status == 404 ]]; then
    status=$(s3_http PUT "/$S3_BUCKET" "" "x-amz-bucket-object-lock-enabled: true")
    [[ $status == 200 ]] || fail s3 "creating bucket $S3_BUCKET failed (HTTP $status)" "$S3_LOG"
    log "s3: bucket $S3_BUCKET created with object lock"
  elif [[ $status != 200 ]]; then
    fail s3 "HEAD bucket $S3_BUCKET gave HTTP $status" "$S3_LOG"
  fi
  status=$(s3_http PUT "/$S3_BUCKET?versioning=" \
    '<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>')
  [[ $status == 200 ]] || fail s3 "enabling versioning on $S3_BUCKET failed (HTTP $status)" "$S3_LOG"
}

s3_up() {
  local t0; t0=$(date +%s)
  if s3_pid >/dev/null; then
    local port; port=$(s3_port_now)
    [[ $(s3_http GET /) == 200 ]] || s3_wait_ready
    s3_ensure_bucket
    log "s3: running on 127.0.0.1:$port"
    [[ $port == "$S3_PORT" ]] || log "s3: WARNING: running on $port, not on EARTHMEM_S3_PORT=$S3_PORT (run: scripts/services restart s3)"
    return 0
  fi
  command -v curl >/dev/null 2>&1 || ensure_apt curl
  s3_install
  port_open "$S3_PORT" && fail s3 "port 127.0.0.1:$S3_PORT is already in use by another process: $(port_owner "$S3_PORT") (set EARTHMEM_S3_PORT)"
  mkdir -p "$S3_DATA" "$S3_VERSIONS" "$S3_IAM"
  printf '\n===== %s start =====\n' "$(date -Is)" >>"$S3_LOG"
  mark_logs "$S3_LOG"
  log "s3: starting versitygw $S3_VERSION on 127.0.0.1:$S3_PORT"
  # credentials through the environment, not argv (ps shows argv); setsid: own session, so a
  # test runner's process-group signal does not take the server down
  ( export ROOT_ACCESS_KEY="$S3_ACCESS_KEY" ROOT_SECRET_KEY="$S3_SECRET_KEY"
    exec setsid nohup "$S3_BIN" --port "127.0.0.1:$S3_PORT" --region "$S3_REGION" --quiet --keep-alive \
      --iam-dir "$S3_IAM" posix --versioning-dir "$S3_VERSIONS" "$S3_DATA" ) </dev/null >>"$S3_LOG" 2>&1 9>&- &
  echo $! >"$S3_PIDFILE"
  echo "$S3_PORT" >"$S3_PORTFILE"
  s3_wait_ready
  s3_ensure_bucket
  log "s3: ready on 127.0.0.1:$S3_PORT in $(elapsed_since "$t0") s (pid $(s3_pid || echo '?'))"
}

s3_down() { stop_service s3 "$S3_PIDFILE"; }

s3_status() {
  local st=stopped; s3_pid >/dev/null && st=running
  echo "s3 $st 127.0.0.1:$(s3_port_now)"
}

s3_env() {
  kv S3_ENDPOINT "http://127.0.0.1:$(s3_port_now)"
  kv AWS_ACCESS_KEY_ID "$S3_ACCESS_KEY"
  kv AWS_SECRET_ACCESS_KEY "$S3_SECRET_KEY"
  kv AWS_REGION "$S3_REGION"
  kv S3_BUCKET_WARM "$S3_BUCKET"
}

s3_logs() { echo "$S3_LOG"; }
