#!/usr/bin/env bash
# Benchmark of the booted unikernel (not a test; benches/README.md, "Booted unikernel"):
# image size, guest time from entry to listening and to the first connection attempt,
# and wrk keep-alive requests/s and new connections/s against
#   guest/user  the image under QEMU TCG, QEMU's user network (127.0.0.1 -> guest 443),
#   guest/tap   the image under QEMU TCG on a TAP device in a private network namespace,
#   hosted/tap  `tlsflow serve --backend unikernel` (the same application on the same
#               TAP set-up, a Linux process),
# all with the same P-256 certificate and the same wrk command (1 thread, 4 connections,
# GET /), RUNS runs of SECS seconds each, medians printed. Needs root (netns, TAP), wrk,
# qemu-system-x86_64, openssl.
#
#   unikernel/boot/bench.sh            RUNS=3 SECS=5 by default
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
runs=${RUNS:-3} secs=${SECS:-5}
tmp=$(mktemp -d /tmp/tlsflow-bench.XXXXXX)
ns=tlsflow-bench-$$
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

image=$(scripts/boot --image)
cargo build --release --quiet --bin tlsflow
strip -o "$tmp/stripped" "$image"
echo "image: $(stat -c %s "$image") bytes ($(stat -c %s "$tmp/stripped") stripped)"

(
    cd "$tmp"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -keyout ca.key -out ca.pem -subj "/CN=bench CA" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem \
        -out s.csr -subj "/CN=localhost" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:192.0.2.2\n' > ext
    openssl x509 -req -in s.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
        -extfile ext -out cert.pem 2>/dev/null
    cat cert.pem ca.pem > chain.pem
)

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# wait_line FILE PATTERN: until a line matching PATTERN is in FILE (60 s).
wait_line() {
    for _ in $(seq 600); do
        grep -q "$2" "$1" && return 0
        sleep 0.1
    done
    echo "no '$2' in $1:" >&2; cat "$1" >&2; exit 1
}

# wrk_rate PREFIX URL [ARGS]: median requests/s over the runs.
wrk_rate() {
    local prefix=$1 url=$2; shift 2
    for _ in $(seq "$runs"); do
        $prefix wrk -t1 -c4 -d"${secs}s" "$@" "$url" | awk '/Requests\/sec/ {print $2}'
    done | median
}

measure() {
    local name=$1 prefix=$2 url=$3
    local ka nc
    ka=$(wrk_rate "$prefix" "$url")
    nc=$(wrk_rate "$prefix" "$url" -H "Connection: close")
    printf '%-11s keep-alive %8s req/s   new connections %7s /s\n' "$name" "$ka" "$nc"
}

# Boot times: five boots, DHCP and static, each until the first connection.
for mode in dhcp static; do
    listen=() first=()
    for i in $(seq 5); do
        port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
        extra=()
        [ "$mode" = static ] && extra=(--ip 10.0.2.15/24 --gw 10.0.2.2)
        scripts/boot --port "$port" --cert "$tmp/chain.pem" --key "$tmp/key.pem" "${extra[@]}" \
            > "$tmp/boot.log" 2>&1 &
        pid=$!
        wait_line "$tmp/boot.log" "guest listening"
        curl -s -o /dev/null --max-time 20 --retry 2 --cacert "$tmp/ca.pem" "https://127.0.0.1:$port/"
        wait_line "$tmp/boot.log" "first connection attempt"
        kill "$pid"; wait "$pid" 2>/dev/null || true
        listen+=("$(sed -n 's/.*(https, \([0-9]*\) ms after entry).*/\1/p' "$tmp/boot.log")")
    done
    printf 'entry -> listening (%s): median %s ms of %s\n' "$mode" \
        "$(printf '%s\n' "${listen[@]}" | median)" "${listen[*]}"
done

# guest/user
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
scripts/boot --port "$port" --cert "$tmp/chain.pem" --key "$tmp/key.pem" > "$tmp/user.log" 2>&1 &
pids+=($!)
wait_line "$tmp/user.log" "guest listening"
measure guest/user "" "https://127.0.0.1:$port/"
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true

# The namespace and its TAP device (host side 192.0.2.1, the stack 192.0.2.2).
ip netns add "$ns"
in_ns="ip netns exec $ns"
$in_ns ip link set lo up
$in_ns ip tuntap add dev tap0 mode tap
$in_ns ip addr add 192.0.2.1/24 dev tap0
$in_ns ip link set tap0 up

$in_ns scripts/boot --tap tap0 --ip 192.0.2.2/24 --cert "$tmp/chain.pem" --key "$tmp/key.pem" \
    > "$tmp/tap.log" 2>&1 &
pids+=($!)
wait_line "$tmp/tap.log" "guest listening"
measure guest/tap "$in_ns" "https://192.0.2.2/"
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true

# The same without checksum offload, and the guest-side time of 4 MiB downloads, both ways.
for mode in on off; do
    $in_ns scripts/boot --tap tap0 --ip 192.0.2.2/24 --cert "$tmp/chain.pem" --key "$tmp/key.pem" \
        --append "offload=$mode" > "$tmp/tap-$mode.log" 2>&1 &
    pids+=($!)
    wait_line "$tmp/tap-$mode.log" "guest listening"
    [ "$mode" = off ] && measure guest/tap-nocsum "$in_ns" "https://192.0.2.2/"
    for _ in $(seq 7); do
        $in_ns curl -s -k -o /dev/null --max-time 60 "https://192.0.2.2/bytes/4194304"
    done
    sleep 0.5
    printf '4 MiB download, guest-side, offload %-3s: median %s ms\n' "$mode" \
        "$(grep -o 'out=4194412 requests=1 [0-9]* ms' "$tmp/tap-$mode.log" | awk '{print $3}' | median)"
    kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
done

$in_ns target/release/tlsflow serve --backend unikernel --tap tap0 --ip 192.0.2.2/24 \
    --addr 0.0.0.0:443 --cert "$tmp/chain.pem" --key "$tmp/key.pem" > "$tmp/hosted.log" 2>&1 &
pids+=($!)
wait_line "$tmp/hosted.log" "listening on"
measure hosted/tap "$in_ns" "https://192.0.2.2/"
