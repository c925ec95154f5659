#!/usr/bin/env bash
# spawnlab on several instances on one machine, behind nginx, in the
# foreground: a rehearsal of deploy/README.md before a class, or a way to
# watch a balancer spread learners. Ctrl-C (or SIGTERM) stops everything.
#
#   deploy/run-local.sh [SPAWNLAB_BINARY [SITE_DIR]]
#
# SPAWNLAB_BINARY: the server; by default the first of
#   target/leptos/release/spawnlab  (cargo leptos build --release)
#   target/leptos/debug/spawnlab    (cargo leptos build, make site)
#   target/debug/spawnlab           (cargo build, make build)
# SITE_DIR: the built site; by default target/site.
#
# Environment:
#   SPAWNLAB_LOCAL_PORT       nginx's port on 127.0.0.1 (default 8080)
#   SPAWNLAB_LOCAL_BASE       instance i listens on BASE+i (default 3000: 3001...)
#   SPAWNLAB_LOCAL_INSTANCES  how many instances (default 3)
#   NGINX                     the nginx binary (default: nginx on PATH, or /usr/sbin/nginx)
#   SPAWNLAB_*                passed on to every instance (`spawnlab --help`)
#
# The nginx configuration is deploy/nginx/spawnlab.conf itself, rewritten
# for loopback in a temporary folder: its upstream lists these instances,
# it listens on plain HTTP on SPAWNLAB_LOCAL_PORT (the TLS lines and the
# HTTP->HTTPS redirect are cut out) and serves /pkg/ from SITE_DIR.
# tests/tests/e2e/deploy.rs runs this script.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
port=${SPAWNLAB_LOCAL_PORT:-8080}
base=${SPAWNLAB_LOCAL_BASE:-3000}
count=${SPAWNLAB_LOCAL_INSTANCES:-3}
nginx=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}

say() { printf 'run-local: %s\n' "$*" >&2; }
die() { say "$*"; exit 2; }

if [ $# -ge 1 ]; then
  bin=$1
else
  bin=
  for candidate in target/leptos/release/spawnlab target/leptos/debug/spawnlab target/debug/spawnlab; do
    if [ -x "$root/$candidate" ]; then bin=$root/$candidate; break; fi
  done
  [ -n "$bin" ] || die "no spawnlab binary under $root/target: build one (cargo leptos build) or pass its path"
fi
site=${2:-$root/target/site}
[ -x "$bin" ] || die "$bin is not an executable spawnlab binary"
[ -f "$site/pkg/spawnlab.js" ] || die "$site has no built site (pkg/spawnlab.js): run cargo leptos build, or pass the site folder"
[ -x "$nginx" ] || die "no nginx ($nginx): apt-get install nginx-light, or set NGINX"
site=$(cd "$site" && pwd)
case "$site" in *'|'* | *'&'* | *'\'*) die "the site folder's path may not contain | & or \\: $site" ;; esac

work=$(mktemp -d "${TMPDIR:-/tmp}/spawnlab-local.XXXXXX")
# nginx's workers run as another user when nginx is started as root.
chmod 755 "$work"
pids=()

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  # SIGTERM to each instance and to nginx, then wait for them all: an
  # instance stops its labs (or drains, if SPAWNLAB_DRAIN_SECS is set; a
  # second signal, from Ctrl-C, cuts that short) and exits.
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
  say "stopped"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Answers 200 on /readyz? (bash's /dev/tcp: no curl needed)
ready() {
  ( exec 3<>"/dev/tcp/127.0.0.1/$1" \
    && printf 'GET /readyz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 \
    && head -c 12 <&3 | grep -q ' 200' ) 2>/dev/null
}

: > "$work/servers.conf"
for i in $(seq 1 "$count"); do
  p=$((base + i))
  "$bin" --addr "127.0.0.1:$p" --site-dir "$site" --trusted-proxy 127.0.0.1 \
    > "$work/instance-$p.log" 2>&1 &
  pids+=($!)
  printf '    server 127.0.0.1:%s max_fails=1 fail_timeout=10s;\n' "$p" >> "$work/servers.conf"
done
for i in $(seq 1 "$count"); do
  p=$((base + i))
  pid=${pids[$((i - 1))]}
  for _ in $(seq 1 300); do
    ready "$p" && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/instance-$p.log" >&2; die "instance on port $p exited"; }
    sleep 0.1
  done
  ready "$p" || die "instance on port $p is not ready after 30 s"
done

# The shipped site, rewritten for loopback (each rewrite is checked).
conf=$here/nginx/spawnlab.conf
for pattern in '# :80, redirect only' 'listen 443 ssl http2;' 'root /opt/spawnlab/site;' \
               'hash $arg_learner consistent;' 'server 127.0.0.1:3001 '; do
  grep -qF -- "$pattern" "$conf" || die "$conf has no line with '$pattern': update this script"
done
sed -e '/# :80, redirect only/,/^}/d' \
    -e '/^[[:space:]]*listen \[::\]/d' \
    -e "s|^\([[:space:]]*\)listen 443 ssl http2;|\1listen 127.0.0.1:$port;|" \
    -e '/^[[:space:]]*ssl_/d' \
    -e "s|root /opt/spawnlab/site;|root $site;|" \
    -e '/^[[:space:]]*server 127\.0\.0\.1:[0-9]* /d' \
    -e "/^[[:space:]]*hash \$arg_learner consistent;/r $work/servers.conf" \
    "$conf" > "$work/spawnlab.conf"

mime=/etc/nginx/mime.types
[ -f "$mime" ] && types="include $mime;" \
  || types='types { text/html html; text/css css; application/javascript js; application/wasm wasm; }'
cat > "$work/nginx.conf" <<CONF
# Written by deploy/run-local.sh; the site is deploy/nginx/spawnlab.conf.
daemon off;
master_process on;
worker_processes 1;
pid $work/nginx.pid;
events { worker_connections 1024; }
http {
  $types
  default_type application/octet-stream;
  access_log $work/access.log;
  client_body_temp_path $work/body;
  proxy_temp_path $work/proxy;
  fastcgi_temp_path $work/fastcgi;
  uwsgi_temp_path $work/uwsgi;
  scgi_temp_path $work/scgi;
  include $work/spawnlab.conf;
}
CONF
"$nginx" -t -q -p "$work" -c "$work/nginx.conf" -e "$work/error.log" \
  || { cat "$work/error.log" >&2; die "nginx refused the configuration (in $work)"; }
"$nginx" -p "$work" -c "$work/nginx.conf" -e "$work/error.log" &
pids+=($!)
for _ in $(seq 1 100); do
  ready "$port" && break
  kill -0 "${pids[-1]}" 2>/dev/null || { cat "$work/error.log" >&2; die "nginx exited"; }
  sleep 0.1
done
ready "$port" || die "nginx does not answer on port $port"

say "$count instances on 127.0.0.1:$((base + 1))-$((base + count)) behind nginx: open http://127.0.0.1:$port"
say "logs in $work (removed on exit); Ctrl-C stops everything"

# Until Ctrl-C, or until one of them exits by itself.
set +e
wait -n "${pids[@]}"
say "a process exited by itself (status $?): stopping the rest"
for f in "$work"/instance-*.log "$work/error.log"; do
  [ -s "$f" ] && { say "--- $f"; tail -n 5 "$f" >&2; }
done
exit 1
