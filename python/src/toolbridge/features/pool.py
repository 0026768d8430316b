"""Channel pools: reuse gRPC channels across clients, spread over several hosts.

async with ChannelPool(["host-a:50051", "host-b:50051"], max_channels_per_target=4) as pool:
    async with ToolBridgeClient.from_pool(pool) as client:   # next target, round robin
        await client.initialize_session()
        await client.execute_tool("add", 1, 2)

Per target a pool opens up to ``max_channels_per_target`` channels, a new one for each
request until the limit, then hands them out round robin. Each channel gets its own
connection (a local subchannel pool): by default gRPC would share one TCP connection
among all channels to a target, and the pool would spread nothing. Calls made through
a pooled channel must finish before ``close()``; closing cancels whatever is left.
``SyncChannelPool`` is the same pool of blocking channels, for ``SyncToolBridgeClient``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Generic, TypeVar

import grpc

from toolbridge.transport import TlsConfig, create_grpc_channel
from toolbridge.transport.channel import create_blocking_channel

C = TypeVar("C")
ChannelFactory = Callable[[str], grpc.aio.Channel]
BlockingChannelFactory = Callable[[str], grpc.Channel]
#: The channel option that gives each channel a connection of its own.
_OWN_CONNECTION = ("grpc.use_local_subchannel_pool", 1)


def separate_connection_channels(tls: TlsConfig | None = None, token: str | None = None) -> ChannelFactory:
    """Channels that each open a connection of their own, with ``tls`` and ``token`` when given."""

    def factory(target: str) -> grpc.aio.Channel:
        return create_grpc_channel(target, options=[_OWN_CONNECTION], tls=tls, token=token)

    return factory


def separate_connection_blocking_channels(tls: TlsConfig | None = None) -> BlockingChannelFactory:
    """``separate_connection_channels`` for blocking code (the token goes with each client's calls)."""

    def factory(target: str) -> grpc.Channel:
        return create_blocking_channel(target, options=[_OWN_CONNECTION], tls=tls)

    return factory


class _PooledChannels(Generic[C]):
    """Which channel a pool hands out next (no I/O, no lock: each pool holds its own)."""

    def __init__(self, targets: Sequence[str], max_per_target: int, factory: Callable[[str], C]) -> None:
        if max_per_target < 1:
            raise ValueError("max_channels_per_target must be >= 1")
        self.max_per_target = max_per_target
        self.factory = factory
        self.named = list(dict.fromkeys(targets))
        self.channels: dict[str, list[C]] = {}
        self.round_robin: dict[str, int] = {}
        self.next_target = 0
        self.closed = False

    @property
    def targets(self) -> list[str]:
        return [*self.named, *(t for t in self.channels if t not in self.named)]

    def counts(self) -> dict[str, int]:
        return {target: len(channels) for target, channels in self.channels.items()}

    def checkout(self, target: str | None) -> tuple[str, C]:
        if self.closed:
            raise RuntimeError("the channel pool is closed")
        if target is None:
            if not self.named:
                raise ValueError("this pool has no targets: pass one to get_channel(target)")
            target = self.named[self.next_target % len(self.named)]
            self.next_target = (self.next_target + 1) % len(self.named)
        channels = self.channels.setdefault(target, [])
        # Grow until the limit (each of the first requests gets a channel of its own), then
        # cycle through them.
        if len(channels) < self.max_per_target:
            channel = self.factory(target)
            channels.append(channel)
            return target, channel
        index = self.round_robin.get(target, 0) % len(channels)
        self.round_robin[target] = (index + 1) % len(channels)
        return target, channels[index]

    def close(self) -> list[C]:
        """Refuses further checkouts; returns every channel, for the pool to close."""
        self.closed = True
        channels = [channel for group in self.channels.values() for channel in group]
        self.channels.clear()
        self.round_robin.clear()
        return channels


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
        factory = channel_factory or separate_connection_channels(tls, token)
        self._pooled = _PooledChannels(targets, max_channels_per_target, factory)
        self.max_per_target = max_channels_per_target
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> ChannelPool:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def targets(self) -> list[str]:
        """The targets the pool picks from when none is given, then any others it was asked for."""
        return self._pooled.targets

    def channel_counts(self) -> dict[str, int]:
        """Open channels per target."""
        return self._pooled.counts()

    async def get_channel(self, target: str | None = None) -> grpc.aio.Channel:
        """A channel to ``target``, or to the pool's next target (round robin) when None."""
        return (await self.checkout(target))[1]

    async def checkout(self, target: str | None = None) -> tuple[str, grpc.aio.Channel]:
        """``get_channel`` that also says which target the channel goes to."""
        async with self._lock:
            return self._pooled.checkout(target)

    async def close(self, *, grace_ms: float | None = None) -> None:
        """Closes every channel (calls still running get ``grace_ms``, then are cancelled)."""
        async with self._lock:
            channels = self._pooled.close()
        grace_s = None if grace_ms is None else grace_ms / 1000
        await asyncio.gather(*(channel.close(grace_s) for channel in channels))


class SyncChannelPool:
    """``ChannelPool`` of blocking channels, for ``SyncToolBridgeClient.from_pool``; any thread may use it.

    ``tls`` applies to the channels it opens (unless ``channel_factory`` makes them); ``token``
    is what ``SyncToolBridgeClient.from_pool`` gives its clients, which send it with every call.
    """

    def __init__(
        self,
        targets: Sequence[str] = (),
        *,
        max_channels_per_target: int = 5,
        channel_factory: BlockingChannelFactory | None = None,
        tls: TlsConfig | None = None,
        token: str | None = None,
    ) -> None:
        factory = channel_factory or separate_connection_blocking_channels(tls)
        self._pooled = _PooledChannels(targets, max_channels_per_target, factory)
        self.max_per_target = max_channels_per_target
        self.token = token
        self._lock = threading.Lock()

    def __enter__(self) -> SyncChannelPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def targets(self) -> list[str]:
        """The targets the pool picks from when none is given, then any others it was asked for."""
        with self._lock:
            return self._pooled.targets

    def channel_counts(self) -> dict[str, int]:
        """Open channels per target."""
        with self._lock:
            return self._pooled.counts()

    def get_channel(self, target: str | None = None) -> grpc.Channel:
        """A channel to ``target``, or to the pool's next target (round robin) when None."""
        return self.checkout(target)[1]

    def checkout(self, target: str | None = None) -> tuple[str, grpc.Channel]:
        """``get_channel`` that also says which target the channel goes to."""
        with self._lock:
            return self._pooled.checkout(target)

    def close(self) -> None:
        """Closes every channel; calls still running on them are cancelled."""
        with self._lock:
            channels = self._pooled.close()
        for channel in channels:
            channel.close()
