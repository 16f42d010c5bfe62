"""Names vulture reports as unused that something outside our call graph uses, each with who uses it.

Read by ``vulture`` (``[tool.vulture]`` in pyproject.toml lists this file among its paths); never
imported. Whole families (Typer commands, FastAPI routes, pydantic validators, SQLAlchemy events,
Celery tasks and signals, registered connectors) are kept by their decorator in pyproject.toml.
An entry names the object by its real path, so it reads as what it keeps; vulture matches by name.
"""

# ruff: noqa: B018  (each line is an attribute access that only vulture reads)

import sqlite3

import pydantic
import transformers
import uvicorn
from tokenizers import Tokenizer

import workers.app
from connectors import base as connectors_base
from connectors import netguard
from connectors.slack import api as slack_api
from orgmem.api import memtrim, ratelimit, state
from orgmem.console import accountability, actions, charts, views
from orgmem.db import enums, scheduler_jobs, types
from orgmem.db.models import data
from orgmem.db.models import feedback as feedback_models
from orgmem.eval import corpus
from orgmem.gate import config as gate_config
from orgmem.memory.cms import layer as cms_layer
from orgmem.memory.titans import meta_train, model, neural_memory
from orgmem.pipeline import run
from orgmem.serving import kvcache, memcache
from orgmem.store import base as store_base
from orgmem.store import s3
from workers import schedules

# pydantic reads a model's configuration from this class attribute (every BaseModel/BaseSettings)
pydantic.BaseModel.model_config
# a pydantic field: validated here, read by key from the stored config (connectors.base.restricted_audience)
connectors_base.SourceConfig.restricted

# httpx's HTTPTransport sends every request through self._pool: we replace the pool it built
netguard._GuardedTransport._pool
# slack_sdk's RetryHandler interface: the client calls these and reads state.next_attempt_requested
slack_api.RetryAfterHandler._can_retry
slack_api.RetryAfterHandler.prepare_for_next_attempt
slack_api.RetryAfterHandler.next_attempt_requested

# uvicorn's Server polls should_exit to stop serving
uvicorn.Server.should_exit  # orgmem/cli/serve.py
# the sqlite3 connection attribute: None lets SQLAlchemy emit BEGIN itself (orgmem.db.session)
sqlite3.Connection.isolation_level

# Jinja templates in orgmem/console/templates read these (vulture does not read templates)
accountability.AuditPage.truncated  # audit.html
actions.ActionSpec.danger  # org.html, confirm.html
charts.LineChart.first_label  # checkpoints.html: the chart's axis and frame
charts.LineChart.last_label
charts.LineChart.height
charts.LineChart.left
charts.LineChart.bottom
views.Lineage.is_group  # checkpoints.html

# enum members: values parsed from strings (ApiKeyRole(role), JobKind(kind)) and stored in rows
enums.ApiKeyRole.EMPLOYEE  # the default key role
enums.JobKind.FORGET  # accepted job kinds; no code creates these two kinds today
enums.JobKind.META_TRAIN
enums.Rating.UP  # the ratings /v1/feedback accepts, read by iterating the enum (its CHECK constraint)
enums.Rating.DOWN
feedback_models.ResponseRecord.key_groups  # the asking key's groups when it asked, kept with the reply
feedback_models.FeedbackSetting.updated_by  # who set the org's review policy (also in its audit event)

# SQLAlchemy: mapped columns and models exist for the schema (the migrations and `alembic check`)
data.Source.credentials_ref
data.DocumentVersion.n_chars
scheduler_jobs.SchedulerJobRow  # APScheduler's own table, declared so the migrations create it
scheduler_jobs.SchedulerJobRow.job_state
# SQLAlchemy's TypeDecorator interface
types.UTCDateTime.impl
types.UTCDateTime.cache_ok
types.UTCDateTime.process_bind_param
types.UTCDateTime.process_result_value

# PEP 562 module __getattr__: the lazy exports of workers.app
workers.app.__getattr__

# torch.nn.Module.__call__ runs forward
cms_layer.CmsLevel.forward
cms_layer.CmsBlock.forward
neural_memory.NeuralMemory.forward
# transformers' Cache layer interface (generate and the model's attention call these)
kvcache.GrowableLayer.get_seq_length
kvcache.GrowableLayer.get_mask_sizes
kvcache.GrowableLayer.crop
kvcache.GrowableLayer.batch_repeat_interleave
kvcache.GrowableLayer.crop.tokens_to_remove  # the interface's parameter names (passed by keyword)
kvcache.GrowableLayer.batch_repeat_interleave.repeats
# transformers and tokenizers attributes we set and the libraries read
transformers.PreTrainedModel.hf_quantizer  # orgmem/models/fetch.py: None lets a GGUF-loaded model save
Tokenizer.pre_tokenizer  # orgmem/models/tiny.py

# dataclass fields serialised whole (dataclasses.asdict) into a job result or a command's output
gate_config.GateConfig.min_new_nll_improvement  # thresholds, read by getattr in orgmem.gate.decide
gate_config.GateConfig.max_retention_nll_increase
gate_config.GateConfig.max_kl
gate_config.GateConfig.max_ppl_ratio
gate_config.GateConfig.max_leakage
gate_config.GateConfig.max_secret_leaks
run.ConsolidationOutcome.n_new  # the job result; `orgmem consolidate` prints them
run.ConsolidationOutcome.n_replay
meta_train.MetaTrainResult.checkpoint_path  # `orgmem memory titans` prints the result

# public API used by benchmarks/ and tests/ (outside vulture's paths)
corpus.load_corpus  # benchmarks/real_corpus.py, tests/eval
corpus.chunk_docs  # benchmarks/knowledge.py
store_base.ObjectStore.put_file  # the store interface; tests/store
s3.S3Store.ensure_bucket  # creates the bucket for an installation; tests/store/conftest.py
state.ServingState.clear_cache  # benchmarks/serving.py
ratelimit.ConcurrencyLimiter.in_flight  # tests/serving/test_request_limits.py
memtrim.available  # tests/serving/test_request_limits_units.py
model.TitansMemory.meta_init_path  # which meta-initialisation was loaded; tests/memory
model.TitansMemory.no_write  # evaluation reads without writing; tests/memory
neural_memory.MemoryState.from_tensors  # the saved state's reader; tests/memory
memcache.CacheStats.misses  # cache counters; tests/serving/test_serving_units.py
memcache.CacheStats.evictions

# workers.schedules.NIGHTLY_FUNC names it as a string ("workers.schedules:run_nightly") for APScheduler
schedules.run_nightly

# connectors: loaded by name from the table in connectors/registry.py ("module:Class" strings)
import connectors.docs  # noqa: E402
import connectors.git  # noqa: E402
import connectors.rss  # noqa: E402
import connectors.slack  # noqa: E402

connectors.docs.DocsConnector
connectors.git.GitConnector
connectors.rss.RssConnector
connectors.slack.SlackConnector
# a pydantic field: read by key from the stored config (orgmem/ingest/sync.py)
connectors_base.SourceConfig.forget_on_delete

# Typer reads a generated command's signature and annotations (orgmem/cli/source_options.py)
pydantic.__signature__
pydantic.__annotations__
# FastAPI and Typer read a function's name and doc (route ids, --help) for the ones built by factories
# (orgmem/api/admin_routes.py, orgmem/cli/lineage.py)
pydantic.__qualname__
pydantic.__doc__

# the engine's counters, read by tests of batching (tests/serving) and by benchmarks/serving.py
import orgmem.serving.engine  # noqa: E402

orgmem.serving.engine.EngineStats.prefills

# Titans conversation memory: the API the serving engine will call once it is wired in
# (docs/titans.md, "Conversation memory"); tested in tests/memory/test_titans_conversation.py
import orgmem.memory.titans.conversation as titans_conversation  # noqa: E402

titans_conversation.ConversationState.tokens_written
titans_conversation.ConversationMemory.expired
titans_conversation.ConversationMemory.for_base
titans_conversation.ConversationMemory.state_for
titans_conversation.ConversationMemory.drop
titans_conversation.ConversationMemory.drop_key
titans_conversation.ConversationMemory.conversations
# Titans consolidation by writing: called by benchmarks/titans_night.py (engine wiring pending)
import orgmem.memory.titans.write_pass  # noqa: E402

orgmem.memory.titans.write_pass.write_night
import orgmem.memory.titans.night_episodes  # noqa: E402

# the first values of a night episode's changed facts: read by tests/memory/test_titans_night.py
orgmem.memory.titans.night_episodes.NightEpisode.earlier
# the exported folder's model class: transformers loads it by name from config.json's auto_map
# (orgmem/export/hf.py AUTO_MAP), never our code
import orgmem.export.hf_code.modeling_orgmem  # noqa: E402

orgmem.export.hf_code.modeling_orgmem.OrgmemLlamaForCausalLM
# which choice of an n > 1 reply a turn is: read by the turn listeners (feedback, recordings) and tests
import orgmem.api.turns  # noqa: E402

orgmem.api.turns.CompletedTurn.choice_index
