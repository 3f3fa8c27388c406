"""Writes the JSON Schema of every event model to ``schemas/json/`` (``make schemas``)."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.events import EVENT_MODELS

SCHEMA_DIR = Path(__file__).parent / "json"


def render_all() -> dict[str, str]:
    """File name -> JSON text, in the exact form committed to the repository."""
    rendered = {}
    for name, model in EVENT_MODELS.items():
        schema = model.model_json_schema(mode="validation")
        schema["$id"] = f"https://commitment-tracker.example/schemas/{name}.schema.json"
        rendered[f"{name}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return rendered


def write_all(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(exist_ok=True)
    written = []
    for file_name, text in render_all().items():
        path = directory / file_name
        path.write_text(text)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_all():
        print(path)
