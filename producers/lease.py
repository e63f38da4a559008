"""What a publisher asks of the worker it writes for: does the worker still own the
input partition this work came from? (``consumers/ownership.py`` answers.)"""

from __future__ import annotations

from typing import Protocol


class PartitionLost(Exception):
    """This worker no longer owns the input partition of the work at hand: another member
    of its group does, and runs that work now. Nothing more may be written for it."""


class Lease(Protocol):
    def holds(self) -> bool:
        """Surely owned now (the cheap check, before every write)."""

    async def hold(self) -> None:
        """Return once the partition is surely owned; raise ``PartitionLost`` once it is
        not. Meanwhile (the group has not confirmed this member lately) wait."""

    async def after_fence(self) -> None:
        """A transaction of ours was fenced: wait for the group's next word on this
        member, and return if the partition is still surely ours then (``PartitionLost``
        if not). Only a member the group has just confirmed may start the id again."""
