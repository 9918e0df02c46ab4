"""Every tunable: the config fields and their specs, text-to-value parsing, YAML files and recipes."""
