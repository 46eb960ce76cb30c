# Shared by scripts/setup, scripts/run and scripts/test: where the project environment lives.
# shellcheck shell=bash
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${HEARTH_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hearth}"
ROOT="$CACHE/py314-root"          # Debian sid root holding python3.14 (when the host has no 3.14)
ROOT_VENV=/opt/hearth-venv        # the venv inside that root
HOST_VENV="$CACHE/host-venv"      # the host's own Python (>= 3.11), for the backend on older hubs
REQUIREMENTS="$REPO/requirements_test.txt"

die() { echo "error: $*" >&2; exit 1; }

# A python3 >= 3.14.2 on PATH lets us skip the Debian root altogether.
have_native_314() {
    command -v python3 >/dev/null 2>&1 &&
        python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 14, 2) else 1)' 2>/dev/null
}

# Runs "$@" inside the Debian root with the repository mounted at /src and the working
# directory at /src/$HEARTH_SUBDIR; the mounts live only as long as the process.
# `in_root --exec CMD...` replaces the calling shell, so signals reach CMD itself.
in_root() {
    local subdir="${HEARTH_SUBDIR:-}" launcher=()
    if [ "${1:-}" = --exec ]; then launcher=(exec); shift; fi
    "${launcher[@]}" unshare -m -- sh -c '
        set -e
        root="$1"; repo="$2"; sub="$3"; shift 3
        mount --rbind /dev "$root/dev"
        mount -t proc proc "$root/proc"
        mount -t tmpfs tmpfs "$root/dev/shm" 2>/dev/null || true
        mount --bind "$repo" "$root/src"
        exec chroot "$root" /usr/bin/env -u PIP_FIND_LINKS \
            PATH='"$ROOT_VENV"'/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            HOME=/root VIRTUAL_ENV='"$ROOT_VENV"' \
            sh -c "cd \"/src/\$0\" && exec \"\$@\"" "$sub" "$@"
    ' sh "$ROOT" "$REPO" "$subdir" "$@"
}
