"""Metered clients of the providers' SDKs: :mod:`noa_ai_provider.integrations.openai` and
:mod:`noa_ai_provider.integrations.anthropic`, each behind its extra (``openai``, ``anthropic``)."""
