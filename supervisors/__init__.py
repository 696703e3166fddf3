"""OTP-style supervision trees for pykka ``ThreadingActor``s.

See `Supervisor` (static children, three strategies), `DynamicSupervisor`
(children added at run time), `ChildSpec` (how a child is started and
treated), `Backoff` (delays between restarts), `crash` (chaos tooling) and
`describe_tree` (what a running tree looks like, for an operator).
"""

from supervisors.backoff import Backoff
from supervisors.base import ChildInfo, SupervisorBase
from supervisors.dynamic import DynamicSupervisor
from supervisors.errors import (
    AlreadyPresentError,
    AlreadyStartedError,
    ChildNotFoundError,
    ChildRunningError,
    CrashError,
    GiveUpError,
    MaxChildrenError,
    StartError,
    SupervisorError,
)
from supervisors.events import EventHook, EventKind, SupervisorEvent
from supervisors.intensity import exceeds_intensity
from supervisors.introspection import (
    ChildDescription,
    ChildState,
    Describe,
    SupervisorDescription,
    TreeNode,
    describe_tree,
)
from supervisors.monitor import ExitReason, crash
from supervisors.spec import (
    BRUTAL_KILL,
    INFINITY,
    ChildSpec,
    ChildType,
    KillFn,
    Restart,
    Shutdown,
    Strategy,
)
from supervisors.supervisor import Supervisor

__all__ = [
    "BRUTAL_KILL",
    "INFINITY",
    "AlreadyPresentError",
    "AlreadyStartedError",
    "Backoff",
    "ChildDescription",
    "ChildInfo",
    "ChildNotFoundError",
    "ChildRunningError",
    "ChildSpec",
    "ChildState",
    "ChildType",
    "CrashError",
    "Describe",
    "DynamicSupervisor",
    "EventHook",
    "EventKind",
    "ExitReason",
    "GiveUpError",
    "KillFn",
    "MaxChildrenError",
    "Restart",
    "Shutdown",
    "StartError",
    "Strategy",
    "Supervisor",
    "SupervisorBase",
    "SupervisorDescription",
    "SupervisorError",
    "SupervisorEvent",
    "TreeNode",
    "crash",
    "describe_tree",
    "exceeds_intensity",
]
