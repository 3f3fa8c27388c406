"""The embedded broker's pure helpers."""

from __future__ import annotations

import base64

from services.tracker.broker import new_cluster_id


def test_cluster_ids_never_start_with_a_dash_and_decode_to_16_bytes() -> None:
    # One id in 64 would start with '-' by chance; 2,000 draws make missing that unlikely.
    for _ in range(2000):
        cluster_id = new_cluster_id()
        assert not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16
