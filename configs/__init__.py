"""Packaged YAML configs: `configs/` in the repo, `frontwire.configs` once installed."""
