"""The HTTP API, one concern a module: the handlers (``views``), which worker answers for
a pair and gathering the others' rows (``routing``), query parameters (``params``), a
commitment's figures through time (``history``), shaping an answer (``responses``, on top
of content negotiation in ``negotiation``, validators in ``caching`` and pages in
``paging``), response bodies (``models``, with ``figures`` for decimal strings) and the
OpenAPI document built from them (``openapi``)."""
