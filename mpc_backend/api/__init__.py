"""HTTP surfaces of the node: the local API (/api/v1) and the peer API (/peer/v1)."""
