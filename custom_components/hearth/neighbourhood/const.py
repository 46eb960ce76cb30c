"""Constants for the neighbourhood (backend) entry kind."""

from typing import Final

KIND_NEIGHBOURHOOD: Final = "neighbourhood"

CONF_URL: Final = "url"
CONF_TOKEN: Final = "token"  # noqa: S105 - the config key, not a token
# The Supervisor's slug of the app whose discovery created the entry: only that app's
# announcements may move the entry to another URL or token.
CONF_APP: Final = "app"
DEFAULT_URL: Final = "http://127.0.0.1:8731"

# Options: {task_id: entity_id}; a task absent here gets nothing from this home.
CONF_CONTRIBUTIONS: Final = "contributions"
CONF_TASKS: Final = "tasks"
CONF_ENTITY: Final = "entity"

EVENT_RESULT: Final = "hearth_result"
SERVICE_CONTRIBUTE_NOW: Final = "contribute_now"
SERVICE_GET_RESULTS: Final = "get_results"
ATTR_TASK: Final = "task"
ATTR_LIMIT: Final = "limit"
INTENT_GET_NEIGHBOURHOOD: Final = "HearthGetNeighbourhood"

# Results arrive over the backend's stream; this poll is the fallback and refreshes
# status (members online, committee load) that the stream does not carry.
POLL_INTERVAL_S: Final = 60
STREAM_BACKOFF_MIN_S: Final = 1.0
STREAM_BACKOFF_MAX_S: Final = 60.0
REQUEST_TIMEOUT_S: Final = 10.0

# A period's mean is sent this long before the period (= backend round) ends, so it
# lands in the round it describes; bounded so short test periods still work.
CONTRIBUTE_MARGIN_FRACTION: Final = 0.1
CONTRIBUTE_MARGIN_MIN_S: Final = 1.0
CONTRIBUTE_MARGIN_MAX_S: Final = 30.0
