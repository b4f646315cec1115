# scripts/services.d/spatialite.sh — sourced by scripts/services.
#   spatialite  Debian libsqlite3-mod-spatialite: the SpatiaLite extension that SQLiteStorage loads
#               into better-sqlite3 (nothing runs). env: SPATIALITE_MODULE (path to mod_spatialite.so)
ALL_SERVICES+=(spatialite)

# the installed module, or the path Debian would install it to
spatialite_module() {
  local path
  path=$(dpkg-query -L libsqlite3-mod-spatialite 2>/dev/null | grep -m1 '/mod_spatialite\.so$' || true)
  echo "${path:-/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)/mod_spatialite.so}"
}

spatialite_up() {
  ensure_apt libsqlite3-mod-spatialite
  [[ -e $(spatialite_module) ]] || fail spatialite "$(spatialite_module) missing after installing libsqlite3-mod-spatialite" "$SVC/apt.log"
  log "spatialite: installed ($(spatialite_module))"
}
spatialite_down() { :; }
spatialite_status() {
  if [[ -e $(spatialite_module) ]]; then echo "spatialite installed $(spatialite_module)"
  else echo "spatialite missing $(spatialite_module)"; fi
}
spatialite_env() { kv SPATIALITE_MODULE "$(spatialite_module)"; }
spatialite_logs() { echo "$SVC/apt.log"; }
