"""All ORM models; importing this package registers every table on ``Base.metadata``."""

from orgmem.db.models.audience import AudienceHead
from orgmem.db.models.conversations import ConversationPolicy, ConversationTurn
from orgmem.db.models.data import Chunk, Document, DocumentVersion, Redaction, Source, SyncFailure
from orgmem.db.models.feedback import Correction, FeedbackRating, FeedbackSetting, ResponseRecord
from orgmem.db.models.forget import ForgetReceipt
from orgmem.db.models.jobs import Job, JobEvent
from orgmem.db.models.lineage import Checkpoint, CheckpointInput, CheckpointObject, ServingEvent
from orgmem.db.models.org import ApiKey, AuditEvent, Org, Schedule

__all__ = [
    "ApiKey",
    "AudienceHead",
    "AuditEvent",
    "Checkpoint",
    "CheckpointInput",
    "CheckpointObject",
    "Chunk",
    "ConversationPolicy",
    "ConversationTurn",
    "Correction",
    "Document",
    "DocumentVersion",
    "FeedbackRating",
    "FeedbackSetting",
    "ForgetReceipt",
    "Job",
    "JobEvent",
    "Org",
    "Redaction",
    "ResponseRecord",
    "Schedule",
    "ServingEvent",
    "Source",
    "SyncFailure",
]
