"""What a request costs its cache, counted on the wire: round trips to Redis and the bytes
each way (a redis-py connection class given to Django's RedisCache in its OPTIONS), and the
statements on the database cache's table."""

from dataclasses import dataclass

from redis.connection import Connection


@dataclass
class Traffic:
    round_trips: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0

    def since(self, before: "Traffic") -> "Traffic":
        return Traffic(
            self.round_trips - before.round_trips,
            self.bytes_sent - before.bytes_sent,
            self.bytes_received - before.bytes_received,
        )


TRAFFIC = Traffic()


class _CountingSocket:
    def __init__(self, sock):
        self._sock = sock

    def sendall(self, data, *args):
        TRAFFIC.bytes_sent += len(data)
        return self._sock.sendall(data, *args)

    def recv(self, *args):
        data = self._sock.recv(*args)
        TRAFFIC.bytes_received += len(data)
        return data

    def recv_into(self, buffer, *args):
        n = self._sock.recv_into(buffer, *args)
        TRAFFIC.bytes_received += n
        return n

    def __getattr__(self, name):
        return getattr(self._sock, name)


class CountingConnection(Connection):
    """A Redis connection that counts what it sends and receives: one round trip per
    packed write (a pipeline's commands go in one)."""

    def _connect(self):
        return _CountingSocket(super()._connect())

    def send_packed_command(self, command, check_health=True):
        TRAFFIC.round_trips += 1
        return super().send_packed_command(command, check_health)


def snapshot() -> Traffic:
    return Traffic(TRAFFIC.round_trips, TRAFFIC.bytes_sent, TRAFFIC.bytes_received)
