"""The HTTP API (``fakenews serve``) and the traffic simulator. ``create_app`` lives in ``serving.app``;
this package imports nothing heavy so the CLI stays quick to start."""
