"""The host simulator: an ASGI app that mounts plugins and emulates the PowerX host."""
