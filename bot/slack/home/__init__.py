"""The App Home (docs/SPEC.md §14): its view, its listeners, its publishing."""
