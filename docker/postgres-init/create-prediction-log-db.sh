#!/bin/sh
# Runs once, when the postgres service starts on an empty volume: the prediction log gets its own database
# beside Dagster's ($POSTGRES_DB), owned by the same user.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -c "CREATE DATABASE \"$PREDICTION_LOG_DB\" OWNER \"$POSTGRES_USER\""
