"""The host's gRPC contracts: our own ``.proto`` files (PowerX's packages, services,
messages and field numbers), compiled when the simulator first needs them.

Nothing is generated into the tree: ``grpc_tools.protoc`` turns the files into one
descriptor set (~10 ms), and message classes are made from it in a private descriptor
pool, which is also what server reflection answers from. A private pool also keeps the
``powerx.*`` proto packages away from the ``powerx`` Python package.
"""

from __future__ import annotations

import functools
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message

from powerx.error_codes import ErrorCode
from powerx.errors import PowerXError

PROTO_ROOT = Path(__file__).resolve().parent / "protos"
STS_SERVICE = "powerx.auth.sts.v1.STSService"
MEMBER_SERVICE = "powerx.iam.v1.MemberService"
TEAM_SERVICE = "powerx.iam.v1.TeamService"
# The host serves these; powerx/plugin/control/v1/control.proto is in the pool too, but
# its ControlService is the host calling a plugin, so nothing here serves it.
SERVED_SERVICES = (STS_SERVICE, MEMBER_SERVICE, TEAM_SERVICE)
_FILES = (
    "powerx/auth/sts/v1/sts.proto",
    "powerx/iam/v1/member.proto",
    "powerx/iam/v1/team.proto",
    "powerx/plugin/control/v1/control.proto",
)

__all__ = ["SERVED_SERVICES", "Contracts", "contracts"]


@dataclass(frozen=True)
class Contracts:
    """The compiled contracts: a descriptor pool and the message classes made from it."""

    pool: descriptor_pool.DescriptorPool

    def message(self, full_name: str) -> type[Message]:
        """The class of a message type, e.g. ``powerx.iam.v1.Member``."""
        return message_factory.GetMessageClass(self.pool.FindMessageTypeByName(full_name))

    def new(self, full_name: str, **fields: Any) -> Message:
        return self.message(full_name)(**fields)

    def methods(self, service: str) -> list[MethodDescriptor]:
        return list(self.pool.FindServiceByName(service).methods)


def compile_descriptor_set(root: Path = PROTO_ROOT) -> bytes:
    """The ``FileDescriptorSet`` of our contracts and everything they import."""
    from grpc_tools import protoc  # ~50 ms to import: only when the server starts

    well_known = resources.files("grpc_tools") / "_proto"
    with tempfile.TemporaryDirectory(prefix="pxproto-") as folder:
        out = Path(folder) / "contracts.pb"
        code = protoc.main(
            [
                "protoc",
                f"-I{root}",
                f"-I{well_known}",
                "--include_imports",
                f"--descriptor_set_out={out}",
                *_FILES,
            ]
        )
        if code != 0 or not out.is_file():
            raise PowerXError(
                ErrorCode.CONTRACTS_INVALID,
                f"The host's gRPC contracts under {root} do not compile (protoc exit {code}).",
                "reinstall the DevKit (`pip install -e .`); the .proto files ship with it.",
                status=500,
            )
        return out.read_bytes()


@functools.cache
def contracts() -> Contracts:
    """The contracts, compiled once per process."""
    files = descriptor_pb2.FileDescriptorSet.FromString(compile_descriptor_set())
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    return Contracts(pool)
