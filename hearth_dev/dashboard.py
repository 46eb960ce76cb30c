"""The demo dashboard: this home's readings beside the neighbourhood's aggregates."""

from __future__ import annotations

from typing import Any

# (title, words that identify the local entity, words that identify the aggregate)
_PAIRS = (
    ("Indoor temperature", ("temperature",), ("indoor_temperature", "mean")),
    ("PM2.5", ("pm2_5", "pm25"), ("pm2_5", "mean")),
    ("CO₂", ("carbon_dioxide", "co2"), ("co2", "mean")),
)


def _first(
    entity_ids: list[str], any_of: tuple[str, ...], all_of: tuple[str, ...] = ()
) -> str | None:
    for entity_id in entity_ids:
        if any(w in entity_id for w in any_of) and all(w in entity_id for w in all_of):
            return entity_id
    return None


def dashboard_config(local: list[str], neighbourhood: list[str]) -> dict[str, Any]:
    """A Lovelace config: entities cards for both sides and a history graph per metric."""
    graphs = []
    for title, local_words, aggregate_words in _PAIRS:
        pair = [
            _first(local, local_words),
            _first(neighbourhood, aggregate_words[:1], aggregate_words[1:]),
        ]
        if entities := [e for e in pair if e]:
            graphs.append(
                {
                    "type": "history-graph",
                    "title": f"{title}: this home and the street",
                    "hours_to_show": 2,
                    "entities": entities,
                }
            )
    return {
        "title": "Hearth demo",
        "views": [
            {
                "title": "Home and street",
                "path": "hearth",
                "cards": [
                    {"type": "entities", "title": "This home", "entities": sorted(local)},
                    {
                        "type": "entities",
                        "title": "The neighbourhood",
                        "entities": sorted(neighbourhood),
                    },
                    *graphs,
                ],
            }
        ],
    }
