"""The edge's HTTP layer (Litestar); the request logic lives in edge/service.py.

- state.py: `EdgeState`, injected into handlers as `edge`
- guards.py: API key and rate limit on the /v1 routes
- errors.py: the one mapping from domain errors (edge/errors.py) and framework errors to JSON
- observe.py: per-route metrics labelled by route template
- openapi.py: the OpenAPI document made exact (msgspec schemas, documented errors)
- recommend.py, catalog.py, ops.py: the controllers
"""
