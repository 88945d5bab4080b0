#!/bin/sh
# Installs the Go toolchain (go) and Delve (dlv), which build and debug Go plugins.
# Run by `make setup`: on Debian/Ubuntu as root it installs them with apt-get; elsewhere it
# says what to install and does not fail the setup (Python and Node plugins need neither).
set -u
command -v go >/dev/null 2>&1 && command -v dlv >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing golang-go and delve (Go plugins) with apt-get ..."
  if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go delve >/dev/null 2>&1 ||
     { apt-get update -qq >/dev/null 2>&1 &&
       DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go delve >/dev/null 2>&1; }; then
    exit 0
  fi
fi
command -v go >/dev/null 2>&1 ||
  echo "note: Go is not installed, so Go plugins cannot be built. Install it: sudo apt-get install golang-go (Debian/Ubuntu), brew install go (macOS), or https://go.dev/doc/install; or set POWERX_GO." >&2
command -v dlv >/dev/null 2>&1 ||
  echo "note: Delve is not installed, so Go plugins cannot be debugged. Install it: sudo apt-get install delve (Debian/Ubuntu), or go install github.com/go-delve/delve/cmd/dlv@latest; or set POWERX_DLV." >&2
exit 0
