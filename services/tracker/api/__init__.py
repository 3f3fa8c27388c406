"""The HTTP API's contract, one concern a module: query parameters (``params``), response
bodies (``models``, with ``figures`` for decimal strings), content negotiation
(``negotiation``), validators (``caching``) and the OpenAPI document built from them
(``openapi``)."""
