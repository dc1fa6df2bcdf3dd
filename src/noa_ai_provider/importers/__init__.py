"""Importers of third-party model catalogues: LiteLLM's price list and the ``genai-prices`` package.

Each returns a :class:`CatalogImport`, a ``list`` of :class:`~noa_ai_provider.schemas.ExtendedModelInfo` ready for
``EnhancedModelRegistry.register_models``, whose ``skipped`` lists every entry left out with the reason;
``EnhancedModelRegistry.import_litellm_catalog`` / ``import_genai_prices_catalog`` import and register in one
faster step. The
importers sit below the registry: they use only the schemas, errors and JSON reading.
"""

from .common import CatalogImport, CatalogLoad, SkippedEntry
from .genai_prices import load_genai_prices_catalog
from .litellm import load_litellm_catalog

__all__ = ["CatalogImport", "CatalogLoad", "SkippedEntry", "load_genai_prices_catalog", "load_litellm_catalog"]
