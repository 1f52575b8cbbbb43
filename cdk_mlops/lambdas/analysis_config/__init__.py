"""The deploy-time writer of a Clarify analysis configuration that names the served model (a custom resource)."""
