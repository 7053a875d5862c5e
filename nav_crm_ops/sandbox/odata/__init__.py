"""What the two emulated OData services (Dataverse, Business Central) share: the reply type,
the error base, rollback, paging tokens and query-option parsing, value coercion and the
``$batch`` / ASGI plumbing. Each service keeps its own wire formats (error bodies, token
shapes, messages); this layer holds only the mechanics both write the same way."""
