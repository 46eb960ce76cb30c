"""A small synchronous client for the local API (used by the CLI; stdlib only).

Errors become ``ClientError`` with one line the CLI prints as is.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from mpc_backend.node.config import NodeConfig, load_config, read_token


class ClientError(Exception):
    """A one-line, user-facing failure."""


class LocalClient:
    def __init__(self, data_dir: Path, timeout_s: float = 60.0) -> None:
        self.data_dir = Path(data_dir)
        self.config: NodeConfig = load_config(self.data_dir)
        self.token = read_token(self.data_dir)
        self.timeout_s = timeout_s
        self._ssl: ssl.SSLContext | None = None
        if self.config.tls:
            # The node's own certificate is the trust anchor; its name may not match loopback.
            self._ssl = ssl.create_default_context(cafile=self.config.tls_cert)
            self._ssl.check_hostname = False

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        url = self.config.local_url + "/api/v1" + path
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - http(s) only
        req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s, context=self._ssl) as resp:  # noqa: S310
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            raise ClientError(_error_text(err)) from None
        except (urllib.error.URLError, ConnectionError) as err:
            reason = getattr(err, "reason", err)
            raise ClientError(
                f"node is not running at {self.config.listen} ({reason}); start it with: "
                f"mpc-backend serve --data-dir {self.data_dir}"
            ) from None
        except TimeoutError:
            raise ClientError(f"node at {self.config.listen} did not answer in time") from None


def _error_text(err: urllib.error.HTTPError) -> str:
    try:
        error = json.loads(err.read())["error"]
        field = f" (field: {error['field']})" if error.get("field") else ""
        return f"{error['message']}{field}"
    except (ValueError, KeyError, TypeError):
        return f"node answered HTTP {err.code} {err.reason}"
