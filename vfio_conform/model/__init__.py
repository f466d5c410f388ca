"""The spec as executable data: FSM tables, expected outcomes, and the rule catalogue."""
