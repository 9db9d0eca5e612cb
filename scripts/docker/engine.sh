#!/usr/bin/env bash
# A private Docker engine for the real-engine test, apart from any system one: its own data
# and exec roots, socket, bridge range and address pool. No iptables rules, no NAT and no IP
# forwarding: its containers reach nothing beyond their bridge (published ports go through
# docker-proxy on the host), and the host's firewall and sysctls stay as they were.
# usage: scripts/docker/engine.sh start|stop     (state in $MLSERVE_DOCKERD_DIR)
set -euo pipefail
state="${MLSERVE_DOCKERD_DIR:-/tmp/mlserve-dockerd}"
export DOCKER_HOST="unix://$state/docker.sock"

start() {
    if ip link show docker0 >/dev/null 2>&1; then
        echo "error: a bridge docker0 exists already (another engine?); stop it first" >&2
        exit 1
    fi
    mkdir -p "$state"
    dockerd --data-root "$state/data" --exec-root "$state/exec" --pidfile "$state/dockerd.pid" \
        -H "$DOCKER_HOST" --bip 10.213.0.1/24 \
        --default-address-pool base=10.214.0.0/16,size=24 \
        --iptables=false --ip-masq=false --ip-forward=false >"$state/dockerd.log" 2>&1 &
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && return 0; sleep 0.5; done
    echo "error: dockerd did not start; see $state/dockerd.log" >&2
    exit 1
}

stop() {
    [[ -d "$state" ]] || return 0
    if docker info >/dev/null 2>&1; then
        # A Swarm stack's containers may still be on their way out (`removal ... already in
        # progress`): remove what is left, and wait for the engine to finish with the rest.
        for _ in $(seq 60); do
            [[ -z "$(docker ps -aq)" ]] && break
            docker ps -aq | xargs -r docker rm -f >/dev/null 2>&1 || true
            sleep 0.5
        done
        docker network ls -q --filter type=custom | xargs -r docker network rm >/dev/null 2>&1 || true
        pid="$(cat "$state/dockerd.pid")"
        kill "$pid"
        for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    fi
    ip link delete docker0 2>/dev/null || true
    grep -o " $state/[^ ]*" /proc/mounts | sort -r | xargs -r umount -l
    rm -rf "$state"
}

case "${1:-}" in
    start | stop) "$1" ;;
    *) echo "usage: scripts/docker/engine.sh start|stop" >&2; exit 2 ;;
esac
