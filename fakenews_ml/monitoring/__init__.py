"""Production monitoring: the prediction log, feedback labels and drift measurement."""
