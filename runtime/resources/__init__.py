"""Resources: non-code services declared at build time (placeholder until the framework lands)."""
