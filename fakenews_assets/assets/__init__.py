"""Software-defined assets, one module per group: data, training, deployment.

Asset bodies import their ``fakenews_ml`` step inside the function: torch, Lightning, transformers and Great
Expectations then load when a run needs them, not every time the code location loads.
"""
