#!/usr/bin/env bash
# install.sh — set up bltcy-relay on Debian 12 (bookworm). Run as root.
#
#   ./install.sh           packages, build, database, config, first admin,
#                          relay pool (supervisor) and lighttpd on PORT
#   SQL_DSN=... ./install.sh
#                          the same on an existing database or cluster:
#                          no local MariaDB server, database or user
#   ./install.sh --deps    only the packages needed to build and test
#   ./install.sh --help
#
# Safe to run again: it keeps the config, the database password and the
# admin user, and only restarts the services.
set -Eeuo pipefail

PROG=${0##*/}
SRC_DIR=$(cd "$(dirname "$0")" && pwd)

PREFIX=/usr/local
BIN_DIR=$PREFIX/bin
CGI=$PREFIX/lib/bltcy-relay/bltcy-admin.cgi
CONF_DIR=/etc/bltcy-relay
CONF=$CONF_DIR/bltcy.env
LOG_DIR=/var/log/bltcy-relay
DEFAULT_LOG_FILE=$LOG_DIR/relay.log
RUN_DIR=/run/bltcy-relay
SOCK=$RUN_DIR/relay.sock
DB_SOCK=/run/mysqld/mysqld.sock
DB_NAME=bltcy
DB_USER=bltcy
ADMIN_USER=admin
RELAY_USER=bltcy
WEB_GROUP=www-data
LIGHTTPD_CONF=$CONF_DIR/lighttpd.conf
LIGHTTPD_PID=/run/bltcy-lighttpd.pid
SUPERVISOR_CONF=/etc/supervisor/supervisord.conf
SUPERVISOR_PROG=/etc/supervisor/conf.d/bltcy-relay.conf
PROGRAM=bltcy-relay
SYSCTL_CONF=/etc/sysctl.d/60-bltcy-relay.conf
SOMAXCONN=4096

# Debian package names (all in bookworm main). nodejs/npm are added only
# when `node` and `npm` do not already work (they may come from elsewhere).
PACKAGES=(
    build-essential pkg-config
    libfcgi-dev libcurl4-openssl-dev libmariadb-dev libjson-c-dev libssl-dev libcrypt-dev
    zlib1g-dev libbrotli-dev
    mariadb-server mariadb-client
    lighttpd nginx-light spawn-fcgi fcgiwrap supervisor
    curl ca-certificates openssl iproute2 python3 python3-pymysql
    chromium fonts-wqy-zenhei wrk valgrind clang libclang-rt-14-dev
    golang-go
    # a Galera cluster behind HAProxy: the galera suite, and relay hosts on a cluster
    galera-4 rsync haproxy
)

usage() {
    cat <<EOF
Usage: ./$PROG [--deps | --help]

Sets up bltcy-relay on Debian 12. Run as root from the source folder.

  (no option)  install the packages, build and install the programs
               (make install PREFIX=$PREFIX), start MariaDB, create the
               database '$DB_NAME' and its user, write $CONF
               (existing keys are never changed), migrate the schema,
               create the first admin user '$ADMIN_USER' (its password is
               printed once), start the relay pool under supervisor and
               lighttpd on PORT, then check that they answer.
  --deps       only install what building and testing need (apt packages,
               npm packages of tests/browser); starts no service.
  -h, --help   show this help.

Environment:
  PORT=N       port lighttpd listens on when the config is first written
               (default 3000; afterwards the config's PORT is used).
  SQL_DSN=DSN  set up a relay host on an existing database or Galera
               cluster, e.g.
                 SQL_DSN=mysql://bltcy:PASS@db1:3306,db2:3306,db3:3306/bltcy
               (or new-api's bltcy:PASS@tcp(db1:3306,db2:3306)/bltcy):
               no local MariaDB server is installed or started and no
               database or user is created (create them on the cluster
               first, with ALL PRIVILEGES on the database); DSN is written
               to the config as SQL_DSN (replacing one there) and the
               schema is migrated on it. Servers that write a binary log,
               as every Galera node does, must allow the schema's triggers:
               log_bin_trust_function_creators = 1 in the [mysqld] section
               of each server's config (e.g.
               /etc/mysql/mariadb.conf.d/60-bltcy.cnf), or at once with
               SET GLOBAL log_bin_trust_function_creators = 1.

Running it again is safe: it keeps the config, the database password and
the admin user, and restarts the relay pool and lighttpd.
EOF
}

say()  { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
die()  { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }

on_error() {
    local rc=$? line=$1
    printf '%s: error: failed (exit %s) at line %s: %s\n' "$PROG" "$rc" "$line" "$BASH_COMMAND" >&2
    exit "$rc"
}
trap 'on_error $LINENO' ERR

# True when systemd is the init system (sd_booted(3)).
have_systemd() {
    [ -d /run/systemd/system ] && [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]
}

# wait_until SECONDS WHAT COMMAND...: poll COMMAND every 0.2 s until it
# succeeds; fail with a message naming WHAT after SECONDS.
wait_until() {
    local secs=$1 what=$2 i
    shift 2
    for ((i = 0; i < secs * 5; i++)); do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.2
    done
    warn "gave up after ${secs}s waiting for $what"
    return 1
}

pkg_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]
}

# install_file SRC DEST MODE: copy only when the content differs.
# Returns 0 when DEST changed, 1 when it was already up to date.
install_file() {
    local src=$1 dest=$2 mode=$3
    if [ -f "$dest" ] && cmp -s "$src" "$dest"; then
        chmod "$mode" "$dest"
        return 1
    fi
    if [ -f "$dest" ]; then
        cp -p "$dest" "$dest.old"
        note "replaced $dest (previous version kept as $dest.old)"
    fi
    install -m "$mode" "$src" "$dest"
    return 0
}

# ---------------------------------------------------------------- packages

deps() {
    local want=() need=() p fresh_web=()

    # a relay host on an existing database runs no MariaDB server of its own
    for p in "${PACKAGES[@]}"; do
        if [ -n "$EXT_DSN" ] && [ "$1" = full ] && [ "$p" = mariadb-server ]; then
            continue
        fi
        want+=("$p")
    done

    if command -v node >/dev/null 2>&1 && node --version >/dev/null 2>&1 &&
        command -v npm >/dev/null 2>&1 && npm --version >/dev/null 2>&1; then
        note "node $(node --version) and npm $(npm --version) already work: not installing nodejs/npm"
    else
        want+=(nodejs npm)
    fi

    for p in "${want[@]}"; do
        pkg_installed "$p" || need+=("$p")
    done

    if [ ${#need[@]} -eq 0 ]; then
        say "All Debian packages are installed"
    else
        say "Installing Debian packages: ${need[*]}"
        for p in lighttpd nginx-light; do
            case " ${need[*]} " in *" $p "*) fresh_web+=("$p") ;; esac
        done
        # Keep the packages' maintainer scripts from starting their services
        # (nginx and lighttpd would both try to take port 80): install a
        # policy-rc.d that denies, unless the machine already has one.
        local policy=/usr/sbin/policy-rc.d own_policy=0
        if [ ! -e "$policy" ]; then
            printf '#!/bin/sh\n# temporary, from bltcy-relay install.sh\nexit 101\n' >"$policy"
            chmod 0755 "$policy"
            own_policy=1
        fi
        local rc=0
        {
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -q &&
                apt-get install -y -q --no-install-recommends \
                    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
                    "${need[@]}"
        } || rc=$?
        if [ "$own_policy" = 1 ]; then
            rm -f "$policy"
        fi
        [ "$rc" = 0 ] || die "apt-get failed (exit $rc) installing: ${need[*]}"

        # The distribution's own lighttpd/nginx services would listen on port
        # 80 at the next boot; we run our own instance, so switch them off
        # when this run is what installed them.
        if have_systemd && [ ${#fresh_web[@]} -gt 0 ]; then
            for p in "${fresh_web[@]}"; do
                case $p in nginx-light) p=nginx ;; esac
                systemctl disable --now "$p.service" >/dev/null 2>&1 || true
                note "disabled the packaged $p.service (bltcy-relay runs its own front server)"
            done
        fi
    fi

    for p in node npm; do
        command -v "$p" >/dev/null 2>&1 || die "'$p' is still missing after installing packages"
    done

    local browser=$SRC_DIR/tests/browser
    if [ -f "$browser/package.json" ]; then
        export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
        if [ -f "$browser/package-lock.json" ]; then
            if [ -f "$browser/node_modules/.package-lock.json" ] &&
                [ ! "$browser/package-lock.json" -nt "$browser/node_modules/.package-lock.json" ] &&
                [ ! "$browser/package.json" -nt "$browser/node_modules/.package-lock.json" ]; then
                say "npm packages of tests/browser are up to date"
            else
                say "Installing npm packages of tests/browser (npm ci)"
                (cd "$browser" && npm ci --no-audit --no-fund) || die "npm ci failed in tests/browser"
            fi
        else
            say "Installing npm packages of tests/browser (npm install)"
            (cd "$browser" && npm install --no-audit --no-fund) || die "npm install failed in tests/browser"
        fi
    fi
}

# ---------------------------------------------------------------- build

build_and_install() {
    say "Building (make)"
    make -C "$SRC_DIR" -j"$(nproc)" || die "make failed"
    say "Installing programs (make install PREFIX=$PREFIX)"
    make -C "$SRC_DIR" install PREFIX="$PREFIX" || die "make install failed"
    local f
    for f in "$BIN_DIR/bltcy-relay" "$BIN_DIR/bltcy-ctl" "$CGI"; do
        [ -x "$f" ] || die "make install did not install $f"
    done
}

# ---------------------------------------------------------------- system

system_user_and_dirs() {
    if ! getent group "$RELAY_USER" >/dev/null; then
        groupadd --system "$RELAY_USER"
    fi
    if ! getent passwd "$RELAY_USER" >/dev/null; then
        say "Creating system user $RELAY_USER"
        useradd --system --gid "$RELAY_USER" --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin --comment "bltcy-relay" "$RELAY_USER"
    fi
    getent group "$WEB_GROUP" >/dev/null || die "group $WEB_GROUP does not exist"

    install -d -o root -g root -m 0755 "$CONF_DIR"
    install -d -o root -g "$WEB_GROUP" -m 0750 "$RUN_DIR"
    install -d -o "$RELAY_USER" -g "$WEB_GROUP" -m 0770 "$LOG_DIR"
    [ -d /var/log/lighttpd ] || install -d -o www-data -g www-data -m 0750 /var/log/lighttpd
    if have_systemd; then
        # Recreate the socket folder at boot (/run is a tmpfs).
        install_file "$SRC_DIR/systemd/bltcy-relay.tmpfiles" /etc/tmpfiles.d/bltcy-relay.conf 0644 || true
    fi
}

# ---------------------------------------------------------------- MariaDB

db_ping() {
    mariadb-admin --protocol=socket --socket="$DB_SOCK" -uroot ping >/dev/null 2>&1
}

start_mariadb() {
    if db_ping; then
        say "MariaDB is running ($DB_SOCK)"
        return
    fi
    say "Starting MariaDB"
    if have_systemd; then
        systemctl enable mariadb.service >/dev/null 2>&1 || true
        systemctl start mariadb.service || die "systemctl start mariadb failed (see: journalctl -u mariadb)"
    else
        [ -d /var/lib/mysql/mysql ] ||
            mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null ||
            die "mariadb-install-db failed"
        install -d -o mysql -g root -m 0755 /run/mysqld
        install -d -o mysql -g adm -m 2750 /var/log/mysql
        local safe
        safe=$(command -v mariadbd-safe || command -v mysqld_safe) || die "mariadbd-safe/mysqld_safe not found"
        # No systemd: run it detached (setsid); it keeps mariadbd
        # running (and restarts it if it dies).
        setsid -f "$safe" --skip-syslog --log-error=/var/log/mysql/error.log \
            </dev/null >/dev/null 2>&1
    fi
    wait_until 60 "MariaDB on $DB_SOCK" db_ping ||
        die "MariaDB did not start; see /var/log/mysql/error.log"
    note "MariaDB answers on $DB_SOCK"
}

# Runs SQL (stdin) as MariaDB's root through the Unix socket (Debian's root
# account authenticates by unix_socket; /root/.my.cnf is read if present).
db_root() {
    mariadb --protocol=socket --socket="$DB_SOCK" -uroot "$@"
}

# Escape a string for a single-quoted SQL literal.
sql_quote() {
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\'/\'\'}
    printf '%s' "$s"
}

# ---------------------------------------------------------------- config

# conf_get KEY: the last value of KEY in the config file (empty if absent).
conf_get() {
    sed -n -e "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" "$CONF" 2>/dev/null | tail -n 1 |
        sed -e 's/[[:space:]]*$//'
}

conf_has() {
    grep -Eq "^[[:space:]]*$1[[:space:]]*=" "$CONF"
}

LOCAL_DB_PASS=     # set when SQL_DSN is the local database this script manages
EXT_DSN=${SQL_DSN:-}   # given: an existing database or cluster (usage)

# set_conf_dsn DSN: the config's SQL_DSN lines replaced by one with DSN.
set_conf_dsn() {
    local tmp
    tmp=$(mktemp "$CONF.XXXXXX")
    grep -Ev "^[[:space:]]*SQL_DSN[[:space:]]*=" "$CONF" >"$tmp" || true
    printf 'SQL_DSN=%s\n' "$1" >>"$tmp"
    mv "$tmp" "$CONF"
}

write_config() {
    local created=0 added=() replaced=0
    umask 027
    if [ ! -f "$CONF" ]; then
        created=1
        cat >"$CONF" <<'EOF'
# bltcy-relay configuration: KEY=VALUE, one per line. Read by bltcy-relay,
# bltcy-ctl and the admin CGI; environment variables override these keys.
# After changing it: supervisorctl signal HUP bltcy-relay
#
# Other keys (defaults shown):
# CRYPTO_SECRET=            key for encrypting channel keys (derived from SESSION_SECRET if unset)
# RELAY_WORKERS=            worker processes (2 x cores)
# RELAY_THREADS=1024        requests each worker holds at once
# RELAY_MAX_BODY=67108864   largest request body (keep lighttpd's server.max-request-size equal, in KiB)
# RELAY_TIMEOUT=300         total upstream timeout, seconds
# RELAY_CONNECT_TIMEOUT=60  connect + TLS handshake, seconds
# RELAY_HEADER_TIMEOUT=60   time to the first response byte, seconds
# RELAY_PROXY=              proxy for reaching the old gateway (default: https_proxy/http_proxy)
# METERING=strict           strict | lease
# LOG_LEVEL=info            debug | info | warn | error
# RELAY_SERVICES=           extra prefix:service pairs, e.g. minimax:minimax
# BREAKER_THRESHOLD=5       connect failures in a row before a channel is skipped
# BREAKER_COOLDOWN=30       seconds a tripped channel is skipped
EOF
    fi

    local dsn pass
    if [ -n "$EXT_DSN" ]; then
        if ! conf_has SQL_DSN; then
            added+=(SQL_DSN)
            set_conf_dsn "$EXT_DSN"
        elif [ "$(conf_get SQL_DSN)" != "$EXT_DSN" ]; then
            cp -p "$CONF" "$CONF.old"
            set_conf_dsn "$EXT_DSN"
            replaced=1
            note "SQL_DSN in $CONF replaced by the one given (previous config kept as $CONF.old)"
        fi
        dsn=$EXT_DSN
    elif conf_has SQL_DSN; then
        dsn=$(conf_get SQL_DSN)
    else
        pass=$(openssl rand -hex 24)
        dsn="$DB_USER:$pass@unix($DB_SOCK)/$DB_NAME"
        printf 'SQL_DSN=%s\n' "$dsn" >>"$CONF"
        added+=(SQL_DSN)
    fi
    # The DSN this script writes: user:pass@unix(/run/mysqld/mysqld.sock)/bltcy
    local re="^$DB_USER:(.*)@unix\\($DB_SOCK\\)/$DB_NAME\$"
    if [ -z "$EXT_DSN" ] && [[ $dsn =~ $re ]]; then
        LOCAL_DB_PASS=${BASH_REMATCH[1]}
        [ -n "$LOCAL_DB_PASS" ] || die "SQL_DSN in $CONF has an empty password"
    fi

    if ! conf_has SESSION_SECRET; then
        printf 'SESSION_SECRET=%s\n' "$(openssl rand -hex 32)" >>"$CONF"
        added+=(SESSION_SECRET)
    fi
    if ! conf_has PORT; then
        printf 'PORT=%s\n' "${PORT:-3000}" >>"$CONF"
        added+=(PORT)
    fi
    if ! conf_has LOG_FILE; then
        printf 'LOG_FILE=%s\n' "$DEFAULT_LOG_FILE" >>"$CONF"
        added+=(LOG_FILE)
    fi
    umask 022

    # Readable by the relay (group www-data) and the admin CGI (www-data).
    chown root:"$WEB_GROUP" "$CONF"
    chmod 0640 "$CONF"

    if [ "$created" = 1 ]; then
        say "Wrote $CONF"
    elif [ ${#added[@]} -gt 0 ]; then
        say "Added to $CONF: ${added[*]}"
    elif [ "$replaced" = 1 ]; then
        say "Set SQL_DSN in $CONF"
    else
        say "Config $CONF exists (left unchanged)"
    fi

    CONF_PORT=$(conf_get PORT)
    [[ $CONF_PORT =~ ^[0-9]+$ ]] && [ "$CONF_PORT" -ge 1 ] && [ "$CONF_PORT" -le 65535 ] ||
        die "PORT in $CONF is not a port number: '$CONF_PORT'"
    if [ -n "${PORT:-}" ] && [ "$PORT" != "$CONF_PORT" ]; then
        warn "PORT=$PORT was given but $CONF has PORT=$CONF_PORT; using $CONF_PORT (edit the config to change it)"
    fi

    LOG_FILE_PATH=$(conf_get LOG_FILE)
    if [ -n "$LOG_FILE_PATH" ] && [ ! -e "$LOG_FILE_PATH" ] && [ -d "$(dirname "$LOG_FILE_PATH")" ]; then
        install -o "$RELAY_USER" -g "$WEB_GROUP" -m 0660 /dev/null "$LOG_FILE_PATH"
    fi
}

setup_database() {
    if [ -z "$LOCAL_DB_PASS" ]; then
        say "SQL_DSN in $CONF is not this host's '$DB_NAME' database: not creating a database or user"
        return
    fi
    say "Creating database '$DB_NAME' and user '$DB_USER'@'localhost' (if missing)"
    local q
    q=$(sql_quote "$LOCAL_DB_PASS")
    db_root <<EOF || die "could not set up the database as MariaDB root (is /root/.my.cnf needed?)"
CREATE DATABASE IF NOT EXISTS \`$DB_NAME\` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$q';
ALTER USER '$DB_USER'@'localhost' IDENTIFIED BY '$q';
GRANT ALL PRIVILEGES ON \`$DB_NAME\`.* TO '$DB_USER'@'localhost';
EOF
}

ctl() {
    "$BIN_DIR/bltcy-ctl" -c "$CONF" "$@"
}

migrate_and_admin() {
    say "Migrating the schema (bltcy-ctl migrate)"
    # on a server with a binary log it says what to set (usage: SQL_DSN)
    ctl migrate || die "bltcy-ctl migrate failed"

    # Did the admin exist before? Ask the database directly when it is the
    # local one; otherwise go by what bltcy-ctl says.
    local existed=unknown out n
    if [ -n "$LOCAL_DB_PASS" ]; then
        n=$(db_root -N -B -e "SELECT COUNT(*) FROM \`$DB_NAME\`.users WHERE username='$ADMIN_USER'" 2>/dev/null) || n=
        case $n in
            0) existed=no ;;
            [1-9]*) existed=yes ;;
        esac
    fi
    if [ "$existed" = yes ]; then
        say "Admin user '$ADMIN_USER' exists (password unchanged)"
        return
    fi
    out=$(ctl add-admin "$ADMIN_USER") || die "bltcy-ctl add-admin $ADMIN_USER failed: $out"
    if [ "$existed" = unknown ] && printf '%s' "$out" | grep -qiE 'exist'; then
        say "Admin user '$ADMIN_USER' exists (password unchanged)"
        return
    fi
    ADMIN_CREATED_OUTPUT=$out
    say "Created admin user '$ADMIN_USER'"
}

# ---------------------------------------------------------------- services

supervisorctl_() {
    supervisorctl -c "$SUPERVISOR_CONF" "$@"
}

supervisor_up() {
    supervisorctl_ pid 2>/dev/null | grep -Eq '^[0-9]+$'
}

relay_running() {
    [ -S "$SOCK" ] && supervisorctl_ status "$PROGRAM" 2>/dev/null | grep -q RUNNING
}

start_relay() {
    [ -f "$SUPERVISOR_CONF" ] || die "$SUPERVISOR_CONF is missing (is the supervisor package installed?)"
    if install_file "$SRC_DIR/supervisor.conf.sample" "$SUPERVISOR_PROG" 0644; then
        note "installed $SUPERVISOR_PROG"
    fi

    if ! supervisor_up; then
        say "Starting supervisord"
        if have_systemd; then
            systemctl enable supervisor.service >/dev/null 2>&1 || true
            systemctl start supervisor.service || die "systemctl start supervisor failed"
        else
            local out
            out=$(supervisord -c "$SUPERVISOR_CONF" </dev/null 2>&1) ||
                die "supervisord -c $SUPERVISOR_CONF failed: $out"
        fi
        wait_until 20 "supervisord" supervisor_up || die "supervisord did not come up"
    fi

    say "Starting the relay pool under supervisor ($PROGRAM)"
    supervisorctl_ reread >/dev/null
    supervisorctl_ update "$PROGRAM" >/dev/null || true
    # Restart so a rebuilt binary is the one running. TERM lets in-flight
    # requests finish first (up to stopwaitsecs).
    supervisorctl_ restart "$PROGRAM" >/dev/null || true
    if ! wait_until 20 "$PROGRAM to run" relay_running; then
        supervisorctl_ status "$PROGRAM" >&2 || true
        tail -n 20 "$LOG_DIR/relay.stderr.log" >&2 2>/dev/null || true
        die "the relay pool did not start (see $LOG_DIR/relay.stderr.log and $LOG_FILE_PATH)"
    fi
    note "$(supervisorctl_ status "$PROGRAM")"
}

port_in_use() {
    ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
}

# Fails when another program than our lighttpd (pid $2, may be empty)
# listens on port $1.
check_port_free() {
    local port=$1 ours=${2:-} who
    port_in_use "$port" || return 0
    who=$(ss -Hltnp "sport = :$port" 2>/dev/null | head -n 3)
    if [ -n "$ours" ] && printf '%s' "$who" | grep -q "pid=$ours,"; then
        return 0
    fi
    die "port $port is already in use by another program: $who"
}

lighttpd_pid() {
    local pid
    pid=$(cat "$LIGHTTPD_PID" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = /usr/sbin/lighttpd ] || return 1
    printf '%s' "$pid"
}

lighttpd_stopped() {
    ! lighttpd_pid >/dev/null
}

start_lighttpd() {
    local tmp
    tmp=$(mktemp)
    sed -e "s|^server\.port[[:space:]]*=.*|server.port          = $CONF_PORT|" \
        "$SRC_DIR/lighttpd.conf.sample" >"$tmp"
    if ! lighttpd -tt -f "$tmp" >/dev/null; then
        rm -f "$tmp"
        die "lighttpd rejects the generated config (lighttpd -tt)"
    fi
    if install_file "$tmp" "$LIGHTTPD_CONF" 0644; then
        note "installed $LIGHTTPD_CONF (port $CONF_PORT)"
    fi
    rm -f "$tmp"

    say "Starting lighttpd on port $CONF_PORT"
    if have_systemd; then
        local unit=/etc/systemd/system/bltcy-lighttpd.service
        install_file "$SRC_DIR/systemd/bltcy-lighttpd.service" "$unit" 0644 || true
        systemctl daemon-reload
        systemctl enable bltcy-lighttpd.service >/dev/null 2>&1 || true
        check_port_free "$CONF_PORT" "$(systemctl show -p MainPID --value bltcy-lighttpd.service 2>/dev/null || true)"
        systemctl restart bltcy-lighttpd.service ||
            die "systemctl restart bltcy-lighttpd failed (see: journalctl -u bltcy-lighttpd)"
    else
        local pid=
        pid=$(lighttpd_pid) || pid=
        check_port_free "$CONF_PORT" "$pid"
        if [ -n "$pid" ]; then
            # SIGINT: graceful shutdown (server.graceful-shutdown-timeout).
            kill -INT "$pid" 2>/dev/null || true
            if ! wait_until 15 "lighttpd (pid $pid) to stop" lighttpd_stopped; then
                kill -TERM "$pid" 2>/dev/null || true
                wait_until 5 "lighttpd (pid $pid) to stop" lighttpd_stopped ||
                    die "lighttpd (pid $pid) does not stop"
            fi
        fi
        check_port_free "$CONF_PORT"
        lighttpd -f "$LIGHTTPD_CONF" ||
            die "lighttpd -f $LIGHTTPD_CONF failed (see /var/log/lighttpd/bltcy-relay.error.log)"
    fi
}

# The pool holds 4,096 requests at once by default, and the listen queues
# of the relay socket (spawn-fcgi -b 4096) and of the front
# (server.listen-backlog, nginx's backlog=) are as long, so a burst waits
# instead of being refused: the kernel cuts every queue to
# net.core.somaxconn (4,096 by default since Linux 5.4, 128 before).
raise_somaxconn() {
    local cur
    cur=$(cat /proc/sys/net/core/somaxconn 2>/dev/null) || cur=
    if [[ $cur =~ ^[0-9]+$ ]] && [ "$cur" -ge "$SOMAXCONN" ]; then
        return
    fi
    say "Raising net.core.somaxconn from ${cur:-?} to $SOMAXCONN ($SYSCTL_CONF)"
    printf '%s\nnet.core.somaxconn = %s\n' \
        "# bltcy-relay (install.sh): listen queues as long as the pool's requests" \
        "$SOMAXCONN" >"$SYSCTL_CONF"
    sysctl -q -p "$SYSCTL_CONF" >/dev/null 2>&1 ||
        warn "could not set net.core.somaxconn now (in a container the host sets it); listen queues stay at ${cur:-?}"
}

install_logrotate() {
    [ -d /etc/logrotate.d ] || return 0
    [ -n "$LOG_FILE_PATH" ] || return 0
    local tmp
    tmp=$(mktemp)
    cat >"$tmp" <<EOF
# bltcy-relay request log; USR1 makes the relay reopen LOG_FILE.
$LOG_FILE_PATH {
    weekly
    rotate 8
    compress
    delaycompress
    missingok
    notifempty
    create 0660 $RELAY_USER $WEB_GROUP
    postrotate
        supervisorctl -c $SUPERVISOR_CONF signal USR1 $PROGRAM >/dev/null 2>&1 || true
    endscript
}
EOF
    install_file "$tmp" /etc/logrotate.d/bltcy-relay 0644 || true
    rm -f "$tmp"
}

http_code() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@" || true
}

check_front() {
    local base="http://127.0.0.1:$CONF_PORT" code body
    wait_until 15 "lighttpd on port $CONF_PORT" curl -s -o /dev/null --max-time 2 "$base/bltcy/health" ||
        die "lighttpd does not answer on port $CONF_PORT (see /var/log/lighttpd/bltcy-relay.error.log)"
    code=$(http_code "$base/bltcy/health")
    case $code in
        200) note "GET /bltcy/health -> 200" ;;
        *) die "GET $base/bltcy/health answered $code, expected 200 (see $LOG_FILE_PATH and /var/log/lighttpd/bltcy-relay.error.log)" ;;
    esac
    body=$(curl -s --max-time 10 "$base/kling/v1/videos/image2video" || true)
    code=$(http_code "$base/kling/v1/videos/image2video")
    if [ "$code" = 401 ] && printf '%s' "$body" | grep -q '"missing_token"'; then
        note "GET /kling/... without a token -> 401 missing_token (relay answers through lighttpd)"
    else
        die "GET $base/kling/v1/videos/image2video answered $code, expected 401 missing_token: $body"
    fi
}

summary() {
    local host
    host=$(hostname -I 2>/dev/null | awk '{print $1}') || true
    [ -n "$host" ] || host=127.0.0.1
    local url="http://$host:$CONF_PORT"

    echo
    if [ -n "${ADMIN_CREATED_OUTPUT:-}" ]; then
        echo "------------------------------------------------------------------"
        echo " First admin user '$ADMIN_USER' created. Its password is shown ONCE:"
        printf '%s\n' "$ADMIN_CREATED_OUTPUT" | sed 's/^/   /'
        echo "------------------------------------------------------------------"
    fi
    cat <<EOF
bltcy-relay is running.

  Admin pages:  $url/admin/            (user: $ADMIN_USER)
  Config:       $CONF
  Request log:  $LOG_FILE_PATH
  Pool:         supervisorctl status $PROGRAM

Add a channel (an old gateway, type 55):

  bltcy-ctl add-channel --name "旧网关-统一" --base-url https://api.bltcy.ai \\
      --key sk-OLD-GATEWAY-KEY --models runway,pika,kling,jimeng,suno \\
      --setting '{"PassthroughQuota": 1000}'

Create a user with quota and a token for it (prints sk-...):

  bltcy-ctl add-user alice --quota 10000000
  bltcy-ctl add-token --user alice --name alice-app --quota 500000

Call it:

  curl -H "Authorization: Bearer sk-..." -H "Content-Type: application/json" \\
      $url/kling/v1/videos/image2video \\
      -d '{"model":"kling-v1-6","prompt":"test","image":"base64..."}'
EOF
}

# ---------------------------------------------------------------- main

main() {
    local mode=full
    while [ $# -gt 0 ]; do
        case $1 in
            --deps) mode=deps ;;
            -h | --help) usage; exit 0 ;;
            *) usage >&2; die "unknown option: $1" ;;
        esac
        shift
    done

    [ "$(id -u)" = 0 ] || die "run as root (it installs packages and services)"
    [ -r /etc/debian_version ] && command -v apt-get >/dev/null ||
        die "this script is for Debian 12 (apt-get not found)"
    if [ -n "${PORT:-}" ]; then
        [[ $PORT =~ ^[0-9]+$ ]] && [ "$PORT" -ge 1 ] && [ "$PORT" -le 65535 ] ||
            die "PORT must be a port number, got '$PORT'"
    fi

    deps "$mode"
    if [ "$mode" = deps ]; then
        say "Dependencies installed. Next: make test"
        return 0
    fi

    build_and_install
    system_user_and_dirs
    if [ -n "$EXT_DSN" ]; then
        say "SQL_DSN given: using that database, no local MariaDB server"
    else
        start_mariadb
    fi
    write_config
    setup_database
    migrate_and_admin
    raise_somaxconn
    start_relay
    start_lighttpd
    install_logrotate
    check_front
    summary
}

main "$@"
