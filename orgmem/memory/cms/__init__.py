"""CMS memory kind (registered as ``cms``), all its forms: ``config.py``, the training form
(``layer.py`` blocks, ``model.py`` the kind) and the serving form (``rows.py``, through the fused
blocks of ``fused.py``)."""

from orgmem.memory.cms.config import CmsConfig
from orgmem.memory.cms.model import CmsMemory
from orgmem.memory.cms.rows import cms_rows
from orgmem.memory.registry import register_memory_kind

register_memory_kind("cms", CmsConfig, CmsMemory, rows=cms_rows)

__all__ = ["CmsConfig", "CmsMemory"]
