#!/usr/bin/env bash
# The ENTRYPOINT of every SageMaker image built from docker/Dockerfile.
#
# SageMaker starts a training job with `docker run IMAGE train` and an endpoint with
# `docker run IMAGE serve`, and so does the SageMaker SDK's local mode (its compose file's
# `command`); no argument at all (an image run without its CMD) means train.
#
#   train, or no argument  ->  exec python -m training
#   serve                  ->  exec python -m app
#
# `exec` makes Python PID 1, so the SIGTERM of `docker stop` or of SageMaker reaches it.
# Nothing is installed or downloaded here: the image is complete when it is built.
set -euo pipefail

log() {
    printf 'entrypoint: %s\n' "$*" >&2
}

# These (and JEMALLOC_LIBRARY below) are overridable only so that tests can point them at
# fixtures.
CUDA_COMPAT_DIR="${CUDA_COMPAT_DIR:-/usr/local/cuda/compat}"
NVIDIA_DRIVER_VERSION_FILE="${NVIDIA_DRIVER_VERSION_FILE:-/proc/driver/nvidia/version}"
NVIDIA_SMI="${NVIDIA_SMI:-nvidia-smi}"

# True when version $1 sorts strictly before version $2.
version_lt() {
    [ "$1" != "$2" ] && [ "$1" = "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1)" ]
}

# The host's NVIDIA driver version (550.144.03), or nothing. The kernel module's first line is
#   NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.144.03  Release Build ...
# for the proprietary modules and
#   NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.144.03  Release Build ...
# for the open ones (the default from driver 560 on; some 550 hosts run them already). Where
# that file says nothing, nvidia-smi (the NVIDIA container toolkit mounts it with the driver)
# does. Only a version number counts: a failing nvidia-smi prints its complaint on stdout.
host_driver_version() {
    local version
    version="$(sed -n \
        's/^NVRM version:.* Kernel Module\( for [A-Za-z0-9_]*\)\? *\([0-9][0-9]*\.[0-9.]*\).*$/\2/p' \
        "${NVIDIA_DRIVER_VERSION_FILE}" 2>/dev/null | head -n 1 || true)"
    if [ -z "${version}" ]; then
        version="$(timeout 20 "${NVIDIA_SMI}" --query-gpu=driver_version --format=csv,noheader \
            2>/dev/null | head -n 1 | tr -d '[:space:]' || true)"
    fi
    [[ "${version}" =~ ^[0-9]+(\.[0-9]+)+$ ]] || version=""
    printf '%s' "${version}"
}

# CUDA forward compatibility, as SageMaker's guidance for bring-your-own GPU containers asks:
# put the image's cuda-compat libraries on LD_LIBRARY_PATH only when the host's NVIDIA driver
# is older than the driver those libraries come from. On a newer driver they would shadow the
# host's own libcuda, so they stay off. The CPU image has no compat libraries: nothing happens.
enable_cuda_compat() {
    local compat_lib="${CUDA_COMPAT_DIR}/libcuda.so.1"
    [ -e "${compat_lib}" ] || return 0

    local compat_driver host_driver
    # libcuda.so.1 -> libcuda.so.560.35.05: the compat package's driver version.
    compat_driver="$(readlink "${compat_lib}" | cut -d . -f 3- || true)"
    host_driver="$(host_driver_version)"

    if [ -z "${host_driver}" ] || [ -z "${compat_driver}" ]; then
        log "no NVIDIA driver found; CUDA compat libraries left off"
    elif version_lt "${host_driver}" "${compat_driver}"; then
        export LD_LIBRARY_PATH="${CUDA_COMPAT_DIR}${LD_LIBRARY_PATH:+:${LD_LIBRARY_PATH}}"
        log "host driver ${host_driver} is older than ${compat_driver}: CUDA compat libraries on"
    else
        log "host driver ${host_driver} is not older than ${compat_driver}: CUDA compat libraries off"
    fi
}

# The model server runs with jemalloc, which the serving images install: with glibc's malloc
# the resident memory of a busy server creeps up (batches of many shapes fragment the heap),
# with jemalloc it stays flat and the server is faster (docs/benchmarks.md, "Memory").
# SERVE_ALLOCATOR=glibc keeps glibc's malloc.
preload_jemalloc() {
    local allocator="${SERVE_ALLOCATOR:-jemalloc}"
    case "${allocator}" in
        glibc)
            return 0
            ;;
        jemalloc) ;;
        *)
            log "SERVE_ALLOCATOR must be jemalloc or glibc, not '${allocator}'"
            exit 2
            ;;
    esac
    local library="${JEMALLOC_LIBRARY:-/usr/lib/$(uname -m)-linux-gnu/libjemalloc.so.2}"
    if [ -e "${library}" ]; then
        export LD_PRELOAD="${library}${LD_PRELOAD:+:${LD_PRELOAD}}"
        log "model server with jemalloc (${library})"
    else
        log "jemalloc not found at ${library}: glibc's malloc it is"
    fi
}

# A serving image holds no training code (docs/containers.md): `train` there would end in a
# raw ModuleNotFoundError. Say what is wrong, where SageMaker shows it too (the failure file
# of a training job), and exit 2 like any other refused command.
refuse_train_without_training_code() {
    if python -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("training") is None)'; then
        return 0
    fi
    local message="this is a serving image: it has no training code, so it cannot run \`train\`. Build and use the \`train\` target of docker/Dockerfile for training jobs."
    log "${message}"
    local failure_file="${SAGEMAKER_BASE_DIR:-/opt/ml}/output/failure"
    if [ -d "$(dirname "${failure_file}")" ]; then
        printf '%s\n' "${message}" > "${failure_file}" 2>/dev/null || true
    fi
    exit 2
}

usage() {
    log "usage: entrypoint [train|serve] (no argument means train)"
}

main() {
    local command="${1:-train}"
    if [ "$#" -gt 0 ]; then
        shift
    fi
    case "${command}" in
        train)
            refuse_train_without_training_code
            enable_cuda_compat
            exec python -m training "$@"
            ;;
        serve)
            enable_cuda_compat
            preload_jemalloc
            exec python -m app "$@"
            ;;
        -h | --help)
            usage
            ;;
        *)
            log "unknown command: ${command}"
            usage
            exit 2
            ;;
    esac
}

main "$@"
