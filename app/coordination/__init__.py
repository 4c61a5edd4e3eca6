"""What replicas share beyond the database: a broadcast channel between them.

One process (SQLite, no `BIGTHREE_REDIS_URL`) uses `InProcessBroadcast`: a message reaches
the handlers of this process only. Several replicas use `RedisBroadcast` (Redis pub/sub):
a message reaches every replica's handlers. Both implement `Broadcast`, so nothing above
this package knows which is in use. Durable state (tasks, events, leases) stays in the
database; a broadcast is only a hint or a command, never the truth — a replica that missed
one (Redis restarted) catches up from the database.
"""

from app.coordination.broadcast import Broadcast, Handler, Message, new_replica_id
from app.coordination.local import InProcessBroadcast
from app.coordination.redis import RedisBroadcast


def build_broadcast(redis_url: str | None, *, prefix: str, replica_id: str) -> Broadcast:
    """Redis pub/sub when a Redis URL is configured, else in-process delivery."""
    if redis_url:
        return RedisBroadcast(redis_url, prefix=prefix, replica_id=replica_id)
    return InProcessBroadcast(replica_id=replica_id)


__all__ = [
    "Broadcast",
    "Handler",
    "InProcessBroadcast",
    "Message",
    "RedisBroadcast",
    "build_broadcast",
    "new_replica_id",
]
