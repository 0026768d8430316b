"""ChannelPool: reuse gRPC channels across clients, spread over several hosts.

async with ChannelPool(["host-a:50051", "host-b:50051"], max_channels_per_target=4) as pool:
    async with ToolBridgeClient.from_pool(pool) as client:   # next target, round robin
        await client.initialize_session()
        await client.execute_tool("add", 1, 2)

Per target the pool opens up to ``max_channels_per_target`` channels, a new one for each
request until the limit, then hands them out round robin. Each channel gets its own
connection (a local subchannel pool): by default gRPC would share one TCP connection
among all channels to a target, and the pool would spread nothing. Calls made through
a pooled channel must finish before ``close()``; closing cancels whatever is left.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from types import TracebackType

import grpc

from toolbridge.transport import TlsConfig, create_grpc_channel

ChannelFactory = Callable[[str], grpc.aio.Channel]


def separate_connection_channels(tls: TlsConfig | None = None, token: str | None = None) -> ChannelFactory:
    """Channels that each open a connection of their own, with ``tls`` and ``token`` when given."""

    def factory(target: str) -> grpc.aio.Channel:
        return create_grpc_channel(
            target, options=[("grpc.use_local_subchannel_pool", 1)], tls=tls, token=token
        )

    return factory


class ChannelPool:
    """Channels to one or more hosts, reused round robin; close it (or use ``async with``) when done.

    ``tls`` and ``token`` apply to the channels it opens (unless ``channel_factory`` makes them).
    """

    def __init__(
        self,
        targets: Sequence[str] = (),
        *,
        max_channels_per_target: int = 5,
        channel_factory: ChannelFactory | None = None,
        tls: TlsConfig | None = None,
        token: str | None = None,
    ) -> None:
        if max_channels_per_target < 1:
            raise ValueError("max_channels_per_target must be >= 1")
        self.max_per_target = max_channels_per_target
        self._targets = list(dict.fromkeys(targets))
        self._factory = channel_factory or separate_connection_channels(tls, token)
        self._channels: dict[str, list[grpc.aio.Channel]] = {}
        self._round_robin: dict[str, int] = {}
        self._next_target = 0
        self._lock = asyncio.Lock()
        self._closed = False

    async def __aenter__(self) -> ChannelPool:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def targets(self) -> list[str]:
        """The targets the pool picks from when none is given, then any others it was asked for."""
        return [*self._targets, *(t for t in self._channels if t not in self._targets)]

    def channel_counts(self) -> dict[str, int]:
        """Open channels per target."""
        return {target: len(channels) for target, channels in self._channels.items()}

    async def get_channel(self, target: str | None = None) -> grpc.aio.Channel:
        """A channel to ``target``, or to the pool's next target (round robin) when None."""
        return (await self.checkout(target))[1]

    async def checkout(self, target: str | None = None) -> tuple[str, grpc.aio.Channel]:
        """``get_channel`` that also says which target the channel goes to."""
        async with self._lock:
            if self._closed:
                raise RuntimeError("the channel pool is closed")
            if target is None:
                if not self._targets:
                    raise ValueError("this pool has no targets: pass one to get_channel(target)")
                target = self._targets[self._next_target % len(self._targets)]
                self._next_target = (self._next_target + 1) % len(self._targets)
            channels = self._channels.setdefault(target, [])
            # Grow until the limit (each of the first requests gets a channel of its own),
            # then cycle through them.
            if len(channels) < self.max_per_target:
                channel = self._factory(target)
                channels.append(channel)
                return target, channel
            index = self._round_robin.get(target, 0) % len(channels)
            self._round_robin[target] = (index + 1) % len(channels)
            return target, channels[index]

    async def close(self, grace_s: float | None = None) -> None:
        """Closes every channel (calls still running get ``grace_s`` seconds, then are cancelled)."""
        async with self._lock:
            self._closed = True
            channels = [channel for group in self._channels.values() for channel in group]
            self._channels.clear()
            self._round_robin.clear()
        await asyncio.gather(*(channel.close(grace_s) for channel in channels))
