"""How a client proves who it is and checks who the host is: TLS (and mTLS) and bearer tokens.

A host with TLS (``--tls-cert``) needs ``TlsConfig`` with the CA that signed its certificate;
one that requires client certificates (``--tls-client-ca``) also this client's certificate
and key. A host with authentication (``--auth-tokens-file``, or the application's own check)
needs a token, sent as the ``authorization: Bearer <token>`` metadata of every call.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import grpc
from grpc.aio import ClientCallDetails

#: Environment variables the host's own Python processes (workers, agents) read their credentials from.
TOKEN_ENV = "TOOLBRIDGE_TOKEN"
TLS_CA_ENV = "TOOLBRIDGE_TLS_CA"
TLS_CERT_ENV = "TOOLBRIDGE_TLS_CERT"
TLS_KEY_ENV = "TOOLBRIDGE_TLS_KEY"
TLS_SERVER_NAME_ENV = "TOOLBRIDGE_TLS_SERVER_NAME"


def _read(path: str | os.PathLike[str] | None) -> bytes | None:
    return None if path is None or str(path) == "" else Path(path).read_bytes()


@dataclass(frozen=True)
class TlsConfig:
    """TLS to a host, in PEM bytes.

    ``root_certificates`` is the CA bundle that signed the host's certificate (None: the
    system's roots); ``certificate_chain`` and ``private_key`` are this client's certificate
    and key for a host that requires client certificates (mTLS); ``server_name`` overrides
    the name checked against the host's certificate (default: the host part of the address).
    """

    root_certificates: bytes | None = None
    certificate_chain: bytes | None = None
    private_key: bytes | None = None
    server_name: str | None = None

    @classmethod
    def from_files(
        cls,
        ca: str | os.PathLike[str] | None = None,
        cert: str | os.PathLike[str] | None = None,
        key: str | os.PathLike[str] | None = None,
        server_name: str | None = None,
    ) -> TlsConfig:
        """A configuration read from PEM files (each optional, as in the class)."""
        if (cert is None) != (key is None):
            raise ValueError("a client certificate needs its key: pass both cert and key, or neither")
        return cls(_read(ca), _read(cert), _read(key), server_name or None)

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.root_certificates,
            private_key=self.private_key,
            certificate_chain=self.certificate_chain,
        )

    def channel_options(self) -> list[tuple[str, Any]]:
        return [] if self.server_name is None else [("grpc.ssl_target_name_override", self.server_name)]


def credentials_from_env(environ: Mapping[str, str] | None = None) -> tuple[TlsConfig | None, str | None]:
    """TLS settings and token from ``TOOLBRIDGE_TLS_CA``/``_CERT``/``_KEY``/``_SERVER_NAME`` and
    ``TOOLBRIDGE_TOKEN``: how the host hands its credentials to the Python processes it starts."""
    env = os.environ if environ is None else environ
    ca, cert, key = (env.get(name) or None for name in (TLS_CA_ENV, TLS_CERT_ENV, TLS_KEY_ENV))
    tls = None
    if ca is not None or cert is not None:
        tls = TlsConfig.from_files(ca, cert, key, env.get(TLS_SERVER_NAME_ENV) or None)
    return tls, env.get(TOKEN_ENV) or None


def _with_token(details: ClientCallDetails, header: tuple[str, str]) -> ClientCallDetails:
    metadata: Sequence[tuple[str, str | bytes]] = tuple(details.metadata or ())
    return ClientCallDetails(
        details.method,
        details.timeout,
        grpc.aio.Metadata(*metadata, header),
        details.credentials,
        details.wait_for_ready,
    )


if TYPE_CHECKING:
    # Generic in the type stubs only; at run time the classes take no parameters.
    _UnaryUnary = grpc.aio.UnaryUnaryClientInterceptor[Any, Any]
    _UnaryStream = grpc.aio.UnaryStreamClientInterceptor[Any, Any]
    _StreamUnary = grpc.aio.StreamUnaryClientInterceptor[Any, Any]
    _StreamStream = grpc.aio.StreamStreamClientInterceptor[Any, Any]
else:
    _UnaryUnary = grpc.aio.UnaryUnaryClientInterceptor
    _UnaryStream = grpc.aio.UnaryStreamClientInterceptor
    _StreamUnary = grpc.aio.StreamUnaryClientInterceptor
    _StreamStream = grpc.aio.StreamStreamClientInterceptor


# One interceptor per kind of call: a channel files each interceptor under the first of
# the four kinds it is an instance of, so one object implementing all four would only ever
# see unary calls. gRPC's own call credentials would be simpler, but refuse plaintext
# channels (e.g. to a loopback host), where a token is still wanted.


class _Token:
    """What the four interceptors share: the header they add to a call's metadata."""

    def __init__(self, header: tuple[str, str]) -> None:
        self.header = header

    async def forward(
        self,
        continuation: Callable[[ClientCallDetails, Any], Any],
        client_call_details: ClientCallDetails,
        request: Any,
    ) -> Any:
        return await continuation(_with_token(client_call_details, self.header), request)

    async def forward_stream(
        self,
        continuation: Callable[[ClientCallDetails, Any], Any],
        client_call_details: ClientCallDetails,
        request_iterator: Any,
    ) -> Any:
        # The stubs name a streaming call's last argument differently; gRPC passes it by position.
        return await self.forward(continuation, client_call_details, request_iterator)


class _UnaryUnaryToken(_Token, _UnaryUnary):
    intercept_unary_unary = _Token.forward


class _UnaryStreamToken(_Token, _UnaryStream):
    intercept_unary_stream = _Token.forward


class _StreamUnaryToken(_Token, _StreamUnary):
    intercept_stream_unary = _Token.forward_stream


class _StreamStreamToken(_Token, _StreamStream):
    intercept_stream_stream = _Token.forward_stream


def token_metadata(token: str | None) -> list[tuple[str, str]]:
    """The metadata that carries ``token`` (none without a token), for transports without interceptors."""
    return [] if token is None else [("authorization", f"Bearer {token}")]


def token_interceptors(token: str | None) -> list[grpc.aio.ClientInterceptor]:
    """The interceptors that send ``authorization: Bearer <token>`` with every call (none without a token)."""
    if token is None:
        return []
    header = ("authorization", f"Bearer {token}")
    kinds = (_UnaryUnaryToken, _UnaryStreamToken, _StreamUnaryToken, _StreamStreamToken)
    # The stubs leave ClientInterceptor unspecified; these four bases are what gRPC takes.
    return [cast(grpc.aio.ClientInterceptor, kind(header)) for kind in kinds]
