"""Hyperparameter search with Optuna: the search space (``space``), the study's storage (``storage``), one
trial as a short training (``trials``) and the study's plots (``plots``). The stage that runs a study is
``fakenews_ml.stages.search``."""
