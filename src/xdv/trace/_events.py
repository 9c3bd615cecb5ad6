"""The event vocabulary of the orchestration core.

Every kernel decision becomes one trace entry whose ``event_type`` is an :class:`EventType` and
whose ``domain`` is a :class:`Domain`. The integer values are part of the trace format: they
never change once released, and new kinds only get new numbers (``docs/trace-format.md``).
"""

from __future__ import annotations

import enum

from xdv.errors import XdvError, safe_repr

__all__ = ["Domain", "EventType"]


class Domain(enum.IntEnum):
    """A computational domain. ``ORCHESTRATION`` tags events of the core itself."""

    ORCHESTRATION = 0
    K = 1
    Q = 2
    PHI = 3

    @property
    def label(self) -> str:
        return _DOMAIN_LABELS[self]

    @classmethod
    def parse(cls, text: str | Domain) -> Domain:
        """Accept a Domain, or its label (``K``, ``Q``, ``Φ``/``PHI``, ``O``) in any case."""
        if isinstance(text, Domain):
            return text

        if not isinstance(text, str):
            raise XdvError(
                f"a domain is named by a string such as 'K', 'Q' or 'Φ', got {safe_repr(text)}",
                where="domain",
            )
        key = text.strip().upper()
        for domain, label in _DOMAIN_LABELS.items():
            if key in (label.upper(), domain.name):
                return domain
        raise XdvError(f"unknown domain {text!r}; expected K, Q, Φ (PHI) or O", where="domain")


_DOMAIN_LABELS = {Domain.ORCHESTRATION: "O", Domain.K: "K", Domain.Q: "Q", Domain.PHI: "Φ"}


class EventType(enum.IntEnum):
    """Kinds of trace entries."""

    RUN_START = 1
    RUN_END = 2

    PROCESS_CREATE = 10
    PROCESS_STATE = 11
    PROCESS_EXIT = 12

    DISPATCH = 20
    SLEEP = 21
    YIELD = 22
    PREEMPT = 23
    WAIT = 24
    WAKE = 25
    ADMISSION_WAIT = 26
    ADMISSION_GRANT = 27
    ADMISSION_TIMEOUT = 28
    ADMISSION_CANCEL = 29

    DOMAIN_BIND = 30
    DOMAIN_UNBIND = 31

    RESOURCE_RESERVE = 40
    RESOURCE_RELEASE = 41
    RESOURCE_TRANSFER = 42
    CONFLICT_RESOLVED = 43
    PLACEMENT = 44

    DOMAIN_INVOKE = 50
    DOMAIN_RESULT = 51

    TRANSITION_BEGIN = 60
    TRANSITION_PHASE = 61
    TRANSITION_COMMIT = 62
    TRANSITION_ROLLBACK = 63

    MEASUREMENT = 70

    COHERENCE_WINDOW_START = 80
    COHERENCE_WINDOW_STOP = 81

    CAPABILITY_GRANT = 90
    CAPABILITY_REVOKE = 91
    CAPABILITY_DENY = 92
    ATTESTATION = 93
    DOMAIN_FREEZE = 94

    FAULT = 100
    FAULT_DETECTED = 101
    FAULT_CONTAINED = 102
    FAULT_ESCALATED = 103
    RECOVERY_RETRY = 104
    RECOVERY_FALLBACK = 105
    RECOVERY_RESTART = 106
    RECOVERY_FAILED = 107
    NODE_PANIC = 108

    EFFECT = 110

    CHECKPOINT = 120

    VHM_CREATE = 130
    VHM_DESTROY = 131
    VHM_USAGE = 132
    VHM_DENY = 133
    VHM_TERMINATE = 134
    STATE_SAVE = 135
    VHM_RESTART = 136
    CHANNEL_CREATE = 140
    CHANNEL_SEND = 141
    CHANNEL_RECEIVE = 142
    CHANNEL_SELECT = 143
    CHANNEL_BLOCK = 144
    CHANNEL_CLOSE = 145
    CHANNEL_SHARE = 146
    # Cluster (docs/cluster.md): the coordinator's and the nodes' traces (150-157).
    CLUSTER_EPOCH = 150
    CLUSTER_PLACE = 151
    CLUSTER_BATCH = 152
    CLUSTER_JOB_DONE = 153
    CLUSTER_NODE_LOST = 154
    CLUSTER_JOB_MOVE = 155
    CLUSTER_COMMIT = 156
    CLUSTER_MESSAGE = 157

    # The sealed node-to-node transport of a cluster (158-161).
    LINK_ESTABLISHED = 158
    LINK_HANDSHAKE_REFUSED = 159
    LINK_FRAME_REFUSED = 160
    LINK_CLOSED = 161

    # Cluster consensus (162-165): written by the cluster trace from a replica's events.
    CONSENSUS_DECISION = 162
    CONSENSUS_VIEW_CHANGE = 163
    CONSENSUS_EVIDENCE = 164
    CONSENSUS_PROPOSAL = 165
