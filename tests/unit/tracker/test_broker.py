"""The embedded broker's pure helpers and the properties its nodes are started with."""

from __future__ import annotations

import base64
from pathlib import Path

from services.tracker.broker import EmbeddedKafka, new_cluster_id
from services.tracker.cluster import MIN_INSYNC_REPLICAS, REPLICATION, LocalCluster


def test_cluster_ids_never_start_with_a_dash_and_decode_to_16_bytes() -> None:
    # One id in 64 would start with '-' by chance; 2,000 draws make missing that unlikely.
    for _ in range(2000):
        cluster_id = new_cluster_id()
        assert not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def _properties(path: Path) -> dict[str, str]:
    pairs = [line.split("=", 1) for line in path.read_text().splitlines()
             if "=" in line and not line.startswith("#")]
    return {key: value for key, value in pairs}  # a later key wins, as in Java


def test_cluster_nodes_share_one_quorum_with_production_replication(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path)
    written = []
    for node in cluster.nodes:
        node.data_dir.mkdir(parents=True)
        node._write_properties()
        written.append(_properties(node.properties_file))
    assert [p["node.id"] for p in written] == ["1", "2", "3"]
    assert {p["controller.quorum.voters"] for p in written} == {
        "1@127.0.0.1:9093,2@127.0.0.1:9095,3@127.0.0.1:9097"}
    assert [p["advertised.listeners"] for p in written] == [
        f"PLAINTEXT://127.0.0.1:{port}" for port in (9092, 9094, 9096)]
    for properties in written:
        assert properties["default.replication.factor"] == str(REPLICATION) == "3"
        assert properties["offsets.topic.replication.factor"] == "3"
        assert properties["min.insync.replicas"] == str(MIN_INSYNC_REPLICAS) == "2"
    assert cluster.cluster_id() == cluster.cluster_id()  # made once, then kept


def test_extra_properties_come_last_so_they_win(tmp_path: Path) -> None:
    node = EmbeddedKafka(tmp_path, extra_properties=(("listeners", "SASL_SSL://x:1"),))
    node._write_properties()
    assert _properties(node.properties_file)["listeners"] == "SASL_SSL://x:1"
    alone = EmbeddedKafka(tmp_path / "alone", port=1234, controller_port=1235)
    alone.data_dir.mkdir()
    alone._write_properties()
    assert _properties(alone.properties_file)["controller.quorum.voters"] == "1@127.0.0.1:1235"
    assert _properties(alone.properties_file)["offsets.topic.replication.factor"] == "1"
