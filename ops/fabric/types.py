"""What the fabric functions return: plain dataclasses, no pypsrp objects."""
import dataclasses
import datetime as dt

JOB_FINAL = ("Completed", "Failed", "Canceled", "SucceedWithInfo")
JOB_OK = ("Completed", "SucceedWithInfo")


@dataclasses.dataclass
class CloudInfo:
    id: str
    name: str
    description: str = ""


@dataclasses.dataclass
class ClusterInfo:
    id: str
    name: str


@dataclasses.dataclass
class HostInfo:
    id: str
    name: str
    cluster_name: str
    overall_state: str
    communication_state: str
    in_maintenance: bool
    total_memory_mb: int
    available_memory_mb: int


@dataclasses.dataclass
class VMInfo:
    id: str
    name: str
    status: str
    host_name: str
    cloud_name: str
    is_highly_available: bool
    memory_mb: int
    owner: str
    custom: dict
    user_role_id: str = ""  # VMM's UserRoleID: which subscription's VM it is
    user_role_name: str = ""


@dataclasses.dataclass
class CheckpointInfo:
    id: str
    vm_id: str
    name: str
    description: str
    added_at: dt.datetime | None
    vm_name: str = ""  # not read from the server (see vmm.CHECKPOINT_FIELDS); callers fill it from their VM listing


@dataclasses.dataclass
class UserRoleInfo:
    id: str
    name: str
    profile: str
    permissions: list


@dataclasses.dataclass
class JobInfo:
    id: str
    name: str
    status: str
    progress: int
    error: str = ""
    target: str = ""

    @property
    def finished(self) -> bool:
        return self.status in JOB_FINAL

    @property
    def succeeded(self) -> bool:
        return self.status in JOB_OK


@dataclasses.dataclass
class MaintenanceInfo:
    instance_name: str
    start_time: dt.datetime | None
    end_time: dt.datetime | None
    reason: str
    comment: str
    user: str = ""
