"""What a zygote is told to import first fits in one environment variable."""

from __future__ import annotations

import json

from powerx.host.launcher.zygote import _warm_list


def test_a_huge_warm_list_is_cut_to_fit_keeping_packages_before_their_submodules() -> None:
    names = {f"package_{i}" for i in range(50)}
    names |= {f"package_{i}.sub_{j}.deep_module_name" for i in range(50) for j in range(100)}
    text = _warm_list(names)
    assert len(text) < 64 * 1024  # Linux takes up to 128 KiB per variable
    kept = json.loads(text)
    assert {f"package_{i}" for i in range(50)} <= set(kept)
    assert 50 < len(kept) < len(names)
