"""Files uploaded through /v1/files: metadata, ownership and expiry."""
