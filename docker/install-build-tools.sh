#!/usr/bin/env bash
# Install what `make images-test` needs where no Docker engine answers: Debian's buildah
# (builds docker/Dockerfile), podman (runs the images; with netavark and aardvark-dns, the
# bridge network and service names of docker compose, and iptables, which netavark runs to set
# up that network: without it every `podman run --publish` fails with "netavark: No such file
# or directory"), runc, and debootstrap (the local base image). As root, with apt-get; does
# nothing when they are all there.
set -euo pipefail

packages=(buildah podman runc netavark aardvark-dns iptables debootstrap)
missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "${package}" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("${package}")
    fi
done
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    printf 'install-build-tools: need root and apt-get to install: %s\n' "${missing[*]}" >&2
    exit 1
fi
printf 'install-build-tools: apt-get install %s\n' "${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
