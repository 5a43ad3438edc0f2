"""Token cleaning itself: per-token scores, selection, the response-position rule, masks."""
