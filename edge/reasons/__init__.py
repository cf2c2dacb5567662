"""Reason writing: one protocol (`ReasonWriter`), one implementation per strategy.

- protocol.py: what a writer needs (`ChatClient`, `ModelTier`, `Asked`) and what it is
- draft.py: `Draft`, the answer being written, and `judge` (the gate's verdict on one line)
- call.py: `ModelCalls`, every model call of one answer (first-token timing, slot hold)
- per_pick.py: the per-pick loop both prefill strategies share
- guided.py: guided choice (the model picks one of the catalog-backed sentences)
- free.py: free text, begun by the edge and steered by logit_bias
- single.py: one call for all picks, tied to them by grounding
- choose.py: which strategy an answer uses
"""
