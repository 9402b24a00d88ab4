"""The modal (docs/SPEC.md §8): shortcuts, the form and its preview, the type-ahead list."""
