# bench/lib.sh: what bench/client, bench/latency and bench/memory share (sourced, not run).
#
# Set BENCH_NAME before sourcing. Sourcing moves to the repository root and sets ROOT, OUT
# (bench/out) and START_DIR (the caller's directory, for relative paths in the environment).
# Helpers install what they need from Debian or PyPI on first use, like the rest of bench/.

START_DIR=$PWD
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
OUT=$ROOT/bench/out
mkdir -p "$OUT"

log() { printf '%s: %s\n' "$BENCH_NAME" "$*" >&2; }
die() { printf '%s: FAILED: %s\n' "$BENCH_NAME" "$*" >&2; exit 1; }

# calc FORMAT EXPR: a number computed by awk (parenthesize comparisons: awk reads a bare '>' in
# printf as output redirection).
calc() { awk "BEGIN { printf \"$1\", $2 }"; }

# summary KEY VALUE: one result line for bench/run, appended to $BENCH_SUMMARY when it is set.
summary() { [[ -z ${BENCH_SUMMARY:-} ]] || printf '%s\t%s\n' "$1" "$2" >> "$BENCH_SUMMARY"; }

apt_install() {  # apt_install PKG [ALTERNATIVE...]: the first that installs; apt-get update only if none does
    local pkg
    export DEBIAN_FRONTEND=noninteractive
    for pkg in "$@"; do apt-get install -y -q "$pkg" >&2 && return 0; done
    log "apt-get install $* failed; running apt-get update"
    apt-get update -q >&2 || true
    for pkg in "$@"; do apt-get install -y -q "$pkg" >&2 && return 0; done
    die "cannot install any of: $*"
}

children_of() {  # PIDs whose parent is $1
    local stat rest
    for stat in /proc/[0-9]*/stat; do
        rest=$(cat "$stat" 2>/dev/null) || continue
        rest=${rest##*) }
        set -- "$1" $rest
        [[ ${3:-} == "$1" ]] && { stat=${stat#/proc/}; echo "${stat%/stat}"; }
    done
    return 0
}

need_time() { [[ -x /usr/bin/time ]] || { log "installing time"; apt_install time; }; }

# need_aiohttp: Debian's own python3 in a venv under bench/out/venv with aiohttp; sets PY and
# AIOHTTP_VERSION. Debian's python3, not whatever comes first on PATH: Debian builds it with PGO
# and LTO, and on this machine it runs the aiohttp client ~15-20% faster than a pyenv build, so
# the peer gets the fastest Python at hand.
need_aiohttp() {
    local venv=$OUT/venv
    PY=$venv/bin/python
    if [[ ! -x $PY ]]; then
        log "creating venv $venv with /usr/bin/python3"
        rm -rf "$venv"
        if ! /usr/bin/python3 -m venv "$venv" >&2; then
            rm -rf "$venv"
            log "installing python3-venv"
            apt_install python3-venv
            /usr/bin/python3 -m venv "$venv" >&2 || die "cannot create a venv at $venv"
        fi
    fi
    if ! "$PY" -c 'import aiohttp' 2>/dev/null; then
        log "installing aiohttp into $venv"
        "$PY" -m pip install -q --disable-pip-version-check aiohttp >&2 || die "pip install aiohttp failed"
    fi
    AIOHTTP_VERSION=$("$PY" -c 'import aiohttp, platform; print(aiohttp.__version__, "on Python", platform.python_version())')
}

# gra_binary PRODUCT [GIVEN]: the path of a gra executable: GIVEN (an environment override,
# relative to the caller's directory or found on PATH) or a release build of PRODUCT.
gra_binary() {
    local product=$1 given=${2:-} path
    if [[ -n $given ]]; then
        case $given in
            /*) path=$given ;;
            */*) path=$START_DIR/$given ;;
            *) path=$(cd "$START_DIR" && command -v "$given") || die "$given: not found" ;;
        esac
    else
        log "building $product (swift build -c release --product $product)"
        swift build -c release --product "$product" >&2 || die "swift build failed"
        path=$(swift build -c release --show-bin-path)/$product
    fi
    [[ -x $path ]] || die "$product not found or not executable: $path"
    echo "$path"
}

# port_in_use PORT: something listens on 127.0.0.1:PORT.
port_in_use() {
    /usr/bin/python3 -c 'import socket,sys; s=socket.socket(); s.settimeout(0.5); sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)' "$1"
}

# --- nginx as a fixed-reply server (bench/nginx-client.conf.template) -------------------------
# start_nginx PORT: one worker on 127.0.0.1:PORT; sets NGINX_PID and NGINX_WORKER. The caller
# traps EXIT with stop_nginx.
NGINX_PID=
NGINX_WORKER=
start_nginx() {
    local port=$1 dir=$OUT/nginx bin
    bin=$(command -v nginx || true)
    [[ -z $bin && -x /usr/sbin/nginx ]] && bin=/usr/sbin/nginx
    if [[ -z $bin ]]; then
        log "installing nginx"
        apt_install nginx-light nginx
        bin=$(command -v nginx || echo /usr/sbin/nginx)
        [[ -x $bin ]] || die "nginx installed but not found"
    fi
    port_in_use "$port" && die "something already listens on 127.0.0.1:$port (a leftover nginx? see $dir/nginx.pid); set BENCH_PORT"
    rm -rf "$dir"
    mkdir -p "$dir"
    sed -e "s|@PORT@|$port|g" -e "s|@DIR@|$dir|g" "$ROOT/bench/nginx-client.conf.template" > "$dir/nginx.conf"
    "$bin" -t -q -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf" >&2 || die "nginx -t rejected $dir/nginx.conf"
    "$bin" -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf" </dev/null >&2 &
    NGINX_PID=$!
    local _
    for _ in $(seq 100); do
        kill -0 "$NGINX_PID" 2>/dev/null || { cat "$dir/error.log" >&2 2>/dev/null || true; die "nginx exited at start"; }
        nginx_answers "$port" && break
        sleep 0.1
    done
    nginx_answers "$port" || die "nginx does not answer on 127.0.0.1:$port"
    NGINX_WORKER=$(children_of "$NGINX_PID")
    [[ $NGINX_WORKER =~ ^[0-9]+$ ]] || die "cannot find the one nginx worker of master $NGINX_PID (got '$NGINX_WORKER')"
    log "nginx $("$bin" -v 2>&1 | sed 's|.*/||') on 127.0.0.1:$port (master $NGINX_PID, worker $NGINX_WORKER)"
}
nginx_answers() {
    /usr/bin/python3 - "http://127.0.0.1:$1/v1/models" <<'PYEOF' 2>/dev/null
import sys, urllib.request, json
with urllib.request.urlopen(sys.argv[1], timeout=1) as r:
    sys.exit(0 if json.load(r)["data"][0]["id"] == "bench-model" else 1)
PYEOF
}
stop_nginx() {
    [[ -n $NGINX_PID ]] || return 0
    if kill -0 "$NGINX_PID" 2>/dev/null; then
        kill -QUIT "$NGINX_PID" 2>/dev/null || true
        local _
        for _ in $(seq 50); do kill -0 "$NGINX_PID" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$NGINX_PID" 2>/dev/null; then
            kill -KILL "$NGINX_PID" 2>/dev/null || true
            [[ -n $NGINX_WORKER ]] && { kill -KILL "$NGINX_WORKER" 2>/dev/null || true; }
        fi
        wait "$NGINX_PID" 2>/dev/null || true
    fi
    NGINX_PID=
}
nginx_ticks() {  # utime+stime of the nginx worker, in clock ticks
    local stat
    kill -0 "$NGINX_WORKER" 2>/dev/null || die "the nginx worker $NGINX_WORKER is gone"
    stat=$(cat "/proc/$NGINX_WORKER/stat")
    stat=${stat##*) }
    set -- $stat   # $1 is the state (field 3), so utime (14) and stime (15) are $12 and $13
    echo $(( ${12} + ${13} ))
}
