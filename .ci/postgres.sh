#!/usr/bin/env bash
# A throwaway PostgreSQL server for the distributed-search tests and benchmark (nothing here is for production).
#
#   postgres.sh start DIR [PID]     create a cluster in DIR/data and start it on 127.0.0.1 at a free port (socket in DIR);
#                                   write DIR/url (postgresql://tforge:PASSWORD@127.0.0.1:PORT/postgres, mode 600) and
#                                   DIR/ca.pem (the server's self-signed TLS certificate: TLS is on, not required) and
#                                   DIR/other-ca.pem (a certificate that does not verify the server);
#                                   with PID, a watchdog stops the server and removes DIR once that process has ended
#   postgres.sh restart DIR [DOWN]  stop the server at once (immediate shutdown: like a crash), wait DOWN seconds
#                                   (default 1), start it again on the same port
#   postgres.sh stop DIR            stop the server and remove DIR
#
# PostgreSQL is installed with apt-get when missing (as root). initdb refuses to run as root, so as root the server
# runs as the 'postgres' user (the package creates it) or, without one, a system user 'tforge-pg' made here.
set -euo pipefail
cmd=${1:?usage: postgres.sh start|restart|stop DIR}
dir=${2:?usage: postgres.sh start|restart|stop DIR}
root=$([ "$(id -u)" -eq 0 ] && echo 1 || echo 0)

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

server_user() {
  if [ "$root" = 0 ]; then id -un; return; fi
  if id postgres >/dev/null 2>&1; then echo postgres; return; fi
  id tforge-pg >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin tforge-pg
  echo tforge-pg
}

as_server() { if [ "$root" = 1 ]; then runuser -u "$user" -- "$@"; else "$@"; fi; }

bin=$(pg_bin)
if [ "$cmd" = start ] && { [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; }; then
  if [ "$root" = 0 ]; then
    echo "postgres.sh: PostgreSQL is not installed (apt-get install postgresql as root), or point TFORGE_TEST_POSTGRES at a server" >&2
    exit 1
  fi
  echo "postgres.sh: installing PostgreSQL (apt-get install postgresql)" >&2
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq postgresql; } >&2
  bin=$(pg_bin)
  [ -x "$bin/initdb" ] || { echo "postgres.sh: apt-get did not install initdb" >&2; exit 1; }
fi
user=$(server_user)

start_server() {
  as_server "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 120 -o "$(cat "$dir/options")" start >/dev/null
}

case "$cmd" in
  start)
    mkdir -p "$dir"
    chmod 700 "$dir"
    if [ "$root" = 1 ]; then
      chown "$user" "$dir"
      as_server test -w "$dir" || { echo "postgres.sh: user $user cannot reach $dir (its parent folders must be open to it)" >&2; exit 1; }
    fi
    password=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')
    (umask 077 && printf '%s\n' "$password" > "$dir/password")
    [ "$root" = 1 ] && chown "$user" "$dir/password"
    # Local socket connections are trusted (the tests' own administration); TCP needs the password (what workers use).
    if ! as_server "$bin/initdb" -D "$dir/data" -U tforge --pwfile="$dir/password" --auth-local=trust --auth-host=scram-sha-256 \
         -E UTF8 --no-sync >"$dir/initdb.log" 2>&1; then
      cat "$dir/initdb.log" >&2
      exit 1
    fi
    rm -f "$dir/password"
    # TLS: a self-signed certificate for 127.0.0.1 (DIR/ca.pem verifies it), so the tests can check that sslmode and
    # sslrootcert reach the connection. Plain TCP connections stay allowed.
    if ! command -v openssl >/dev/null && [ "$root" = 1 ]; then { apt-get update -qq && apt-get install -y -qq openssl; } >&2; fi
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 -subj "/CN=127.0.0.1" \
      -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" -keyout "$dir/data/server.key" -out "$dir/data/server.crt" 2>/dev/null
    chmod 600 "$dir/data/server.key"
    [ "$root" = 1 ] && chown "$user" "$dir/data/server.key" "$dir/data/server.crt"
    cp "$dir/data/server.crt" "$dir/ca.pem"
    # Another authority's certificate, which must not verify the server.
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 -subj "/CN=127.0.0.1" \
      -addext "subjectAltName=IP:127.0.0.1" -keyout /dev/null -out "$dir/other-ca.pem" 2>/dev/null
    chmod 644 "$dir/ca.pem" "$dir/other-ca.pem"
    started=0
    for _ in 1 2 3 4 5 6 7 8; do
      port=$((20000 + RANDOM % 40000))
      # Durability of the server itself is not under test (the machine does not crash): no fsync, for speed.
      echo "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c shared_buffers=16MB -c max_connections=200 -c ssl=on" > "$dir/options"
      if start_server; then started=1; break; fi
    done
    if [ "$started" = 0 ]; then
      echo "postgres.sh: the server did not start:" >&2
      tail -n 20 "$dir/server.log" >&2 || true
      exit 1
    fi
    echo "$port" > "$dir/port"
    (umask 077 && echo "postgresql://tforge:$password@127.0.0.1:$port/postgres" > "$dir/url")
    if [ -n "${3:-}" ]; then
      nohup setsid bash "$0" watch "$dir" "$3" >/dev/null 2>&1 &
    fi
    ;;
  watch)
    while kill -0 "${3:?}" 2>/dev/null && [ -d "$dir/data" ]; do sleep 2; done
    exec bash "$0" stop "$dir"
    ;;
  restart)
    as_server "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null
    sleep "${3:-1}"
    start_server
    ;;
  stop)
    if [ -f "$dir/data/postmaster.pid" ] && [ -n "$bin" ]; then
      as_server "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf -- "$dir"
    ;;
  *)
    echo "usage: postgres.sh start|restart|stop DIR" >&2
    exit 2
    ;;
esac
