"""A client that knows the host only through its server reflection: no .proto files and no
generated code, only grpcio-reflection's descriptor database feeding a descriptor pool, as
a foreign team's tooling would use it."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.message import Message
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from toolbridge import HostProcess


class ReflectedClient:
    """Calls unary methods by full name, with message classes built from reflected descriptors."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.channel = channel
        self.database = ProtoReflectionDescriptorDatabase(channel)
        self.pool = descriptor_pool.DescriptorPool(self.database)

    def message(self, full_name: str, **fields: Any) -> Message:
        return message_factory.GetMessageClass(self.pool.FindMessageTypeByName(full_name))(**fields)

    def call(self, method_name: str, **fields: Any) -> Any:
        method = self.pool.FindMethodByName(method_name)
        request = message_factory.GetMessageClass(method.input_type)
        response = message_factory.GetMessageClass(method.output_type)
        rpc = self.channel.unary_unary(
            f"/{method.containing_service.full_name}/{method.name}",
            request_serializer=request.SerializeToString,
            response_deserializer=response.FromString,
        )
        return rpc(request(**fields), timeout=10)


def exercise(target: str) -> None:
    with grpc.insecure_channel(target) as channel:
        client = ReflectedClient(channel)
        assert set(client.database.get_services()) == {"grpc.health.v1.Health", "toolbridge.v1.ToolBridge"}

        health = client.call("grpc.health.v1.Health.Check", service="")
        assert health.DESCRIPTOR.enum_types_by_name["ServingStatus"].values_by_number[health.status].name == (
            "SERVING"
        )

        session = client.call("toolbridge.v1.ToolBridge.InitializeSession")
        assert session.success, session.error.message
        kwargs = {
            "a": client.message("toolbridge.v1.Value", int_value=2),
            "b": client.message("toolbridge.v1.Value", float_value=3.5),
        }
        added = client.call(
            "toolbridge.v1.ToolBridge.ExecuteTool",
            session_id=session.session_id,
            tool_id="add",
            kwargs=kwargs,
        )
        assert added.success, added.error.message
        assert added.result.WhichOneof("kind") == "float_value"
        assert added.result.float_value == 5.5

        # A value using the imported Timestamp and an ordered map, echoed back unchanged.
        when = client.message("google.protobuf.Timestamp", seconds=1_700_000_000, nanos=5)
        entries = [
            client.message(
                "toolbridge.v1.MapEntry",
                key="b",
                value=client.message("toolbridge.v1.Value", bool_value=True),
            ),
            client.message(
                "toolbridge.v1.MapEntry",
                key="10",
                value=client.message("toolbridge.v1.Value", timestamp_value=when),
            ),
        ]
        value = client.message(
            "toolbridge.v1.Value", map_value=client.message("toolbridge.v1.MapValue", entries=entries)
        )
        echoed = client.call(
            "toolbridge.v1.ToolBridge.ExecuteTool",
            session_id=session.session_id,
            tool_id="echo",
            kwargs={"value": value},
        )
        assert echoed.success, echoed.error.message
        assert echoed.result == value

        # The descriptors are the compiled ones: each file by its own name, with imports,
        # proto3 optional fields and real (and only real) map entries.
        values_file = client.pool.FindFileByName("toolbridge/v1/values.proto")
        assert [d.name for d in values_file.dependencies] == ["google/protobuf/timestamp.proto"]
        contract = client.pool.FindFileByName("toolbridge/v1/toolbridge.proto")
        assert sorted(d.name for d in contract.dependencies) == [
            "google/protobuf/timestamp.proto",
            "toolbridge/v1/values.proto",
        ]
        constraints = client.pool.FindMessageTypeByName("toolbridge.v1.VariableConstraints")
        assert constraints.fields_by_name["min"].has_presence
        assert not constraints.fields_by_name["pattern"].has_presence
        kwargs_field = client.pool.FindMessageTypeByName("toolbridge.v1.ToolCallRequest").fields_by_name[
            "kwargs"
        ]
        assert kwargs_field.message_type is not None
        assert kwargs_field.message_type.GetOptions().map_entry
        assert not client.pool.FindMessageTypeByName("toolbridge.v1.ErrorInfo").GetOptions().map_entry
        statuses = client.pool.FindMessageTypeByName("grpc.health.v1.HealthListResponse").fields_by_name[
            "statuses"
        ]
        assert statuses.message_type is not None
        assert statuses.message_type.name == "StatusesEntry"

        client.call("toolbridge.v1.ToolBridge.CleanupSession", session_id=session.session_id)


async def test_a_client_built_from_reflection_alone_checks_health_and_calls_a_tool(host: HostProcess) -> None:
    # grpcio-reflection's database is synchronous; keep it off the test's event loop.
    await asyncio.to_thread(exercise, host.target)
