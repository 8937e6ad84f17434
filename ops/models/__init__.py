from .connections import ServerConnection  # noqa: F401
from .inventory import Checkpoint, Cloud, HostCluster, SyncRecord, UserRole, VirtualMachine, VMHost  # noqa: F401
from .audit import AuditEntry  # noqa: F401
from .runs import Run, RunEvent, RunSchedule, Step  # noqa: F401
from .plans import CheckpointPermission, Plan, PowerAction, Subscription  # noqa: F401
from .run_targets import RunTarget  # noqa: F401
