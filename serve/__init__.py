"""Serving: the HTTP server and batch inference (`frontwire.serve.batch`)."""
