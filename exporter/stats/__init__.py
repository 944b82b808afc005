"""Statistics: pure functions over counts: model quality, drift tests, reference
fitting and row profiles."""
