"""Default mappings shipped with nav-crm-ops (package data read by engine.mapping)."""
