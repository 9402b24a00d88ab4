"""The use cases of an operation, one module each: plan, run, undo (Workflow joins them)."""
