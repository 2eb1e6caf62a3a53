"""Reading, validating, splitting and tokenizing news data."""
