"""hitl adapter for pydantic_ai (work in progress)."""
