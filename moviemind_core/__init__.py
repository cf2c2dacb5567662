"""The shared kernel: what both `edge` and `index_builder` need, owned by neither.

The catalog record (`catalog`), the bundle format with its reader and writer (`bundle`), the
MiniLM embedder (`embedder`) and the object-storage layout of published bundles (`storage`).
Nothing here imports a tier.
"""
