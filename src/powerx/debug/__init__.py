"""Breakpoints that survive reloads: the set, the DAP and CDP sides, the console."""
