#!/usr/bin/env bash
# Install everything the test suite needs: Debian packages for the real parts the tests
# drive (CNI plugins, an OCI registry, image tools, OCI runtimes to compare against,
# etcd and ZooKeeper for the benchmarks), and the Python test dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

debian_packages=(
  containernetworking-plugins busybox-static umoci skopeo docker-registry
  crun runc etcd-server zookeeper iproute2 apache2-utils tmux
)
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  missing=()
  for package in "${debian_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'

# pymesos 0.3.15 needs http-parser, whose C extension no longer builds on Python >= 3.11;
# its pure-Python parser (which pymesos falls back to) works, so build it without one.
if ! .venv/bin/python -c 'import http_parser.pyparser' 2>/dev/null; then
  workdir=$(mktemp -d)
  trap 'rm -rf "$workdir"' EXIT
  .venv/bin/python -m pip download --quiet --no-deps --no-binary :all: -d "$workdir" http-parser==0.9.0
  tar -xzf "$workdir"/http-parser-0.9.0.tar.gz -C "$workdir"
  sed -i 's/run_setup(not IS_PYPY)/run_setup(False)/' "$workdir"/http-parser-0.9.0/setup.py
  .venv/bin/python -m pip install --quiet "$workdir"/http-parser-0.9.0
fi
.venv/bin/python -m pip install --quiet pymesos==0.3.15 kazoo==2.11.0 addict==2.4.0 six==1.17.0
