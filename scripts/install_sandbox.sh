#!/bin/sh
# Installs bubblewrap (bwrap), which contains each plugin in its own sandbox on Linux.
# Run by `make setup`: never fails the setup; says what to do where it cannot install.
set -u
[ "$(uname -s)" = Linux ] || exit 0
command -v bwrap >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing bubblewrap (plugin sandbox) with apt-get ..."
  if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null 2>&1 ||
     { apt-get update -qq >/dev/null 2>&1 &&
       DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null 2>&1; }; then
    exit 0
  fi
fi
echo "note: bubblewrap is not installed, so plugins will run NOT contained (in-process guards only)." >&2
echo "      install it: sudo apt-get install bubblewrap (Debian/Ubuntu), sudo dnf install bubblewrap (Fedora)" >&2
exit 0
