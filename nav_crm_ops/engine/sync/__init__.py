"""One sync of one mapping, step by step: preview (``snapshot`` → ``classify`` → diff →
``checks`` / ``lines``, driven by ``planner``), apply (``applier`` with the run state of ``run``
and the payloads of ``payloads``) and the policy around them (``followups``).

Nothing is imported here, so importing one step loads only what it needs; the public names stay
where they were: :mod:`nav_crm_ops.engine.planner`, :mod:`nav_crm_ops.engine.applier`.
"""
